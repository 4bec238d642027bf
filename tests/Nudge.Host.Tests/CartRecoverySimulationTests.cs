using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Pipeline;
using Nudge.Sqlite.Store;
using Nudge.TestSupport;
using Xunit.Abstractions;

namespace Nudge.Host.Tests;

/// <summary>
/// 10,000 shoppers through journeys/cart_recovery.yaml over 30 simulated days on a virtual clock, with quiet hours,
/// frequency caps, the holdout, fallbacks and purchases at random times. Every message is checked against an
/// expectation computed independently here (system time zones, not the engine's NodaTime; its own holdout hash).
/// </summary>
public sealed class CartRecoverySimulationTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset Start = new(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly string[] Zones = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo"];

    private sealed record Shopper(
        string Id, string Zone, bool Device, bool Sms, bool Email, double CartValue, DateTimeOffset AddedAt, DateTimeOffset? PurchasedAt);

    private sealed record Expected(string Channel, string Status, string? Reason, DateTimeOffset At);

    /// <summary>What a run gave: shoppers, wall time of the simulation, messages per channel/status/reason, and every shopper whose messages differ.</summary>
    public sealed record Outcome(int Shoppers, TimeSpan Wall, int Messages, IReadOnlyDictionary<string, int> Counts, IReadOnlyList<string> Mismatches);

    [Fact]
    public async Task TenThousandShoppers_ThirtyDays_EveryMessageAsExpected()
    {
        var r = await RunAsync(10_000, seed: 20261123);

        output.WriteLine($"simulated {r.Shoppers} shoppers over 30 days in {r.Wall.TotalSeconds:F1} s");
        foreach (var (k, v) in r.Counts.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"  {k}: {v}");
        }

        Assert.True(r.Mismatches.Count == 0, $"{r.Mismatches.Count} shoppers differ, e.g.:\n" + string.Join("\n", r.Mismatches.Take(5)));
        Assert.True(r.Counts.Keys.Count(k => k.StartsWith("push/", StringComparison.Ordinal)) >= 2, "the run should exercise several push outcomes");
        Assert.Contains(r.Counts.Keys, k => k == "sms/converted" || k == "sms/delivered");
        Assert.Contains("push/undeliverable/holdout", r.Counts.Keys);
    }

    /// <summary>
    /// Whether the simulation's store fsyncs its commits: no, a simulation rebuilds its data and durability has its own
    /// tests. The benchmark states it from here.
    /// </summary>
    public const bool DurableStore = false;

    /// <summary>
    /// <paramref name="shoppers"/> generated from <paramref name="seed"/> through 30 simulated days (also the end-to-end
    /// benchmark), compared message by message with the expectation.
    /// </summary>
    public static async Task<Outcome> RunAsync(int shoppers, int seed)
    {
        var list = Generate(shoppers, seed);
        var dir = Directory.CreateTempSubdirectory("nudge-sim-").FullName;
        try
        {
            var watch = Stopwatch.StartNew();
            var actual = await SimulateAsync(list, Path.Combine(dir, "sim.db"));
            var wall = watch.Elapsed;

            var mismatches = new List<string>();
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var s in list)
            {
                var got = actual.GetValueOrDefault(s.Id, []);
                foreach (var e in got)
                {
                    var k = $"{e.Channel}/{e.Status}{(e.Reason is null ? "" : "/" + e.Reason)}";
                    counts[k] = counts.GetValueOrDefault(k) + 1;
                }

                var want = Expect(s);
                if (!want.SequenceEqual(got))
                {
                    mismatches.Add($"{s}: expected [{string.Join(", ", want)}] got [{string.Join(", ", got)}]");
                }
            }

            return new Outcome(list.Count, wall, actual.Values.Sum(m => m.Count), counts, mismatches);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static List<Shopper> Generate(int n, int seed)
    {
        var rng = new Random(seed);
        var list = new List<Shopper>(n);
        for (var i = 0; i < n; i++)
        {
            var added = Start + TimeSpan.FromSeconds(rng.Next(0, 5 * 86_400)) + TimeSpan.FromMilliseconds(rng.Next(1, 999));
            DateTimeOffset? purchased = rng.NextDouble() < 0.35 ? added + TimeSpan.FromSeconds(rng.Next(300, 48 * 3600)) + TimeSpan.FromMilliseconds(rng.Next(1, 999)) : null;
            list.Add(new Shopper($"sim-{i}", Zones[rng.Next(Zones.Length)], rng.NextDouble() < 0.7, rng.NextDouble() < 0.5, rng.NextDouble() < 0.9,
                Math.Round(20 + (rng.NextDouble() * 280), 2), added, purchased));
        }

        return list;
    }

    /// <summary>Runs the real pipeline (process-event, run-step, journey-timers, send) on a virtual clock.</summary>
    private static async Task<Dictionary<string, List<Expected>>> SimulateAsync(List<Shopper> shoppers, string dbPath)
    {
        var clock = new FakeTimeProvider(Start - TimeSpan.FromHours(1));
        var journey = JourneyLoader.Parse("cart_recovery.yaml", await File.ReadAllTextAsync(Path.Combine(TestEnvironment.RepositoryRoot(), "journeys", "cart_recovery.yaml")));
        var engine = new JourneyEngine(new EngineOptions(
            new FrequencyCaps([new(Channel.Sms, 1, TimeSpan.FromHours(24)), new(Channel.Sms, 4, TimeSpan.FromDays(30)), new(Channel.Push, 3, TimeSpan.FromHours(24)), new(Channel.Email, 3, TimeSpan.FromHours(24))]),
            new Schedule("UTC", new QuietHours(new TimeOnly(21, 0), new TimeOnly(8, 0)))), new Templates());
        var limits = new IngestLimits();
        var runtime = new JourneyRuntime([journey], engine, limits);
        var processor = new EventProcessor(limits, clock, runtime);
        await using var store = await SqliteStore.OpenAsync(dbPath, DurableStore);
        var sends = new SendStage(store, Nudge.Delivery.ChannelSet.Sandbox(clock));

        // Profiles and devices first, in one transaction.
        var setup = new List<IngestOp>();
        foreach (var s in shoppers)
        {
            var attrs = new JsonObject { ["first_name"] = "Sam", ["timezone"] = s.Zone, ["sms_consent"] = s.Sms };
            if (s.Sms)
            {
                attrs["phone"] = "+14155552671";
            }

            setup.Add(Op(OpKind.Identify, s.Id, clock.GetUtcNow()) with { Attributes = attrs, SetEmail = s.Email ? $"{s.Id}@example.com" : null });
            if (s.Device)
            {
                setup.Add(Op(OpKind.UpsertDevice, s.Id, clock.GetUtcNow()) with { Device = new DeviceData($"{s.Id}-token", "ios", null, clock.GetUtcNow(), []) });
            }
        }

        await ApplyAsync(store, processor, setup);

        var events = shoppers.SelectMany(s => new[]
        {
            (At: s.AddedAt, Op: Op(OpKind.Track, s.Id, s.AddedAt) with { Event = new EventData("add_to_cart", "event", new JsonObject { ["cart_id"] = "cart-" + s.Id, ["cart_value"] = s.CartValue }) }),
        }.Concat(s.PurchasedAt is { } p
            ? [(At: p, Op: Op(OpKind.Track, s.Id, p) with { Event = new EventData("purchase", "event", new JsonObject { ["cart_id"] = "cart-" + s.Id }) })]
            : [])).OrderBy(e => e.At).ToList();

        var end = Start + TimeSpan.FromDays(30);
        var next = 0;
        while (true)
        {
            var wake = await store.NextWakeAsync();
            var eventAt = next < events.Count ? events[next].At : (DateTimeOffset?)null;
            if (eventAt is { } ea && (wake is null || ea < wake))
            {
                clock.SetUtcNow(ea);
                var batch = new List<IngestOp>();
                while (next < events.Count && events[next].At <= ea)
                {
                    batch.Add(events[next++].Op);
                }

                await ApplyAsync(store, processor, batch);
            }
            else if (wake is { } w && w <= end)
            {
                clock.SetUtcNow(w > clock.GetUtcNow() ? w : clock.GetUtcNow());
                var due = await store.DueInstancesAsync(clock.GetUtcNow(), 1000);
                await using var s = await store.OpenSessionAsync();
                foreach (var (id, _) in due)
                {
                    await runtime.FireAsync(s, id, clock.GetUtcNow());
                }

                await s.CommitAsync();
            }
            else
            {
                break;
            }

            while (await sends.RunReadyAsync(clock.GetUtcNow(), 1000, CancellationToken.None) > 0)
            {
            }
        }

        var result = new Dictionary<string, List<Expected>>(StringComparer.Ordinal);
        foreach (var sh in shoppers)
        {
            var key = await store.ResolveAsync(new Identifier(IdentifierKind.Id, sh.Id));
            var msgs = await store.GetMessagesAsync(key!, 100);
            result[sh.Id] = msgs.OrderBy(m => m.CreatedAt).Select(m => new Expected(m.Channel.ToString().ToLowerInvariant(), m.Status, m.Reason, m.CreatedAt)).ToList();
        }

        return result;
    }

    private static async Task ApplyAsync(IStore store, EventProcessor processor, List<IngestOp> ops)
    {
        await using var s = await store.OpenSessionAsync();
        foreach (var op in ops)
        {
            await processor.ProcessAsync(s, op);
        }

        await s.CommitAsync();
    }

    /// <summary>A Track-API op of <paramref name="kind"/> for customer <paramref name="id"/> at <paramref name="at"/> (also seeds the benchmarks' stores).</summary>
    public static IngestOp Op(OpKind kind, string id, DateTimeOffset at) => new()
    {
        Kind = kind,
        MessageId = Guid.NewGuid().ToString("N"),
        Source = "track",
        Timestamp = at,
        ReceivedAt = at,
        Target = new Identifier(IdentifierKind.Id, id),
    };

    /// <summary>The journey's rules, written out longhand for one shopper.</summary>
    private static List<Expected> Expect(Shopper s)
    {
        var list = new List<Expected>();
        var heldOut = HeldOut(s.Id);
        var t0 = s.AddedAt;
        bool Bought(DateTimeOffset by) => s.PurchasedAt is { } p && p < by;

        // Step "push" at +30 min: push, else SMS, else email.
        var t1 = t0.AddMinutes(30);
        if (Bought(t1))
        {
            return list;
        }

        var channel = s.Device ? "push" : s.Sms ? "sms" : s.Email ? "email" : null;
        DateTimeOffset sent1;
        DateTimeOffset? lastMessage = null;
        if (channel is null)
        {
            list.Add(new("push", MessageStatus.Undeliverable, MessageReason.NoDevice, t1));
            sent1 = t1;
        }
        else if (heldOut)
        {
            list.Add(new(channel, MessageStatus.Undeliverable, MessageReason.Holdout, t1));
            sent1 = t1;
        }
        else
        {
            sent1 = channel == "email" ? t1 : QuietEnd(t1, s.Zone) ?? t1;
            if (Bought(sent1))
            {
                return list;
            }

            list.Add(new(channel, MessageStatus.Delivered, null, sent1));
            lastMessage = sent1;
        }

        // Step "email" 4 h after the first send went out.
        var t2 = sent1.AddHours(4);
        if (Bought(t2))
        {
            return Converted(list, s, lastMessage, t0);
        }

        if (!s.Email)
        {
            list.Add(new("email", MessageStatus.Undeliverable, MessageReason.ConsentMissing, t2));
        }
        else if (heldOut)
        {
            list.Add(new("email", MessageStatus.Undeliverable, MessageReason.Holdout, t2));
        }
        else
        {
            list.Add(new("email", MessageStatus.Delivered, null, t2));
            lastMessage = t2;
        }

        // Branch 20 h later: SMS only for carts of 100 or more with SMS consent.
        var t3 = t2.AddHours(20);
        if (Bought(t3))
        {
            return Converted(list, s, lastMessage, t0);
        }

        if (s.CartValue >= 100 && s.Sms)
        {
            if (heldOut)
            {
                list.Add(new("sms", MessageStatus.Undeliverable, MessageReason.Holdout, t3));
            }
            else
            {
                var at = QuietEnd(t3, s.Zone) ?? t3;
                if (Bought(at))
                {
                    return Converted(list, s, lastMessage, t0);
                }

                // SMS 1 per 24 h: the first SMS (if any) went out exactly 24 h or more before, so it no longer counts.
                list.Add(new("sms", MessageStatus.Delivered, null, at));
                lastMessage = at;
            }
        }

        return Converted(list, s, lastMessage, t0);
    }

    /// <summary>
    /// A purchase within 7 days of the last message converts the instance, and with it every message that reached the
    /// person before the purchase, within the goal's 7 days. The sandbox reports every message it accepts delivered, on
    /// every channel, so each one sent reaches.
    /// </summary>
    private static List<Expected> Converted(List<Expected> list, Shopper s, DateTimeOffset? lastMessage, DateTimeOffset t0)
    {
        if (s.PurchasedAt is not { } p || p - (lastMessage ?? t0) > TimeSpan.FromDays(7))
        {
            return list;
        }

        return list.Select(e => e.Status == MessageStatus.Delivered && e.At <= p && p - e.At <= TimeSpan.FromDays(7)
            ? e with { Status = MessageStatus.Converted } : e).ToList();
    }

    /// <summary>End of the 21:00-08:00 quiet window containing <paramref name="at"/> in the zone, via the system tz database.</summary>
    private static DateTimeOffset? QuietEnd(DateTimeOffset at, string zone)
    {
        var tz = TimeZoneInfo.FindSystemTimeZoneById(zone);
        var local = TimeZoneInfo.ConvertTime(at, tz);
        DateTime endLocal;
        if (local.TimeOfDay >= TimeSpan.FromHours(21))
        {
            endLocal = local.Date.AddDays(1).AddHours(8);
        }
        else if (local.TimeOfDay < TimeSpan.FromHours(8))
        {
            endLocal = local.Date.AddHours(8);
        }
        else
        {
            return null;
        }

        return new DateTimeOffset(endLocal, tz.GetUtcOffset(endLocal));
    }

    private static bool HeldOut(string id)
    {
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"Id\n{id}")).AsSpan(0, 10));
        var h = SHA256.HashData(Encoding.UTF8.GetBytes($"holdout\ncart_recovery\n{key}"));
        return BitConverter.ToUInt32(h, 0) % 10_000 < 1000;
    }
}
