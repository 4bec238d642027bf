using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Nudge.Core.Journeys;
using Nudge.Host.Hosting;
using Nudge.Host.Workers;

namespace Nudge.Host.Tests;

/// <summary>The example journeys driven through the HTTP API on a virtual clock.</summary>
public sealed class JourneyEndToEndTests : IAsyncLifetime
{
    private JourneyServer _server = null!;

    public async Task InitializeAsync() => _server = await JourneyServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
    }

    private async Task<string> ShopperAsync(bool heldOut = false, string timezone = "UTC", bool device = true, bool sms = true)
    {
        var id = _server.IdFor("cart_recovery", heldOut, "shopper" + Guid.NewGuid().ToString("N")[..6]);
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}",
            $$$"""{"email":"{{{id}}}@example.com","first_name":"Dana","phone":"+14155552671","sms_consent":{{{(sms ? "true" : "false")}}},"timezone":"{{{timezone}}}"}""");
        if (device)
        {
            await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"{{{id}}}-iphone-token","platform":"ios"}}""");
        }

        return id;
    }

    private Task AddToCartAsync(string id, string cart, double value) => _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events",
        $$$"""{"name":"add_to_cart","data":{"cart_id":"{{{cart}}}","cart_value":{{{value}}},"item_name":"serum"}}""");

    private async Task<List<JsonObject>> MessagesAsync(string id) =>
        (await _server.GetAsync($"/admin/v1/profiles/{id}/messages")).Select(m => m!.AsObject()).OrderBy(m => m["created_at"]!.GetValue<DateTimeOffset>()).ToList();

    private async Task<JsonObject> CartInstanceAsync(string id) =>
        (await _server.GetAsync($"/admin/v1/profiles/{id}/journeys")).Select(i => i!.AsObject()).Single(i => i["journey_id"]!.GetValue<string>() == "cart_recovery");

    [Fact]
    public async Task CartRecovery_HighValueCart_PushThenEmailThenSmsAtTheRightTimes()
    {
        var id = await ShopperAsync();
        var t0 = _server.Clock.GetUtcNow();
        await AddToCartAsync(id, "cart-1", 150);
        Assert.Equal("wait_30m", (await CartInstanceAsync(id))["current_step"]!.GetValue<string>());
        Assert.Empty(await MessagesAsync(id));

        await _server.AdvanceAsync(TimeSpan.FromMinutes(29));
        Assert.Empty(await MessagesAsync(id));
        await _server.AdvanceAsync(TimeSpan.FromMinutes(1));
        var push = Assert.Single(await MessagesAsync(id));
        Assert.Equal("push", push["channel"]!.GetValue<string>());
        Assert.Equal("delivered", push["status"]!.GetValue<string>()); // the sandbox reports it delivered with its answer
        Assert.Equal(t0.AddMinutes(30), push["created_at"]!.GetValue<DateTimeOffset>());
        Assert.Equal("shop://cart/cart-1", push["content"]!["deep_link"]!.GetValue<string>());
        Assert.Equal("Dana, your serum are still in your cart.", push["content"]!["body"]!.GetValue<string>());
        Assert.Equal($"{id}-iphone-token", push["recipients"]![0]!.GetValue<string>());

        await _server.AdvanceAsync(TimeSpan.FromHours(4));
        var msgs = await MessagesAsync(id);
        Assert.Equal(["push", "email"], msgs.Select(m => m["channel"]!.GetValue<string>()));
        Assert.Equal(t0.AddMinutes(270), msgs[1]["created_at"]!.GetValue<DateTimeOffset>());

        await _server.AdvanceAsync(TimeSpan.FromHours(20));
        msgs = await MessagesAsync(id);
        Assert.Equal(["push", "email", "sms"], msgs.Select(m => m["channel"]!.GetValue<string>()));
        Assert.Equal(t0.AddMinutes(1470), msgs[2]["created_at"]!.GetValue<DateTimeOffset>());
        Assert.Equal(["+14155552671"], msgs[2]["recipients"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Equal("completed", (await CartInstanceAsync(id))["status"]!.GetValue<string>());

        var outbox = await _server.GetAsync("/admin/v1/outbox?limit=1000");
        Assert.Equal(3, outbox.Count(o => o!["message_id"]!.GetValue<string>().StartsWith(msgs[0]["cio_id"]!.GetValue<string>()[4..], StringComparison.Ordinal)));
    }

    [Fact]
    public async Task CartRecovery_LowValueCart_NoSmsAndCompletes()
    {
        var id = await ShopperAsync();
        await AddToCartAsync(id, "cart-2", 40);
        await _server.AdvanceAsync(TimeSpan.FromDays(2));
        Assert.Equal(["push", "email"], (await MessagesAsync(id)).Select(m => m["channel"]!.GetValue<string>()));
        var instance = await CartInstanceAsync(id);
        Assert.Equal("completed", instance["status"]!.GetValue<string>());
        Assert.Equal("else", instance["steps"]!["high_value"]!["branch"]!.GetValue<string>());
    }

    [Fact]
    public async Task PurchaseDuringWait_StopsTheJourneyBeforeItsNextSend()
    {
        var id = await ShopperAsync();
        await AddToCartAsync(id, "cart-3", 150);
        await _server.AdvanceAsync(TimeSpan.FromMinutes(10));
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"purchase","data":{"cart_id":"cart-3"}}""");
        await _server.AdvanceAsync(TimeSpan.FromDays(3));
        Assert.Empty(await MessagesAsync(id));
        var instance = await CartInstanceAsync(id);
        Assert.Equal("converted", instance["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task PurchaseOfAnotherCart_DoesNotStopTheJourney_PurchaseAfterPushConvertsIt()
    {
        var id = await ShopperAsync();
        await AddToCartAsync(id, "cart-4", 150);
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"purchase","data":{"cart_id":"other-cart"}}""");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(45));
        var push = Assert.Single(await MessagesAsync(id));
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"purchase","data":{"cart_id":"cart-4"}}""");
        await _server.AdvanceAsync(TimeSpan.FromDays(2));

        var msgs = await MessagesAsync(id);
        Assert.Single(msgs);
        Assert.Equal("converted", msgs[0]["status"]!.GetValue<string>());
        Assert.Equal(push["id"]!.GetValue<string>(), msgs[0]["id"]!.GetValue<string>());
        Assert.Equal("converted", (await CartInstanceAsync(id))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task HeldOutShopper_WalksTheJourneyWithoutAnySend()
    {
        var id = await ShopperAsync(heldOut: true);
        await AddToCartAsync(id, "cart-5", 150);
        await _server.AdvanceAsync(TimeSpan.FromDays(2));
        var msgs = await MessagesAsync(id);
        Assert.Equal(3, msgs.Count);
        Assert.All(msgs, m =>
        {
            Assert.Equal("undeliverable", m["status"]!.GetValue<string>());
            Assert.Equal("holdout", m["reason"]!.GetValue<string>());
        });
        var instance = await CartInstanceAsync(id);
        Assert.True(instance["holdout"]!.GetValue<bool>());
        Assert.Equal("completed", instance["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task NoDevice_FallsBackToSms_AndQuietHoursInTheShoppersZoneDeferIt()
    {
        // 14:30 UTC is 23:30 in Tokyo: inside 21:00-08:00, so the SMS waits for 08:00 JST (23:00 UTC).
        var id = await ShopperAsync(timezone: "Asia/Tokyo", device: false);
        var t0 = _server.Clock.GetUtcNow();
        await AddToCartAsync(id, "cart-6", 150);
        await _server.AdvanceAsync(TimeSpan.FromHours(2));
        Assert.Empty(await MessagesAsync(id));
        Assert.Equal("quiet_hours", (await CartInstanceAsync(id))["steps"]!["push"]!["deferred"]!.GetValue<string>());

        await _server.AdvanceAsync(TimeSpan.FromHours(7));
        var sms = Assert.Single(await MessagesAsync(id));
        Assert.Equal("sms", sms["channel"]!.GetValue<string>());
        Assert.Equal(new DateTimeOffset(t0.Date.AddHours(23), TimeSpan.Zero), sms["created_at"]!.GetValue<DateTimeOffset>());
        Assert.Equal("no_device", sms["fallback_reasons"]!["push"]!.GetValue<string>());
    }

    [Fact]
    public async Task EventOlderThanMaxAge_DoesNotStartTheJourney()
    {
        var id = await ShopperAsync();
        var old = _server.Clock.GetUtcNow().AddHours(-73).ToUnixTimeSeconds();
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", $$$"""{"name":"add_to_cart","timestamp":{{{old}}},"data":{"cart_id":"c","cart_value":1}}""");
        Assert.Empty(await _server.GetAsync($"/admin/v1/profiles/{id}/journeys"));
    }

    [Fact]
    public async Task CrashBeforeCommit_ThenRetry_StoresOneMessage()
    {
        var id = await ShopperAsync();
        await AddToCartAsync(id, "cart-7", 150);
        _server.Clock.Advance(TimeSpan.FromMinutes(30));
        var store = _server.Store;
        var (instanceId, _) = Assert.Single(await store.DueInstancesAsync(_server.Clock.GetUtcNow(), 10), d => d.Id.StartsWith("cart_recovery", StringComparison.Ordinal));

        // The step runs and its session is lost before commit, as in a crash.
        await using (var s = await store.OpenSessionAsync())
        {
            await _server.Runtime.FireAsync(s, instanceId, _server.Clock.GetUtcNow());
        }

        // At-least-once: the step runs again, twice.
        for (var n = 0; n < 2; n++)
        {
            await using var s = await store.OpenSessionAsync();
            await _server.Runtime.FireAsync(s, instanceId, _server.Clock.GetUtcNow());
            await s.CommitAsync();
        }

        await _server.App.Services.GetRequiredService<SendWorker>().RunOnceAsync();
        var push = Assert.Single(await MessagesAsync(id));
        Assert.Equal("delivered", push["status"]!.GetValue<string>()); // the sandbox reports it delivered with its answer
    }

    [Fact]
    public async Task JourneysAdmin_ListsTheSevenExampleJourneys()
    {
        var list = await _server.GetAsync("/admin/v1/journeys");
        Assert.Equal(
            ["back_in_stock", "cart_recovery", "checkout_dropoff", "payment_failed", "replenishment", "trial_ending", "winback"],
            list.Select(j => j!["id"]!.GetValue<string>()).Order(StringComparer.Ordinal));
    }
}

public sealed class JourneyDurabilityTests
{
    [Fact]
    public async Task WaitingInstance_FiresAfterRestart()
    {
        var dataDir = Directory.CreateTempSubdirectory("nudge-restart-").FullName;
        try
        {
            string id;
            DateTimeOffset pushedAt;
            await using (var first = await JourneyServer.StartAsync(dataDir))
            {
                id = first.IdFor("cart_recovery", heldOut: false, "restart");
                await first.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$$"""{"email":"{{{id}}}@example.com"}""");
                await first.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", """{"device":{"id":"restart-token","platform":"android"}}""");
                await first.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c1","cart_value":10}}""");
                await first.AdvanceAsync(TimeSpan.FromMinutes(30));
                pushedAt = first.Clock.GetUtcNow();
            }

            // A new process 4 h later: the email timer was only in the store.
            await using var second = await JourneyServer.StartAsync(dataDir, pushedAt.AddHours(4));
            await second.AdvanceAsync(TimeSpan.Zero);
            var messages = await second.GetAsync($"/admin/v1/profiles/{id}/messages");
            Assert.Equal(["email", "push"], messages.Select(m => m!["channel"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task InvalidJourneyFile_StopsStartupNamingFileLineAndPath()
    {
        var dir = Directory.CreateTempSubdirectory("nudge-badjourney-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "broken.yaml"), "id: broken\nversion: 1\ntrigger: { event: x }\nsteps:\n  - delay: soon\n");
            var e = await Assert.ThrowsAsync<NudgeConfigurationException>(() => NudgeServer.BuildAsync(
                ["--urls=http://127.0.0.1:0", $"--Nudge:DataDir={Path.Combine(dir, "data")}", $"--Nudge:Journeys:Dir={dir}"]));
            Assert.Contains("broken.yaml:5: steps[0].delay: 'soon' is not a duration", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task BadJourneySetting_StopsStartupNamingTheSetting()
    {
        var dir = Directory.CreateTempSubdirectory("nudge-badsetting-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<NudgeConfigurationException>(() => NudgeServer.BuildAsync(
                ["--urls=http://127.0.0.1:0", $"--Nudge:DataDir={dir}", $"--Nudge:Journeys:Dir={dir}", "--Nudge:Journeys:Caps:0=sms:lots"]));
            Assert.Contains("Nudge:Journeys:Caps:0: 'sms:lots'", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
