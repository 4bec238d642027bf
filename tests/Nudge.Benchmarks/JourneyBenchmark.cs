using System.Diagnostics;
using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Pipeline;
using Nudge.Sqlite.Store;

namespace Nudge.Benchmarks;

/// <summary>
/// Journey engine in the embedded store: a backlog of waiting instances (1,000,000 by default), then
/// (1) throughput: a block of due instances fired as fast as the timer stage can, each one a run-step that completes a
///     delay, renders and stores a push, and enters the next delay;
/// (2) lateness: instances due over 20 s of wall time, fired by the timer loop the embedded server runs, measuring
///     how long after its due time each step ran.
/// The store is durable (fsync on commit), exactly as the server opens it.
/// </summary>
internal static class JourneyBenchmark
{
    private const string Journey = """
        id: bench
        version: 1
        trigger: { event: add_to_cart }
        exit:
          - event: purchase
            match: [cart_id]
        steps:
          - id: wait_1
            delay: 1h
          - id: push
            send:
              channel: push
              push:
                title: "{{ customer.first_name | default: 'Hi' }}, your cart is waiting"
                body: "Cart {{ event.cart_id }} is saved."
                deep_link: "shop://cart/{{ event.cart_id }}"
          - id: wait_2
            delay: 24h
          - id: email
            send:
              channel: email
              email: { subject: "Still there?", html: "<p>Cart {{ event.cart_id }}</p>" }
        """;

    public sealed record Result(int Instances, int Fired, double StepsPerSecond, double SeedSeconds, double P50Ms, double P99Ms, double MaxMs, int LatenessSamples, double PeakRssMiB);

    public static async Task<Result> RunAsync(int instances, int fireCount, int latenessCount, int batch, string dir)
    {
        Machine.ResetPeakRss();
        var journey = JourneyLoader.Parse("bench.yaml", Journey);
        var engine = new JourneyEngine(new EngineOptions(
            new FrequencyCaps([new(Channel.Push, 3, TimeSpan.FromHours(24)), new(Channel.Email, 3, TimeSpan.FromHours(24))]),
            new Schedule("UTC", null)), new Templates());
        var runtime = new JourneyRuntime([journey], engine, new IngestLimits(), eventsAlwaysDelivered: true);
        await using var store = await SqliteStore.OpenAsync(Path.Combine(dir, "bench.db"));

        var now = DateTimeOffset.UtcNow;
        var seed = Stopwatch.StartNew();
        var rng = new Random(7);
        var wakes = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        const int perSession = 20_000;
        for (var start = 0; start < instances; start += perSession)
        {
            await using var s = await store.OpenSessionAsync();
            for (var n = start; n < Math.Min(instances, start + perSession); n++)
            {
                // The first block is due now (throughput), the next is due over 20 s from the lateness start, the rest waits hours.
                DateTimeOffset wake = n < fireCount ? now.AddSeconds(-1)
                    : n < fireCount + latenessCount ? DateTimeOffset.MaxValue
                    : now.AddHours(2).AddSeconds(rng.Next(0, 86_400));
                await SeedAsync(s, journey, n, now, wake);
            }

            await s.CommitAsync();
            Console.Error.Write($"\rseeded {Math.Min(instances, start + perSession):N0} / {instances:N0}");
        }

        Console.Error.WriteLine();
        var seedSeconds = seed.Elapsed.TotalSeconds;

        // (1) Throughput: fire the due block with the timer stage's batches.
        var fired = 0;
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var due = await store.DueInstancesAsync(DateTimeOffset.UtcNow, batch);
            if (due.Count == 0)
            {
                break;
            }

            await using var s = await store.OpenSessionAsync();
            foreach (var (id, _) in due)
            {
                await runtime.FireAsync(s, id, DateTimeOffset.UtcNow);
            }

            await s.CommitAsync();
            fired += due.Count;
        }

        var stepsPerSecond = fired / watch.Elapsed.TotalSeconds;

        // (2) Lateness: re-time the lateness block to fall due over 20 s, then run the embedded timer loop.
        var t0 = DateTimeOffset.UtcNow.AddSeconds(2);
        await using (var s = await store.OpenSessionAsync())
        {
            for (var n = fireCount; n < fireCount + latenessCount; n++)
            {
                var i = (await s.GetInstanceAsync($"bench:{Key(n)}:1"))!;
                i.WakeAt = t0 + TimeSpan.FromMilliseconds(20_000.0 * (n - fireCount) / latenessCount);
                i.StepEnteredAt = i.WakeAt.Value - TimeSpan.FromHours(1);
                wakes[i.Id] = i.WakeAt.Value;
                await s.PutInstanceAsync(i);
            }

            await s.CommitAsync();
        }

        var lateness = new List<double>(latenessCount);
        while (lateness.Count < latenessCount)
        {
            var nowTick = DateTimeOffset.UtcNow;
            var due = await store.DueInstancesAsync(nowTick, batch);
            if (due.Count > 0)
            {
                await using var s = await store.OpenSessionAsync();
                foreach (var (id, _) in due)
                {
                    var at = DateTimeOffset.UtcNow;
                    await runtime.FireAsync(s, id, at);
                    if (wakes.TryGetValue(id, out var w))
                    {
                        lateness.Add((at - DateTimeOffset.FromUnixTimeMilliseconds(w.ToUnixTimeMilliseconds())).TotalMilliseconds);
                    }
                }

                await s.CommitAsync();
                continue;
            }

            // The embedded timer loop: sleep until the earliest wake-up, at most 1 s.
            var next = await store.NextWakeAsync();
            var wait = next is { } nx ? nx - DateTimeOffset.UtcNow : TimeSpan.FromSeconds(1);
            wait = wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : wait;
            await Task.Delay(wait);
        }

        lateness.Sort();
        return new Result(instances, fired, stepsPerSecond, seedSeconds, Machine.Percentile(lateness, 50), Machine.Percentile(lateness, 99),
            lateness[^1], lateness.Count, Machine.PeakRssMiB());
    }

    private static string Key(int n) => $"p{n:D8}";

    private static async Task SeedAsync(IStoreSession s, JourneyDefinition j, int n, DateTimeOffset now, DateTimeOffset wake)
    {
        var key = Key(n);
        var p = new Profile { Key = key, Id = "customer-" + n, Email = $"c{n}@example.com", CreatedAt = now, UpdatedAt = now };
        ProfileRules.ApplyAttributes(p, new JsonObject { ["first_name"] = "Sam", ["cart_value"] = 120 }, now.AddDays(-1), "bench", null, 300);
        await s.PutProfileAsync(p);
        await s.PutDeviceAsync(new Nudge.Core.Profiles.Device { Token = $"token-{n}", ProfileKey = key, Platform = Platforms.Ios, LastUsed = now, CreatedAt = now, UpdatedAt = now });
        var trigger = new TriggerSnapshot("add_to_cart", "e" + n, now.AddMinutes(-30), new JsonObject { ["cart_id"] = "cart-" + n });
        var i = JourneyEngine.NewInstance(j, key, [], trigger, now.AddMinutes(-30));
        i.CurrentStep = "wait_1";
        i.StepVisits["wait_1"] = 1;
        i.StepEnteredAt = wake == DateTimeOffset.MaxValue ? now : wake - TimeSpan.FromHours(1);
        i.WakeAt = wake == DateTimeOffset.MaxValue ? now.AddDays(2) : wake;
        await s.PutInstanceAsync(i);
    }
}
