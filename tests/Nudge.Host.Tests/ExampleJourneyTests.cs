using System.Text.Json.Nodes;

namespace Nudge.Host.Tests;

/// <summary>The example journeys other than cart recovery, each driven through the HTTP API on a virtual clock.</summary>
public sealed class ExampleJourneyTests : IAsyncLifetime
{
    private JourneyServer _server = null!;

    public async Task InitializeAsync() => _server = await JourneyServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
    }

    private async Task<string> PersonAsync(string timezone = "UTC", bool device = true)
    {
        var id = "p" + Guid.NewGuid().ToString("N")[..8];
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}",
            $$$"""{"email":"{{{id}}}@example.com","phone":"+14155552671","sms_consent":true,"timezone":"{{{timezone}}}"}""");
        if (device)
        {
            await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"{{{id}}}-token","platform":"android"}}""");
        }

        return id;
    }

    private Task TrackAsync(string id, string name, string data = "{}") =>
        _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", $$$"""{"name":"{{{name}}}","data":{{{data}}}}""");

    private async Task<List<JsonObject>> MessagesAsync(string id, string journey) =>
        (await _server.GetAsync($"/admin/v1/profiles/{id}/messages")).Select(m => m!.AsObject())
            .Where(m => m["journey_id"]!.GetValue<string>() == journey).OrderBy(m => m["created_at"]!.GetValue<DateTimeOffset>()).ToList();

    private async Task<List<JsonObject>> InstancesAsync(string id, string journey) =>
        (await _server.GetAsync($"/admin/v1/profiles/{id}/journeys")).Select(i => i!.AsObject())
            .Where(i => i["journey_id"]!.GetValue<string>() == journey).ToList();

    [Fact]
    public async Task TrialEnding_Fires24HoursBeforeTrialEnd_AndFollowsAChangedDate()
    {
        var id = await PersonAsync();
        var now = _server.Clock.GetUtcNow();
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$$"""{"trial_end_at":{{{now.AddDays(3).ToUnixTimeSeconds()}}}}""");
        var pending = Assert.Single(await InstancesAsync(id, "trial_ending"));
        Assert.Equal("pending", pending["status"]!.GetValue<string>());
        Assert.Equal(now.AddDays(2), pending["wake_at"]!.GetValue<DateTimeOffset>());

        // An hour later the trial is extended by two days: the reminder moves with it.
        await _server.AdvanceAsync(TimeSpan.FromHours(1));
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$$"""{"trial_end_at":"{{{now.AddDays(5):O}}}"}""");
        await _server.AdvanceAsync(TimeSpan.FromDays(3));
        Assert.Empty(await MessagesAsync(id, "trial_ending"));
        await _server.AdvanceAsync(TimeSpan.FromHours(23));
        var email = Assert.Single(await MessagesAsync(id, "trial_ending"));
        Assert.Equal("email", email["channel"]!.GetValue<string>());
        Assert.Equal("Your trial ends tomorrow", email["content"]!["subject"]!.GetValue<string>());
        Assert.Equal(now.AddDays(4), email["created_at"]!.GetValue<DateTimeOffset>());
    }

    [Fact]
    public async Task Winback_ThirtyDaysAfterTheLastAppOpen_AndConvertsWhenTheyReturn()
    {
        var id = await PersonAsync();
        var t0 = _server.Clock.GetUtcNow();
        await TrackAsync(id, "app_opened");
        await _server.AdvanceAsync(TimeSpan.FromDays(10));
        await TrackAsync(id, "app_opened");
        await _server.AdvanceAsync(TimeSpan.FromDays(29));
        Assert.Empty(await MessagesAsync(id, "winback"));

        await _server.AdvanceAsync(TimeSpan.FromDays(1));
        var push = Assert.Single(await MessagesAsync(id, "winback"));
        Assert.Equal("push", push["channel"]!.GetValue<string>());
        Assert.Equal(t0.AddDays(40), push["created_at"]!.GetValue<DateTimeOffset>());

        await _server.AdvanceAsync(TimeSpan.FromDays(1));
        await TrackAsync(id, "app_opened");
        var instances = await InstancesAsync(id, "winback");
        Assert.Contains(instances, i => i["status"]!.GetValue<string>() == "converted");
        Assert.Equal("converted", Assert.Single(await MessagesAsync(id, "winback"))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Replenishment_21DaysAfterPurchase_At10InTheShoppersZone()
    {
        var id = await PersonAsync(timezone: "Europe/Berlin");
        await TrackAsync(id, "purchase", """{"category":"skincare","product_name":"Serum","order_id":"o-1"}""");
        await TrackAsync(id, "purchase", """{"category":"furniture","order_id":"o-2"}""");
        Assert.Single(await InstancesAsync(id, "replenishment"));
        await _server.AdvanceAsync(TimeSpan.FromDays(22));
        var push = Assert.Single(await MessagesAsync(id, "replenishment"));
        // Purchase Monday 1 June 14:00 UTC; +21 d is 22 June 16:00 in Berlin, so 10:00 Berlin on 23 June (08:00 UTC).
        Assert.Equal(new DateTimeOffset(2026, 6, 23, 8, 0, 0, TimeSpan.Zero), push["created_at"]!.GetValue<DateTimeOffset>());
        Assert.Equal("Reorder your Serum in one tap.", push["content"]!["body"]!.GetValue<string>());
    }

    [Fact]
    public async Task CheckoutDropoff_WaitsAnHourForThePurchase()
    {
        var buyer = await PersonAsync();
        var dropper = await PersonAsync();
        await TrackAsync(buyer, "checkout_started");
        await TrackAsync(dropper, "checkout_started");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(20));
        await TrackAsync(buyer, "purchase");
        await _server.AdvanceAsync(TimeSpan.FromHours(2));

        Assert.Empty(await MessagesAsync(buyer, "checkout_dropoff"));
        var push = Assert.Single(await MessagesAsync(dropper, "checkout_dropoff"));
        Assert.Equal("push", push["channel"]!.GetValue<string>());
        Assert.Equal("timeout", (await InstancesAsync(dropper, "checkout_dropoff"))[0]["steps"]!["wait_for_purchase"]!["outcome"]!.GetValue<string>());
    }

    [Fact]
    public async Task PaymentFailed_IsTransactional_SmsGoesOutInQuietHours()
    {
        // 14:00 UTC is 23:00 in Tokyo: a marketing SMS would wait, a transactional one does not.
        var id = await PersonAsync(timezone: "Asia/Tokyo");
        await TrackAsync(id, "payment_failed", """{"order_id":"o-77"}""");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(5));
        var sms = Assert.Single(await MessagesAsync(id, "payment_failed"));
        Assert.Equal("sms", sms["channel"]!.GetValue<string>());
        Assert.Equal("delivered", sms["status"]!.GetValue<string>());
        Assert.StartsWith("Your payment for order o-77", sms["content"]!["body"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackInStock_JourneyCapAllowsTwoPushesADay()
    {
        var id = await PersonAsync();
        foreach (var product in new[] { "a", "b", "c" })
        {
            await TrackAsync(id, "back_in_stock", $$$"""{"product_id":"{{{product}}}","product_name":"Item {{{product}}}"}""");
        }

        var msgs = await MessagesAsync(id, "back_in_stock");
        Assert.Equal(["delivered", "delivered", "undeliverable"], msgs.Select(m => m["status"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal("frequency_capped", Assert.Single(msgs, m => m["status"]!.GetValue<string>() == "undeliverable")["reason"]!.GetValue<string>());

        await _server.AdvanceAsync(TimeSpan.FromHours(25));
        await TrackAsync(id, "back_in_stock", """{"product_id":"d","product_name":"Item d"}""");
        Assert.Equal(3, (await MessagesAsync(id, "back_in_stock")).Count(m => m["status"]!.GetValue<string>() == "delivered"));
    }
}
