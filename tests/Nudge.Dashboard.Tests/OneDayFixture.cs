using Nudge.Delivery.Tests.Email;
using Nudge.Host.Tests;

namespace Nudge.Dashboard.Tests;

/// <summary>
/// One day of messages: a shopper's push (sandbox, reports delivery) and email through SMTP (a loopback server that
/// accepts it; SMTP reports no delivery), both on the first day.
/// </summary>
public sealed class OneDayFixture : BrowserFixture, IAsyncDisposable
{
    private readonly LoopbackSmtpServer _smtp = new();
    private bool _disposed;

    protected override Task<JourneyServer> StartServerAsync() => JourneyServer.StartAsync(dataDir: null, now: null, journeysDir: null, extra:
        ["--Nudge:Providers:Email:Provider=smtp", "--Nudge:Providers:Email:From=shop@example.com", "--Nudge:Providers:Email:Smtp:Host=127.0.0.1",
        $"--Nudge:Providers:Email:Smtp:Port={_smtp.Port}", "--Nudge:Providers:Email:Smtp:Security=none"]);

    protected override async Task SeedAsync()
    {
        var id = Server.IdFor("cart_recovery", heldOut: false, "day-one");
        await Server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$"""{"email":"{{id}}@example.com","first_name":"Ada","timezone":"UTC"}""");
        await Server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"{{{id}}}-token","platform":"ios"}}""");
        await Server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c1","cart_value":150,"item_name":"serum"}}""");

        // 14:30 the push, 18:30 the email: both on the first day, and nothing after.
        await Server.AdvanceAsync(TimeSpan.FromHours(5));
        if (_smtp.Messages.Count != 1)
        {
            throw new InvalidOperationException($"the SMTP server accepted {_smtp.Messages.Count} messages, not the one email");
        }
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await ((IAsyncDisposable)this).DisposeAsync();
    }

    async ValueTask IAsyncDisposable.DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            await _smtp.DisposeAsync();
        }
    }
}
