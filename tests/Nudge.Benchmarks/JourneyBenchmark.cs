using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Queues;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;
using Nudge.Host.Tests;
using Nudge.Host.Workers;
using Nudge.Pipeline;
using Nudge.Sqlite.Store;

namespace Nudge.Benchmarks;

/// <summary>
/// Journey engine in the embedded store: a backlog of waiting instances (1,000,000 by default), then
/// (1) throughput: after a warm-up block, a block of due instances fired as fast as Nudge.Host's timer worker sweeps,
///     each one a run-step that completes a delay, renders and stores a push, and enters the next delay; the store is
///     durable (fsync on commit), exactly as the server opens it;
/// (2) lateness: Nudge.Host in a child process, its timer, event and send workers running, with instances due over
///     20 s of wall time, measuring how long after its due time each step ran and its push was sent.
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

    /// <summary>
    /// Timers fired by Nudge.Host's own timer worker: from each timer's due time to the timer worker's sweep that fired
    /// it (the time the step records as its run time: the push message's creation), and to the send worker recording
    /// the push sent (sandbox channel).
    /// </summary>
    public sealed record Lateness(int Timers, double WindowSeconds, double FiredP50, double FiredP99, double FiredMax,
        double SentP50, double SentP99, double SentMax, int EventsPerSecond, long EventsAnswered, long EventErrors);

    /// <param name="WarmUp">Run-steps fired untimed before <paramref name="Fired"/> timed ones (whole batches).</param>
    public sealed record Result(int Instances, int WarmUp, int Fired, double StepsPerSecond, double SeedSeconds, Lateness Lateness, double PeakRssMiB);

    /// <summary>A SQLite store's files: the database, its write-ahead log and shared memory.</summary>
    private static readonly string[] DbFiles = ["", "-wal", "-shm"];

    /// <summary>Timers of the lateness run fall due evenly over this window.</summary>
    public const double WindowSeconds = 20;

    /// <summary>Track events per second posted to Nudge.Host while its timers fall due, so the event worker has work.</summary>
    public const int EventsPerSecond = 500;

    /// <summary>
    /// Seeds <paramref name="instances"/> waiting instances; fires <paramref name="warmUp"/> due ones untimed (JIT tiering,
    /// page cache), then times <paramref name="fireCount"/> more, both through Nudge.Host's <see cref="TimerWorker"/>
    /// sweeps; then measures the lateness of <paramref name="latenessCount"/> timers in a Nudge.Host child process.
    /// </summary>
    public static async Task<Result> RunAsync(int instances, int warmUp, int fireCount, int latenessCount, int batch, string dir)
    {
        Machine.ResetPeakRss();
        var journey = JourneyLoader.Parse("bench.yaml", Journey);
        var engine = new JourneyEngine(new EngineOptions(
            new FrequencyCaps([new(Channel.Push, 3, TimeSpan.FromHours(24)), new(Channel.Email, 3, TimeSpan.FromHours(24))]),
            new Schedule("UTC", null)), new Templates());
        var runtime = new JourneyRuntime([journey], engine, new IngestLimits(), eventsAlwaysDelivered: true);
        var now = DateTimeOffset.UtcNow;
        var seed = Stopwatch.StartNew();
        var due = warmUp + fireCount;
        int fired;
        int warmed;
        double stepsPerSecond;
        double seedSeconds;
        await using (var store = await SqliteStore.OpenAsync(Path.Combine(dir, "bench.db")))
        {
            var rng = new Random(7);
            const int perSession = 20_000;
            for (var start = 0; start < instances; start += perSession)
            {
                await using var s = await store.OpenSessionAsync();
                for (var n = start; n < Math.Min(instances, start + perSession); n++)
                {
                    // The first block is due now (warm-up, then throughput), the next is re-timed in Nudge.Host for the
                    // lateness run, the rest waits hours.
                    DateTimeOffset wake = n < due ? now.AddSeconds(-1)
                        : n < due + latenessCount ? DateTimeOffset.MaxValue
                        : now.AddHours(2).AddSeconds(rng.Next(0, 86_400));
                    await SeedAsync(s, journey, n, now, wake);
                }

                await s.CommitAsync();
                Console.Error.Write($"\rseeded {Math.Min(instances, start + perSession):N0} / {instances:N0}");
            }

            Console.Error.WriteLine();
            seedSeconds = seed.Elapsed.TotalSeconds;

            // The host's own timer sweep (DueInstancesAsync, FireAsync per instance, one commit per batch), called back
            // to back as its loop does while work is due.
            var worker = new TimerWorker(store, runtime, TimeProvider.System, new WorkSignal(),
                Options.Create(new NudgeOptions { Journeys = { TimerBatchSize = batch } }), NullLogger<TimerWorker>.Instance);
            warmed = 0;
            while (warmed < warmUp && await worker.RunDueOnceAsync() is > 0 and var w)
            {
                warmed += w;
            }

            fired = 0;
            var watch = Stopwatch.StartNew();
            while (await worker.RunDueOnceAsync() is > 0 and var f)
            {
                fired += f;
            }

            stepsPerSecond = fired / watch.Elapsed.TotalSeconds;
        }

        var peak = Machine.PeakRssMiB();
        SqliteConnection.ClearAllPools();
        var hostDir = Path.Combine(dir, "host");
        Directory.CreateDirectory(hostDir);
        foreach (var suffix in DbFiles.Where(x => File.Exists(Path.Combine(dir, "bench.db" + x))))
        {
            File.Move(Path.Combine(dir, "bench.db" + suffix), Path.Combine(hostDir, "nudge.db" + suffix));
        }

        var lateness = await LatenessAsync(due, latenessCount, hostDir);
        return new Result(instances, warmed, fired, stepsPerSecond, seedSeconds, lateness, peak);
    }

    /// <summary>
    /// Nudge.Host as a child process (its timer, event and send workers running, durable store, the bench journey,
    /// no quiet hours) on the store of the throughput run: once it has sent the <paramref name="fired"/> pushes that run
    /// drafted, <paramref name="count"/> waiting instances from <paramref name="fired"/> on are re-timed to fall due over
    /// <see cref="WindowSeconds"/>, and Track events arrive meanwhile. Each timer's lateness is read from the store after.
    /// </summary>
    private static async Task<Lateness> LatenessAsync(int fired, int count, string dir)
    {
        var journeys = Path.Combine(dir, "journeys");
        Directory.CreateDirectory(journeys);
        await File.WriteAllTextAsync(Path.Combine(journeys, "bench.yaml"), Journey);
        var db = Path.Combine(dir, "nudge.db");
        var wakes = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);  // by the push message id
        var nudge = await NudgeProcess.StartAsync(dir,
        [
            $"--Nudge:Auth:SiteId={IngestBenchmark.SiteId}", $"--Nudge:Auth:ApiKey={IngestBenchmark.ApiKey}", $"--Nudge:Auth:AdminKey={IngestBenchmark.AdminKey}",
            "--Logging:LogLevel:Default=Warning", $"--Nudge:Journeys:Dir={journeys}", "--Nudge:Journeys:QuietHoursStart=", "--Nudge:Journeys:QuietHoursEnd=",
        ]);

        long answered, errors;
        try
        {
            var backlog = Stopwatch.StartNew();
            while (await CountSentAsync(db) < fired)
            {
                if (backlog.Elapsed > TimeSpan.FromMinutes(15))
                {
                    throw new TimeoutException($"Nudge.Host sent {await CountSentAsync(db)} of the {fired} earlier pushes in 15 minutes: {nudge.Output}");
                }

                await Task.Delay(200);
            }

            // Re-time the block from this process (SQLite WAL: the host's connections see the commit); the host's timer
            // worker finds the first timer within its longest sleep (1 s), before the first is due.
            await using (var store = await SqliteStore.OpenAsync(db))
            {
                await using var s = await store.OpenSessionAsync();
                var list = new List<JourneyInstance>(count);
                for (var n = fired; n < fired + count; n++)
                {
                    list.Add((await s.GetInstanceAsync($"bench:{Key(n)}:1"))!);
                }

                var t0 = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.AddSeconds(3).ToUnixTimeMilliseconds());
                for (var k = 0; k < count; k++)
                {
                    var i = list[k];
                    i.WakeAt = t0 + TimeSpan.FromMilliseconds(Math.Round(WindowSeconds * 1000 * k / count));
                    i.StepEnteredAt = i.WakeAt.Value - TimeSpan.FromHours(1);
                    wakes[JourneyEngine.MessageId(i, "push", 1)] = i.WakeAt.Value;
                    await s.PutInstanceAsync(i);
                }

                await s.CommitAsync();
                if (DateTimeOffset.UtcNow > t0)
                {
                    throw new InvalidOperationException("re-timing the timers took longer than their 3 s lead; rerun on a quieter machine");
                }
            }

            SqliteConnection.ClearAllPools();
            using var stop = new CancellationTokenSource();
            var events = PostEventsAsync(nudge.BaseAddress, fired + count, stop.Token);
            var wait = Stopwatch.StartNew();
            while (await CountSentAsync(db) < fired + count)
            {
                if (wait.Elapsed > TimeSpan.FromSeconds(WindowSeconds) + TimeSpan.FromMinutes(10))
                {
                    throw new TimeoutException($"Nudge.Host sent {await CountSentAsync(db) - fired} of {count} timed pushes in 10 minutes after the window: {nudge.Output}");
                }

                await Task.Delay(200);
            }

            await stop.CancelAsync();
            (answered, errors) = await events;
        }
        finally
        {
            // The host is stopped (by its id) before its store is read, and whatever failed.
            await nudge.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();

        var firedLate = new List<double>(count);
        var sentLate = new List<double>(count);
        await using (var store = await SqliteStore.OpenAsync(db, durable: false))
        {
            foreach (var (id, wake) in wakes)
            {
                var m = await store.GetMessageAsync(id) ?? throw new InvalidOperationException($"{id}: no push message");
                firedLate.Add((m.CreatedAt - wake).TotalMilliseconds);
                sentLate.Add((m.SentAt!.Value - wake).TotalMilliseconds);
            }
        }

        SqliteConnection.ClearAllPools();
        firedLate.Sort();
        sentLate.Sort();
        return new Lateness(count, WindowSeconds, Machine.Percentile(firedLate, 50), Machine.Percentile(firedLate, 99), firedLate[^1],
            Machine.Percentile(sentLate, 50), Machine.Percentile(sentLate, 99), sentLate[^1], EventsPerSecond, answered, errors);
    }

    private static async Task<long> CountSentAsync(string db)
    {
        await using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM messages WHERE journey_id = 'bench' AND status IN ($sent, $delivered)";
        cmd.Parameters.AddWithValue("$sent", MessageStatus.Sent);
        cmd.Parameters.AddWithValue("$delivered", MessageStatus.Delivered);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary><see cref="EventsPerSecond"/> Track events (product_viewed, for the seeded people) until stopped.</summary>
    private static async Task<(long Answered, long Errors)> PostEventsAsync(Uri baseAddress, int people, CancellationToken stop)
    {
        using var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{IngestBenchmark.SiteId}:{IngestBenchmark.ApiKey}")));
        const int perTick = EventsPerSecond / 50;
        using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        long answered = 0, errors = 0, next = 0;
        try
        {
            while (await tick.WaitForNextTickAsync(stop))
            {
                await Task.WhenAll(Enumerable.Range(0, perTick).Select(async _ =>
                {
                    var n = Interlocked.Increment(ref next);
                    using var body = new StringContent($$$"""{"name":"product_viewed","id":"lateness-{{{n}}}","data":{"sku":"s-{{{n % 100}}}"}}""", Encoding.UTF8, "application/json");
                    try
                    {
                        using var r = await http.PostAsync($"/api/v1/customers/customer-{n % people}/events", body, CancellationToken.None);
                        Interlocked.Increment(ref r.IsSuccessStatusCode ? ref answered : ref errors);
                    }
                    catch (HttpRequestException)
                    {
                        Interlocked.Increment(ref errors);
                    }
                }));
            }
        }
        catch (OperationCanceledException)
        {
        }

        return (answered, errors);
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
