using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Tests.Email;

namespace Nudge.Host.Tests;

/// <summary>Email through SendGrid v3 from the embedded server: the journey's email reaches the loopback SendGrid peer.</summary>
public sealed class SendGridEndToEndTests : IClassFixture<SendGridPeer>, IAsyncLifetime
{
    private readonly SendGridPeer _sendGrid;
    private JourneyServer _server = null!;

    public SendGridEndToEndTests(SendGridPeer sendGrid) => _sendGrid = sendGrid;

    public async Task InitializeAsync() => _server = await JourneyServer.StartAsync(null, new FakeTimeProvider(JourneyServer.Monday14h), null, null,
        "--Nudge:Providers:Email:Provider=sendgrid", "--Nudge:Providers:Email:From=shop@example.com",
        $"--Nudge:Providers:Email:SendGrid:ApiKey={SendGridPeer.ApiKey}", $"--Nudge:Providers:Email:SendGrid:BaseUrl={_sendGrid.BaseUrl}",
        "--Nudge:PublicBaseUrl=https://nudge.example.com");

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
    }

    [Fact]
    public async Task CartRecoveryEmail_GoesThroughSendGrid_WithOneClickUnsubscribeAndTheMessageId()
    {
        // No device and no SMS consent: the push step falls through its chain to email at once.
        var id = _server.IdFor("cart_recovery", heldOut: false, "mail");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$"""{"email":"{{id}}@example.com","first_name":"Dana"}""");
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c-7","cart_value":40}}""");

        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));

        var message = (await _server.GetAsync($"/admin/v1/profiles/{id}/messages")).Single()!.AsObject();
        Assert.Equal(("email", "sent"), (message["channel"]!.GetValue<string>(), message["status"]!.GetValue<string>()));
        var delivery = message["deliveries"]!.AsArray().Single()!;
        Assert.Equal("sendgrid", delivery["provider"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(delivery["provider_id"]!.GetValue<string>()));

        var (path, auth, _, body) = Assert.Single(_sendGrid.Requests);
        Assert.Equal(("/v3/mail/send", $"Bearer {SendGridPeer.ApiKey}"), (path, auth));
        var mail = JsonNode.Parse(body)!;
        Assert.Equal($"{id}@example.com", mail["personalizations"]![0]!["to"]![0]!["email"]!.GetValue<string>());
        Assert.Equal(message["id"]!.GetValue<string>(), mail["personalizations"]![0]!["custom_args"]!["delivery_id"]!.GetValue<string>());
        Assert.Equal("You left something behind", mail["subject"]!.GetValue<string>());
        Assert.Equal("List-Unsubscribe=One-Click", mail["headers"]!["List-Unsubscribe-Post"]!.GetValue<string>());
        Assert.StartsWith("<https://nudge.example.com/u/", mail["headers"]!["List-Unsubscribe"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
