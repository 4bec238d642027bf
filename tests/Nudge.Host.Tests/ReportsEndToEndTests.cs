using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Host.Reports;
using Nudge.Host.Workers;

namespace Nudge.Host.Tests;

/// <summary>
/// Reports, conversions, alerts and reporting webhooks through the embedded server on a virtual clock. In the journey
/// run, Nudge records every metric itself (the step's drafts and holdouts, the send stage's sends, the SDK metrics
/// endpoint's receipts and opens, the goal's conversions); only a bounce, which the sandbox channel cannot produce, is
/// recorded through the store API as the send stage records one. The alert and reporting-webhook tests write synthetic
/// traffic through the store API.
/// </summary>
public sealed class ReportsEndToEndTests : IAsyncLifetime
{
    private const string Secret = "reporting-secret-0123456789";

    private readonly List<JourneyServer> _servers = [];
    private LoopbackReceiver _receiver = null!;

    public async Task InitializeAsync() => _receiver = await LoopbackReceiver.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var s in _servers)
        {
            await s.DisposeAsync();
        }

        foreach (var dir in _servers.Select(s => s.DataDir).Distinct())
        {
            Directory.Delete(dir, recursive: true);
        }

        await _receiver.DisposeAsync();
    }

    private async Task<JourneyServer> StartAsync(FakeTimeProvider clock, string? dataDir, params string[] extra)
    {
        var server = await JourneyServer.StartAsync(null, clock, dataDir, null, ["--Nudge:Reports:PushSentCountsAsDelivered=false", .. extra]);
        _servers.Add(server);

        // Tests run the reporting passes themselves, at the clock times they choose.
        await server.App.Services.GetRequiredService<ReportingWorker>().StopAsync(CancellationToken.None);
        return server;
    }

    private static async Task<string> ShopperAsync(JourneyServer s, string id, string platform)
    {
        await s.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", """{"first_name":"Dana","timezone":"UTC"}""");
        await s.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"token-{{{id}}}","platform":"{{{platform}}}"}}""");
        await s.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"cart-1","cart_value":50}}""");
        return (await s.Store.ResolveAsync(new Identifier(IdentifierKind.Id, id)))!;
    }

    /// <summary>Records a metric of a message as the send stage or an inbound webhook does: status history and delivery event.</summary>
    private static async Task RecordAsync(JourneyServer s, Message m, string metric, DateTimeOffset at, string? reason = null)
    {
        await using var session = await s.Store.OpenSessionAsync();
        var fresh = (await session.GetMessageAsync(m.Id))!;
        var e = StatusTransitions.Apply(fresh, metric, at, reason, "test") ?? DeliveryEvent.For(fresh, metric, at, reason);
        await session.PutMessageAsync(fresh);
        await session.AppendDeliveryEventAsync(e with { RecordedAt = s.Clock.GetUtcNow() });
        await session.CommitAsync();
    }

    /// <summary>What an app's SDK posts when a push arrives or is opened (Customer.io's /push/events).</summary>
    private static async Task PushEventAsync(JourneyServer s, string key, string metric, DateTimeOffset at)
    {
        var push = await PushOfAsync(s, key);
        await s.SendAsync(HttpMethod.Post, "/api/v1/push/events",
            $$"""{"delivery_id":"{{push.Id}}","event":"{{metric}}","device_id":"{{push.Recipients[0]}}","timestamp":{{at.ToUnixTimeSeconds()}}}""");
    }

    private static async Task<Message> PushOfAsync(JourneyServer s, string key) =>
        Assert.Single(await s.Store.GetMessagesAsync(key, 10), m => m.JourneyId == "cart_recovery");

    private static async Task<JsonNode> GetAsync(JourneyServer s, string path) => JsonNode.Parse(await s.Admin.GetStringAsync(path))!;

    [Fact]
    public async Task JourneyRun_DeliveredOpenedBouncedAndHoldout_ReportFiguresConversionsLiftAndSegmentsAreExact()
    {
        var s = await StartAsync(new FakeTimeProvider(JourneyServer.Monday14h), null);
        var start = s.Clock.GetUtcNow();
        var a = new Dictionary<string, string>();
        foreach (var (name, platform) in new[] { ("a1", "ios"), ("a2", "ios"), ("a3", "android"), ("a4", "android"), ("b1", "ios") })
        {
            a[name] = await ShopperAsync(s, s.IdFor("cart_recovery", heldOut: false, name), platform);
        }

        var h1 = await ShopperAsync(s, s.IdFor("cart_recovery", heldOut: true, "h1"), "ios");
        var h2 = await ShopperAsync(s, s.IdFor("cart_recovery", heldOut: true, "h2"), "android");
        await s.SendAsync(HttpMethod.Put, "/api/v1/customers/n1", """{"first_name":"Noa"}""");
        await s.SendAsync(HttpMethod.Post, "/api/v1/customers/n1/events", """{"name":"app_opened"}""");

        await s.AdvanceAsync(TimeSpan.FromMinutes(30));
        var sentAt = start.AddMinutes(30);
        foreach (var key in new[] { a["a1"], a["a2"], a["a3"], a["a4"], a["b1"] })
        {
            Assert.Equal(MessageStatus.Sent, (await PushOfAsync(s, key)).Status); // the send stage recorded it, with its event
        }

        // The app reports receipts and opens through the SDK metrics endpoint, as Customer.io's SDKs do.
        await PushEventAsync(s, a["a1"], "delivered", sentAt.AddMinutes(1));
        await PushEventAsync(s, a["a2"], "delivered", sentAt.AddMinutes(1));
        await PushEventAsync(s, a["a2"], "opened", sentAt.AddMinutes(10));
        await PushEventAsync(s, a["a3"], "delivered", sentAt.AddMinutes(1));
        await RecordAsync(s, await PushOfAsync(s, a["b1"]), MessageStatus.Bounced, sentAt, MessageReason.InvalidToken);
        foreach (var key in new[] { h1, h2 })
        {
            // The step recorded the holdout as the message's status and as a delivery event.
            var held = await PushOfAsync(s, key);
            Assert.Equal((MessageStatus.Undeliverable, MessageReason.Holdout), (held.Status, held.Reason));
        }

        // 15:00: a1, a2 (delivered), a4 (sent, never delivered), b1 (bounced) and h1 (holdout) buy the cart.
        await s.AdvanceAsync(TimeSpan.FromMinutes(30));
        foreach (var key in new[] { a["a1"], a["a2"], a["a4"], a["b1"], h1 })
        {
            await s.SendAsync(HttpMethod.Post, $"/api/v1/customers/cio_{key}/events", """{"name":"purchase","data":{"cart_id":"cart-1"}}""");
        }

        // Only the messages that reached their person before the goal are converted; every buyer's instance is.
        Assert.Equal(MessageStatus.Converted, (await PushOfAsync(s, a["a1"])).Status);
        Assert.Equal(MessageStatus.Converted, (await PushOfAsync(s, a["a2"])).Status);
        Assert.Equal(MessageStatus.Sent, (await PushOfAsync(s, a["a4"])).Status);
        Assert.Equal(MessageStatus.Bounced, (await PushOfAsync(s, a["b1"])).Status);
        foreach (var key in new[] { a["a4"], a["b1"], h1 })
        {
            Assert.Equal(InstanceStatus.Converted, Assert.Single(await s.Store.GetInstancesAsync(key), i => i.JourneyId == "cart_recovery").Status);
        }

        var r = await GetAsync(s, $"/admin/v1/reports/delivery?from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z");
        var totals = r["totals"]!;
        Assert.Equal((5, 3, 1, 2), (totals["sent"]!.GetValue<int>(), totals["delivered"]!.GetValue<int>(), totals["opened"]!.GetValue<int>(), totals["converted"]!.GetValue<int>()));
        Assert.Equal((0.6, 0.3333, 0.6667), (totals["delivery_rate"]!.GetValue<double>(), totals["open_rate"]!.GetValue<double>(), totals["conversion_rate"]!.GetValue<double>()));
        var counts = totals["counts"]!;
        Assert.Equal((3, 1, 2, 1, 2), (counts["delivered"]!.GetValue<int>(), counts["opened"]!.GetValue<int>(), counts["converted"]!.GetValue<int>(),
            counts["bounced"]!.GetValue<int>(), counts["undeliverable"]!.GetValue<int>()));
        var ios = r["by_channel"]!.AsArray().Single(c => c!["platform"]?.GetValue<string>() == "ios")!;
        var android = r["by_channel"]!.AsArray().Single(c => c!["platform"]?.GetValue<string>() == "android")!;
        Assert.Equal((3, 2, 0.6667), (ios["sent"]!.GetValue<int>(), ios["delivered"]!.GetValue<int>(), ios["delivery_rate"]!.GetValue<double>()));
        Assert.Equal((2, 1, 0.5), (android["sent"]!.GetValue<int>(), android["delivered"]!.GetValue<int>(), android["delivery_rate"]!.GetValue<double>()));
        var row = Assert.Single(r["rows"]!.AsArray(), x => x!["step_id"]!.GetValue<string>() == "push" && x["platform"]!.GetValue<string>() == "ios")!;
        Assert.Equal(("cart_recovery", "push", 2), (row["journey_id"]!.GetValue<string>(), row["channel"]!.GetValue<string>(), row["converted"]!.GetValue<int>()));
        var failures = r["failures"]!.AsArray().Select(f => (f!["metric"]!.GetValue<string>(), f["reason"]!.GetValue<string>(), f["platform"]!.GetValue<string>(), f["count"]!.GetValue<int>())).ToList();
        Assert.Equal([("bounced", "invalid_token", "ios", 1), ("undeliverable", "holdout", "android", 1), ("undeliverable", "holdout", "ios", 1)], failures);
        var lift = Assert.Single(r["lift"]!.AsArray(), l => l!["journey_id"]!.GetValue<string>() == "cart_recovery")!;
        Assert.Equal((5, 4, 0.8, 2, 1, 0.5, 0.3, 0.6), (lift["messaged_entries"]!.GetValue<int>(), lift["messaged_converted"]!.GetValue<int>(), lift["messaged_rate"]!.GetValue<double>(),
            lift["holdout_entries"]!.GetValue<int>(), lift["holdout_converted"]!.GetValue<int>(), lift["holdout_rate"]!.GetValue<double>(),
            lift["lift_points"]!.GetValue<double>(), lift["relative_lift"]!.GetValue<double>()));

        var coverage = await GetAsync(s, "/admin/v1/reports/token-coverage?days=7");
        Assert.Equal((8, 7, 0.875, 4, 3), (coverage["active"]!.GetValue<int>(), coverage["with_token"]!.GetValue<int>(), coverage["coverage"]!.GetValue<double>(),
            coverage["by_platform"]!["ios"]!.GetValue<int>(), coverage["by_platform"]!["android"]!.GetValue<int>()));

        async Task<List<string>> MembersAsync(string segment, string query = "")
        {
            var keys = new List<string>();
            string? after = null;
            do
            {
                var page = await GetAsync(s, $"/admin/v1/reports/segments/{segment}?limit=3&from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z{query}" + (after is null ? "" : $"&after={after}"));
                keys.AddRange(page["people"]!.AsArray().Select(p => p!["cio_id"]!.GetValue<string>()["cio_".Length..]));
                after = page["next"]?.GetValue<string>();
            }
            while (after is not null);
            return keys;
        }

        Assert.Equal(new[] { a["a1"], a["a2"], a["a3"] }.Order(StringComparer.Ordinal), await MembersAsync("recently_delivered"));
        Assert.Equal([a["b1"]], await MembersAsync("delivery_failures"));
        Assert.Equal(new[] { a["a4"], a["b1"] }.Order(StringComparer.Ordinal), await MembersAsync("not_delivered", "&channel=push"));
        var withToken = await MembersAsync("has_token");
        Assert.Equal(7, withToken.Distinct().Count());
        Assert.Equal(new[] { a["a1"], a["a2"], a["a3"], a["a4"], a["b1"], h1, h2 }.Order(StringComparer.Ordinal), withToken);
        var noToken = await GetAsync(s, "/admin/v1/reports/segments/no_token");
        Assert.Equal("n1", Assert.Single(noToken["people"]!.AsArray())!["id"]!.GetValue<string>());
        Assert.Equal(404, (int)(await s.Admin.GetAsync("/admin/v1/reports/segments/nobody")).StatusCode);
        Assert.Equal(400, (int)(await s.Admin.GetAsync($"/admin/v1/reports/delivery?from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z")).StatusCode);
    }

    /// <summary>Synthetic messages' metrics (no journey run): what a day of traffic on one platform leaves in the log.</summary>
    private static async Task TrafficAsync(JourneyServer s, string prefix, DateTimeOffset at, int sent, int delivered)
    {
        await using var session = await s.Store.OpenSessionAsync();
        for (var n = 0; n < sent; n++)
        {
            var m = new Message
            {
                Id = $"{prefix}-{n}",
                ProfileKey = "p-" + prefix + n,
                InstanceId = "i",
                JourneyId = "cart_recovery",
                StepId = "push",
                Channel = Channel.Push,
                Status = MessageStatus.Drafted,
                CreatedAt = at,
                Recipients = ["t"],
                Platforms = ["ios"],
            };
            var t = at.AddSeconds(n);
            await session.AppendDeliveryEventAsync(StatusTransitions.Apply(m, MessageStatus.Sent, t, null, null)! with { RecordedAt = t });
            if (n < delivered)
            {
                await session.AppendDeliveryEventAsync(StatusTransitions.Apply(m, MessageStatus.Delivered, t.AddSeconds(2), null, "sdk")! with { RecordedAt = t.AddSeconds(2) });
            }
        }

        await session.CommitAsync();
    }

    [Fact]
    public async Task DeliveryRateDrop_PostsOneAlert_EvenWithConcurrentChecksAndAcrossARestart()
    {
        var clock = new FakeTimeProvider(JourneyServer.Monday14h);
        string[] settings = [$"--Nudge:Alerts:WebhookUrl={_receiver.Url}", "--Nudge:Alerts:MinVolume=10", "--Nudge:Alerts:DropPercentagePoints=20"];
        var s = await StartAsync(clock, null, settings);
        var now = clock.GetUtcNow();
        await TrafficAsync(s, "base", now.AddHours(-10), 20, 19);   // 95 %
        await TrafficAsync(s, "win", now.AddMinutes(-30), 20, 6);   // 30 %

        var alerter = s.App.Services.GetRequiredService<DeliveryAlerter>();
        var posted = await Task.WhenAll(alerter.RunOnceAsync(default), alerter.RunOnceAsync(default));
        clock.Advance(TimeSpan.FromMinutes(5));
        var again = await alerter.RunOnceAsync(default);

        // A restarted process (same data) finds the drop posted already.
        var dataDir = s.DataDir;
        _servers.Remove(s);
        await s.DisposeAsync();
        var restarted = await StartAsync(clock, dataDir, settings);
        clock.Advance(TimeSpan.FromMinutes(5));
        var afterRestart = await restarted.App.Services.GetRequiredService<DeliveryAlerter>().RunOnceAsync(default);

        Assert.Equal(1, posted.Sum());
        Assert.Equal((0, 0), (again, afterRestart));
        var alert = JsonNode.Parse(Assert.Single(_receiver.Requests).Body)!;
        Assert.Equal(("delivery_rate_drop", "push", "ios", 0.3, 0.95, 65.0), (alert["alert"]!.GetValue<string>(), alert["channel"]!.GetValue<string>(), alert["platform"]!.GetValue<string>(),
            alert["window_rate"]!.GetValue<double>(), alert["baseline_rate"]!.GetValue<double>(), alert["drop_percentage_points"]!.GetValue<double>()));
        Assert.StartsWith("Nudge: push ios delivery rate fell to 30%", alert["text"]!.GetValue<string>());
        Assert.Contains("\"status\":\"firing\"", (await restarted.Store.GetCheckpointAsync("alert:push/ios"))!.Value);

        // The admin view of the rule (what the dashboard shows) sees the same drop and the alert's state; it posts nothing.
        var status = await GetAsync(restarted, "/admin/v1/reports/alerts");
        var ios = Assert.Single(status["channels"]!.AsArray(), c => c!["platform"]?.GetValue<string>() == "ios")!;
        Assert.Equal((true, "firing", 0.3, 0.95, 65.0, true), (ios["fires"]!.GetValue<bool>(), ios["state"]!.GetValue<string>(),
            ios["window_rate"]!.GetValue<double>(), ios["baseline_rate"]!.GetValue<double>(), ios["drop_points"]!.GetValue<double>(), status["enabled"]!.GetValue<bool>()));
        Assert.Single(_receiver.Requests);
    }

    /// <summary>An implementation of the documented signature written apart from Nudge's (HMAC class, string input).</summary>
    private static bool SignatureValid(LoopbackReceiver.Request r)
    {
        var timestamp = r.Headers["X-Nudge-Timestamp"];
        using var hmac = new HMACSHA256(Encoding.UTF8.GetBytes(Secret));
        var expected = "v0=" + Convert.ToHexString(hmac.ComputeHash(Encoding.UTF8.GetBytes("v0:" + timestamp + ":" + Encoding.UTF8.GetString(r.Body)))).ToLowerInvariant();
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(r.Headers["X-Nudge-Signature"]));
    }

    [Fact]
    public async Task ReportingWebhooks_SignedInRecordedOrder_RetriedAfterA500_NoLossNoDuplicateAcceptance()
    {
        var clock = new FakeTimeProvider(JourneyServer.Monday14h);
        var s = await StartAsync(clock, null, $"--Nudge:ReportingWebhooks:Url={_receiver.Url}", $"--Nudge:ReportingWebhooks:Secret={Secret}");
        _receiver.StatusFor = n => n == 3 ? 500 : 200;
        await TrafficAsync(s, "first", clock.GetUtcNow(), 3, 3);    // 6 events, recorded over 3 s
        clock.Advance(TimeSpan.FromSeconds(20));                    // past the settle time
        var sender = s.App.Services.GetRequiredService<ReportingWebhookSender>();

        var firstPass = await sender.RunOnceAsync(TimeSpan.FromSeconds(30), default);     // 2 accepted, the 3rd refused
        var duringBackoff = await sender.RunOnceAsync(TimeSpan.FromSeconds(30), default);
        clock.Advance(TimeSpan.FromSeconds(2));
        var retried = await sender.RunOnceAsync(TimeSpan.FromSeconds(30), default);
        await TrafficAsync(s, "second", clock.GetUtcNow(), 1, 1);
        var beforeSettled = await sender.RunOnceAsync(TimeSpan.FromSeconds(30), default);
        clock.Advance(TimeSpan.FromSeconds(20));
        var later = await sender.RunOnceAsync(TimeSpan.FromSeconds(30), default);
        var nothingNew = await sender.RunOnceAsync(TimeSpan.FromSeconds(30), default);

        Assert.Equal((2, 0, 4, 0, 2, 0), (firstPass, duringBackoff, retried, beforeSettled, later, nothingNew));
        var all = await s.Store.GetDeliveryEventsAsync(new DeliveryEventQuery(DateTimeOffset.UnixEpoch, clock.GetUtcNow(), 100, ByRecordedAt: true));

        var requests = _receiver.Requests.ToList();
        Assert.All(requests, r => Assert.True(SignatureValid(r), "signature"));
        var accepted = requests.Where(r => r.Status == 200).Select(r => JsonNode.Parse(r.Body)!["event_id"]!.GetValue<string>()).ToList();

        // At least once: every event accepted; with no crash in between, each accepted exactly once, in RecordedAt order.
        Assert.Equal(all.Select(e => e.Id), accepted);
        var refused = Assert.Single(requests, r => r.Status == 500);
        Assert.Equal(JsonNode.Parse(refused.Body)!["event_id"]!.GetValue<string>(), accepted[2]);
        Assert.Equal(8, all.Count);
        Assert.Equal(all.Count + 1, requests.Count);

        var first = JsonNode.Parse(requests[0].Body)!;
        Assert.Equal(("push", "sent", "first-0", "cart_recovery", "push", "ios"), (first["object_type"]!.GetValue<string>(), first["metric"]!.GetValue<string>(),
            first["data"]!["delivery_id"]!.GetValue<string>(), first["data"]!["journey_id"]!.GetValue<string>(), first["data"]!["action_id"]!.GetValue<string>(),
            first["data"]!["device_platform"]!.GetValue<string>()));
    }
}
