using System.Text.Json.Nodes;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Delivery.Tests.Email;

namespace Nudge.Host.Tests;

/// <summary>
/// What the admin views say a message came to: a journey step shows its message's status now, and the delivery report
/// gives a rate only for channels whose provider reports delivery (the sandbox does, for every channel; SMTP does not).
/// </summary>
public sealed class AdminViewsEndToEndTests : IAsyncLifetime
{
    private readonly List<JourneyServer> _servers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _servers)
        {
            await s.DisposeAsync();
            Directory.Delete(s.DataDir, recursive: true);
        }
    }

    private async Task<JourneyServer> StartAsync(params string[] extra)
    {
        var s = await JourneyServer.StartAsync(null, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(JourneyServer.Monday14h), null, null, extra);
        _servers.Add(s);
        return s;
    }

    /// <summary>A shopper who leaves a high-value cart: push (with a device), email 4 h later, SMS 20 h after that.</summary>
    private static async Task<string> ShopperAsync(JourneyServer s, string prefix, bool device = true)
    {
        var id = s.IdFor("cart_recovery", heldOut: false, prefix);
        await s.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}",
            $$"""{"email":"{{id}}@example.com","first_name":"Dana","phone":"+14155552671","sms_consent":true,"timezone":"UTC"}""");
        if (device)
        {
            await s.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"{{{id}}}-token","platform":"ios"}}""");
        }

        await s.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c1","cart_value":150,"item_name":"serum"}}""");
        return id;
    }

    private static async Task<JsonObject> CartStepsAsync(JourneyServer s, string id) =>
        (await s.GetAsync($"/admin/v1/profiles/{id}/journeys")).Single(i => i!["journey_id"].Str() == "cart_recovery")!["steps"]!.AsObject();

    private static async Task<JsonArray> ByChannelAsync(JourneyServer s) =>
        JsonNode.Parse(await s.Admin.GetStringAsync("/admin/v1/reports/delivery?from=2026-06-01T00:00:00Z&to=2026-06-03T00:00:00Z"))!["by_channel"]!.AsArray();

    private static JsonNode Channel(JsonArray byChannel, string channel) => byChannel.Single(c => c!["channel"].Str() == channel)!;

    [Fact]
    public async Task ProfileJourneys_SendStep_ShowsItsMessagesStatusNow_NotTheOneItWasDraftedWith()
    {
        // The apps report push delivery: the sandbox leaves a push "sent" until the SDK says it arrived.
        var s = await StartAsync("--Nudge:Reports:PushSentCountsAsDelivered=false");
        var id = await ShopperAsync(s, "steps");
        await s.AdvanceAsync(TimeSpan.FromMinutes(30));

        var push = (await CartStepsAsync(s, id))["push"]!;
        var key = (await s.Store.ResolveAsync(new Identifier(IdentifierKind.Id, id)))!;
        var instance = Assert.Single(await s.Store.GetInstancesAsync(key));
        Assert.Equal(MessageStatus.Drafted, instance.StepResults["push"]["status"]!.GetValue<string>()); // what the step recorded
        Assert.Equal(("push", "sent"), (push["channel"].Str(), push["status"].Str()));

        await s.SendAsync(HttpMethod.Post, "/api/v1/push/events",
            $$"""{"delivery_id":"{{push["message_id"].Str()}}","event":"delivered","device_id":"{{id}}-token","timestamp":{{s.Clock.GetUtcNow().ToUnixTimeSeconds()}}}""");
        Assert.Equal("delivered", (await CartStepsAsync(s, id))["push"]!["status"].Str());

        // Email and SMS through the sandbox: delivered with the send, as a provider's report would say.
        await s.AdvanceAsync(TimeSpan.FromHours(24));
        var steps = await CartStepsAsync(s, id);
        Assert.Equal(("email", "delivered"), (steps["email"]!["channel"].Str(), steps["email"]!["status"].Str()));
        Assert.Equal(("sms", "delivered"), (steps["sms"]!["channel"].Str(), steps["sms"]!["status"].Str()));
    }

    [Fact]
    public async Task DeliveryReport_SandboxReportsEveryChannelDelivered()
    {
        var s = await StartAsync();
        var id = await ShopperAsync(s, "sandbox");
        await s.AdvanceAsync(TimeSpan.FromHours(25));

        var statuses = (await s.GetAsync($"/admin/v1/profiles/{id}/messages")).Select(m => (m!["channel"].Str(), m["status"].Str())).Order().ToList();
        Assert.Equal([("email", "delivered"), ("push", "delivered"), ("sms", "delivered")], statuses);
        var byChannel = await ByChannelAsync(s);
        Assert.Equal(3, byChannel.Count);
        Assert.All(byChannel, c => Assert.Equal((1, 1, true, 1.0),
            (c!["sent"]!.GetValue<int>(), c["delivered"]!.GetValue<int>(), c["delivery_reported"]!.GetValue<bool>(), c["delivery_rate"]!.GetValue<double>())));
    }

    [Fact]
    public async Task DeliveryReport_SmtpEmail_DeliveryNotReported_NoRate()
    {
        await using var smtp = new LoopbackSmtpServer();
        var s = await StartAsync("--Nudge:Providers:Email:Provider=smtp", "--Nudge:Providers:Email:From=shop@example.com",
            "--Nudge:Providers:Email:Smtp:Host=127.0.0.1", $"--Nudge:Providers:Email:Smtp:Port={smtp.Port}", "--Nudge:Providers:Email:Smtp:Security=none");
        var id = await ShopperAsync(s, "smtp", device: false);
        await s.AdvanceAsync(TimeSpan.FromHours(25));

        Assert.Single(smtp.Messages);
        var email = (await s.GetAsync($"/admin/v1/profiles/{id}/messages")).Single(m => m!["channel"].Str() == "email")!;
        Assert.Equal("sent", email["status"].Str()); // accepted by the server, and nothing more is known
        var byChannel = await ByChannelAsync(s);
        var e = Channel(byChannel, "email");
        Assert.Equal((1, 0, false), (e["sent"]!.GetValue<int>(), e["delivered"]!.GetValue<int>(), e["delivery_reported"]!.GetValue<bool>()));
        Assert.Null(e["delivery_rate"]);
        var sms = Channel(byChannel, "sms");
        Assert.Equal((true, 1.0), (sms["delivery_reported"]!.GetValue<bool>(), sms["delivery_rate"]!.GetValue<double>()));

        // Nor does the delivery-rate alert rule watch it: its "delivered" would be opens and clicks.
        var alerts = JsonNode.Parse(await s.Admin.GetStringAsync("/admin/v1/reports/alerts"))!["channels"]!.AsArray();
        Assert.Contains(alerts, c => c!["channel"].Str() == "sms");
        Assert.DoesNotContain(alerts, c => c!["channel"].Str() == "email");
    }
}
