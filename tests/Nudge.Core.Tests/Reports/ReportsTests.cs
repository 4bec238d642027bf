using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Reports;
using Nudge.Core.Storage;

namespace Nudge.Core.Tests.Reports;

public class ReportsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static Message Msg(string id, Channel channel = Channel.Push, string platform = "ios", bool holdout = false) => new()
    {
        Id = id,
        ProfileKey = "p-" + id,
        InstanceId = "i-" + id,
        JourneyId = "cart",
        StepId = "push",
        Channel = channel,
        Status = MessageStatus.Drafted,
        CreatedAt = T0,
        Holdout = holdout,
        Recipients = ["r-" + id],
        Platforms = channel == Channel.Push ? [platform] : [],
        History = [new StatusChange(MessageStatus.Drafted, T0, null)],
    };

    private static DeliveryEvent Ev(Message m, string metric, DateTimeOffset at, string? reason = null) =>
        StatusTransitions.Apply(m, metric, at, reason, null) ?? DeliveryEvent.For(m, metric, at, reason);

    [Fact]
    public void Converts_DeliveredOpenedOrClicked_WithinTheWindow_ButNeverSentOnly()
    {
        var strict = new AttributionRule(PushSentCountsAsDelivered: false);
        var delivered = Msg("a", Channel.Sms);
        Ev(delivered, MessageStatus.Sent, T0);
        Ev(delivered, MessageStatus.Delivered, T0.AddMinutes(1));
        var sentOnly = Msg("b", Channel.Sms);
        Ev(sentOnly, MessageStatus.Sent, T0);
        var opened = Msg("c");
        Ev(opened, MessageStatus.Opened, T0.AddMinutes(5));
        var push = Msg("d");
        Ev(push, MessageStatus.Sent, T0);

        Assert.True(strict.Converts(delivered, T0.AddHours(1), TimeSpan.FromDays(1)));
        Assert.False(strict.Converts(delivered, T0.AddDays(2), TimeSpan.FromDays(1)));   // outside the window
        Assert.False(strict.Converts(delivered, T0, TimeSpan.FromDays(1)));              // goal before the delivery
        Assert.False(strict.Converts(sentOnly, T0.AddHours(1), TimeSpan.FromDays(1)));   // sent is not reach
        Assert.True(strict.Converts(opened, T0.AddHours(1), TimeSpan.FromDays(1)));
        Assert.False(strict.Converts(push, T0.AddHours(1), TimeSpan.FromDays(1)));
        Assert.True(AttributionRule.Default.Converts(push, T0.AddHours(1), TimeSpan.FromDays(1)));  // push: no receipts by default
        Assert.False(AttributionRule.Default.Converts(sentOnly, T0.AddHours(1), TimeSpan.FromDays(1)));
        var held = Msg("h", holdout: true);
        Ev(held, MessageStatus.Delivered, T0);
        Assert.False(AttributionRule.Default.Converts(held, T0.AddHours(1), TimeSpan.FromDays(1)));
    }

    [Fact]
    public void Report_CountsRatesFailuresAndLift_AreExact()
    {
        var rule = new AttributionRule(PushSentCountsAsDelivered: false);
        var b = new DeliveryReportBuilder(T0, T0.AddDays(1), rule);
        var events = new List<DeliveryEvent>();
        for (var n = 0; n < 10; n++)
        {
            var m = Msg($"m{n}", platform: n < 6 ? "ios" : "android");
            if (n < 8)
            {
                events.Add(Ev(m, MessageStatus.Sent, T0.AddMinutes(n)));
            }
            else
            {
                events.Add(Ev(m, MessageStatus.Bounced, T0.AddMinutes(n), MessageReason.InvalidToken));
            }

            if (n < 5)
            {
                events.Add(Ev(m, MessageStatus.Delivered, T0.AddMinutes(n + 1)));
            }

            if (n < 2)
            {
                events.Add(Ev(m, MessageStatus.Opened, T0.AddMinutes(n + 2)));
                events.Add(Ev(m, MessageStatus.Converted, T0.AddMinutes(n + 3)));
            }
        }

        events.Add(Ev(Msg("late"), MessageStatus.Sent, T0.AddDays(1)));  // outside [from, to): ignored
        events.Reverse();  // order does not matter
        foreach (var e in events)
        {
            b.Add(e);
        }

        b.Add(
        [
            new InstanceOutcome("i1", "cart", "p1", T0, false, true, T0.AddHours(1)),
            new InstanceOutcome("i2", "cart", "p2", T0, false, true, null),
            new InstanceOutcome("i3", "cart", "p3", T0, false, true, T0.AddHours(1)),
            new InstanceOutcome("i4", "cart", "p4", T0, false, true, null),
            new InstanceOutcome("i5", "cart", "p5", T0, true, true, T0.AddHours(1)),
            new InstanceOutcome("i6", "cart", "p6", T0, true, true, null),
            new InstanceOutcome("i7", "cart", "p7", T0, true, true, null),
            new InstanceOutcome("i8", "cart", "p8", T0, true, true, null),
            new InstanceOutcome("i9", "cart", "p9", T0, false, false, null),        // never started
            new InstanceOutcome("i10", "cart", "p10", T0.AddDays(2), false, true, null),  // outside the range
        ]);
        var r = b.Build();

        Assert.Equal(8 + 2 + 5 + 2 + 2, r.Events);
        var t = r.Totals;
        Assert.Equal((10L, 5L, 2L, 2L), (t.Sent, t.Delivered, t.Opened, t.Converted));
        Assert.Equal((0.5, 0.4, 0.4), (t.DeliveryRate, t.OpenRate, t.ConversionRate));
        Assert.Equal(8, t.Counts[MessageStatus.Sent]);
        var ios = Assert.Single(r.ByChannel, c => c.Platform == "ios");
        var android = Assert.Single(r.ByChannel, c => c.Platform == "android");
        Assert.Equal((6L, 5L, 0.8333), (ios.Sent, ios.Delivered, ios.DeliveryRate!.Value));
        Assert.Equal((4L, 0L, 0.0), (android.Sent, android.Delivered, android.DeliveryRate!.Value));
        Assert.Equal(2, r.Rows.Count);
        var failure = Assert.Single(r.Failures);
        Assert.Equal(new FailureCount(MessageStatus.Bounced, MessageReason.InvalidToken, "push", "android", 2), failure);
        var lift = Assert.Single(r.Lift);
        Assert.Equal((4L, 2L, 0.5, 4L, 1L, 0.25), (lift.MessagedEntries, lift.MessagedConverted, lift.MessagedRate!.Value, lift.HoldoutEntries, lift.HoldoutConverted, lift.HoldoutRate!.Value));
        Assert.Equal((0.25, 1.0), (lift.LiftPoints!.Value, lift.RelativeLift!.Value));
    }

    [Fact]
    public void StepFlow_CountsEntriesCurrentAndEarlyExitsPerStep_WithoutHoldoutOrDuplicates()
    {
        InstanceOutcome O(string id, bool holdout, string? current, bool ended, params string[] steps) =>
            new(id, "cart", "p-" + id, T0, holdout, steps.Length > 0, null) { Steps = steps, CurrentStep = current, Ended = ended };
        var b = new DeliveryReportBuilder(T0.AddDays(-1), T0.AddDays(1));
        b.Add(
        [
            O("waiting", false, "wait_4h", false, "wait_30m", "push", "wait_4h"),
            O("exited", false, "wait_4h", true, "wait_30m", "push", "wait_4h"),
            O("exited", false, "wait_4h", true, "wait_30m", "push", "wait_4h"),  // the same instance twice: counted once
            O("goal", false, "wait_30m", true, "wait_30m"),
            O("done", false, null, true, "wait_30m", "push", "wait_4h", "email"),
            O("held", true, "wait_4h", false, "wait_30m", "push", "wait_4h"),  // holdout: in the lift, not the funnel
        ]);

        var flow = b.Build().Steps;

        Assert.Equal(
        [
            new StepFlow("cart", "email", 1, 0, 0),
            new StepFlow("cart", "push", 3, 0, 0),
            new StepFlow("cart", "wait_30m", 4, 0, 1),
            new StepFlow("cart", "wait_4h", 3, 1, 1),
        ], flow);
    }

    [Fact]
    public void Lift_WithoutHoldoutConversions_HasNoRelativeLift()
    {
        var lift = Assert.Single(DeliveryReportBuilder.Lift([new("i1", "j", "p1", T0, false, true, T0), new("i2", "j", "p2", T0, true, true, null)]));
        Assert.Equal((1.0, 0.0, 1.0), (lift.MessagedRate!.Value, lift.HoldoutRate!.Value, lift.LiftPoints!.Value));
        Assert.Null(lift.RelativeLift);
    }

    private static List<DeliveryEvent> Traffic(DateTimeOffset from, int count, int delivered, string platform, string prefix)
    {
        var list = new List<DeliveryEvent>();
        for (var n = 0; n < count; n++)
        {
            var m = Msg($"{prefix}{n}", platform: platform);
            var at = from.AddSeconds(n);
            list.Add(Ev(m, MessageStatus.Sent, at));
            if (n < delivered)
            {
                list.Add(Ev(m, MessageStatus.Delivered, at.AddSeconds(1)));
            }
        }

        return list;
    }

    [Fact]
    public void Alert_FiresOnADropBeyondTheThreshold_OnlyWithVolume_OncePerDrop_AndReArms()
    {
        var clock = new FakeTimeProvider(T0);
        var s = new AlertSettings(TimeSpan.FromHours(1), TimeSpan.FromHours(24), 20, 50);
        var strict = new AttributionRule(false);
        var now = clock.GetUtcNow();
        var baseline = Traffic(now.AddHours(-10), 100, 90, "ios", "b");
        var events = baseline.Concat(Traffic(now.AddMinutes(-30), 60, 30, "ios", "w"))
            .Concat(Traffic(now.AddHours(-10), 100, 90, "android", "ab")).Concat(Traffic(now.AddMinutes(-30), 60, 50, "android", "aw")).ToList();

        var samples = DeliveryAlerts.Evaluate(events, now, s, strict);
        var ios = Assert.Single(samples, x => x.Key == "push/ios");
        var android = Assert.Single(samples, x => x.Key == "push/android");
        Assert.Equal((60L, 30L, 0.5, 100L, 90L, 0.9, 40.0), (ios.WindowSent, ios.WindowDelivered, ios.WindowRate!.Value, ios.BaselineSent, ios.BaselineDelivered, ios.BaselineRate!.Value, ios.DropPoints!.Value));
        Assert.True(DeliveryAlerts.Fires(ios, s));
        Assert.False(DeliveryAlerts.Fires(android, s));  // 83.3 % vs 90 %: 6.7 points

        // Too few messages in the window: no judgement.
        var quiet = DeliveryAlerts.Evaluate(baseline.Concat(Traffic(now.AddMinutes(-30), 49, 0, "ios", "q")), now, s, strict).Single();
        Assert.False(DeliveryAlerts.Fires(quiet, s));

        // Claimed once; while posting or fired, nothing more; a dead claim is taken over after the lease.
        var claim = DeliveryAlerts.Next(null, ios, now, s)!;
        Assert.Equal(DeliveryAlerts.Posting, claim.Status);
        Assert.Null(DeliveryAlerts.Next(claim, ios, now.AddMinutes(1), s));
        Assert.Equal(claim.AlertId, DeliveryAlerts.Next(claim, ios, now + DeliveryAlerts.ClaimLease + TimeSpan.FromSeconds(1), s)!.AlertId);
        var firing = claim with { Status = DeliveryAlerts.Firing };
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Null(DeliveryAlerts.Next(firing, ios, clock.GetUtcNow(), s));

        // Back within half the threshold: re-armed (ok), and a later drop alerts again with a new id.
        var recovered = DeliveryAlerts.Evaluate(baseline.Concat(Traffic(now.AddMinutes(-30), 60, 52, "ios", "r")), now, s, strict).Single();
        Assert.Equal(DeliveryAlerts.Ok, DeliveryAlerts.Next(firing, recovered, clock.GetUtcNow(), s)!.Status);
        Assert.NotEqual(claim.AlertId, DeliveryAlerts.Next(new AlertState(DeliveryAlerts.Ok, now), ios, clock.GetUtcNow(), s)!.AlertId);

        var payload = DeliveryAlerts.Payload(ios, s, claim.AlertId!);
        Assert.Contains("push ios delivery rate fell to 50%", payload["text"]!.GetValue<string>());
        Assert.Equal(40.0, payload["drop_percentage_points"]!.GetValue<double>());
    }

    [Fact]
    public void Alert_PushWithoutReceipts_JudgesProviderAcceptance()
    {
        var s = AlertSettings.Default with { MinVolume = 10 };
        var events = new List<DeliveryEvent>();
        for (var n = 0; n < 20; n++)
        {
            var m = Msg($"x{n}");
            var at = n < 10 ? T0.AddHours(-5).AddMinutes(n) : T0.AddMinutes(-30 + n);
            events.Add(n is >= 10 and < 16 ? Ev(m, MessageStatus.Bounced, at, MessageReason.InvalidToken) : Ev(m, MessageStatus.Sent, at));
        }

        var sample = DeliveryAlerts.Evaluate(events, T0, s, AttributionRule.Default).Single();
        Assert.Equal((1.0, 0.4), (sample.BaselineRate!.Value, sample.WindowRate!.Value));
        Assert.True(DeliveryAlerts.Fires(sample, s));
    }

    [Fact]
    public void ReportingWebhook_EnvelopeAndSignature_MatchAnIndependentHmac()
    {
        var m = Msg("m1");
        m.Deliveries = [new MessageDelivery { Recipient = "r-m1", Platform = "ios", Status = DeliveryStatus.Bounced, ProviderId = "apns-1" }];
        var e = Ev(m, MessageStatus.Bounced, T0, MessageReason.InvalidToken);
        var body = ReportingWebhook.Body(e, null);
        var env = System.Text.Json.Nodes.JsonNode.Parse(body)!;
        Assert.Equal((e.Id, "push", "bounced", T0.ToUnixTimeSeconds()), (env["event_id"]!.GetValue<string>(), env["object_type"]!.GetValue<string>(),
            env["metric"]!.GetValue<string>(), env["timestamp"]!.GetValue<long>()));
        var data = env["data"]!;
        Assert.Equal(("m1", "cart", "push", "r-m1", "ios", "invalid_token", "cio_p-m1"), (data["delivery_id"]!.GetValue<string>(), data["journey_id"]!.GetValue<string>(),
            data["action_id"]!.GetValue<string>(), data["device_id"]!.GetValue<string>(), data["device_platform"]!.GetValue<string>(),
            data["failure_message"]!.GetValue<string>(), data["identifiers"]!["cio_id"]!.GetValue<string>()));

        var secret = Encoding.UTF8.GetBytes("s3cret-s3cret-s3cret");
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, secret);
        hmac.AppendData(Encoding.ASCII.GetBytes("v0:1700000000:"));
        hmac.AppendData(body);
        Assert.Equal("v0=" + Convert.ToHexString(hmac.GetHashAndReset()).ToLowerInvariant(), ReportingWebhook.Sign(secret, 1700000000, body));
    }

    [Fact]
    public void ReportingWebhook_Backoff_DoublesUpToTheCap()
    {
        Assert.Equal(TimeSpan.FromSeconds(1), ReportingWebhook.Backoff(1, TimeSpan.FromMinutes(5), 0));
        Assert.Equal(TimeSpan.FromSeconds(8), ReportingWebhook.Backoff(4, TimeSpan.FromMinutes(5), 0));
        Assert.Equal(TimeSpan.FromSeconds(9.6), ReportingWebhook.Backoff(4, TimeSpan.FromMinutes(5), 1));
        Assert.Equal(TimeSpan.FromMinutes(5), ReportingWebhook.Backoff(40, TimeSpan.FromMinutes(5), 1));
    }

    [Fact]
    public void Segments_FromEventsAndPeople_AndPaging()
    {
        var rule = new AttributionRule(false);
        var a = Msg("a");
        var b = Msg("b");
        var c = Msg("c", Channel.Sms);
        var h = Msg("h", holdout: true);
        var capped = Msg("k");
        List<DeliveryEvent> events =
        [
            Ev(a, MessageStatus.Sent, T0), Ev(a, MessageStatus.Delivered, T0),
            Ev(b, MessageStatus.Bounced, T0, MessageReason.InvalidToken),
            Ev(c, MessageStatus.Undeliverable, T0, MessageReason.ConsentMissing),
            Ev(h, MessageStatus.Undeliverable, T0, MessageReason.Holdout),
            Ev(capped, MessageStatus.Undeliverable, T0, MessageReason.FrequencyCapped),
        ];

        Assert.Equal(["p-a"], Segments.FromEvents(Segments.RecentlyDelivered, events, null, rule));
        Assert.Equal(["p-b", "p-c"], Segments.FromEvents(Segments.DeliveryFailures, events, null, rule));
        Assert.Equal(["p-b"], Segments.FromEvents(Segments.DeliveryFailures, events, "push", rule));
        Assert.Equal(["p-b", "p-c", "p-k"], Segments.FromEvents(Segments.NotDelivered, events, null, rule));

        List<PersonActivity> people = [new("k1", T0, ["ios"]), new("k2", T0, []), new("k3", T0, ["android", "ios"])];
        var coverage = Segments.Coverage(people, T0.AddDays(-30));
        Assert.Equal((3L, 2L, 0.6667), (coverage.Active, coverage.WithToken, coverage.Coverage!.Value));
        Assert.Equal([("android", 1L), ("ios", 2L)], coverage.ByPlatform.Select(kv => (kv.Key, kv.Value)));
        Assert.Equal(["k1", "k3"], Segments.FromPeople(Segments.HasToken, people));
        Assert.Equal(["k2"], Segments.FromPeople(Segments.NoToken, people));

        string[] keys = ["a", "b", "c", "d", "e"];
        Assert.Equal(["a", "b"], Segments.Page(keys, null, 2));
        Assert.Equal(["c", "d"], Segments.Page(keys, "b", 2));
        Assert.Equal(["c", "d", "e"], Segments.Page(keys, "bb", 10));
        Assert.Empty(Segments.Page(keys, "e", 2));
    }
}
