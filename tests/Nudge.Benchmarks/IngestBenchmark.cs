using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Profiles;
using Nudge.Host.Tests;
using Nudge.Pipeline;
using Nudge.Sqlite.Store;
using Nudge.TestSupport;

namespace Nudge.Benchmarks;

/// <summary>
/// Track API ingest: a load generator on loopback posts events to Nudge.Host (a child process, the embedded server with
/// the repository's journeys: validation, durable enqueue with group commit, then the worker's dedupe, profile update
/// and trigger evaluation) and, in the same run with the same requests, to a bare Kestrel endpoint that only reads the
/// body (the ceiling of HTTP on this machine).
/// </summary>
internal static class IngestBenchmark
{
    public const string AdminKey = "bench-admin-key-0123456789";
    public const string SiteId = "bench-site";
    public const string ApiKey = "bench-api-key-0123456789";

    public sealed record Settings(int Seconds, int Connections, int People, bool WithCeiling);

    /// <summary>One load pass: answered requests (2xx) and errors in the measured window, their rate and latency.</summary>
    public sealed record Load(long Requests, long Errors, double PerSecond, double P50Ms, double P99Ms, double MaxMs);

    public sealed record Result(
        Settings Settings,
        Load Nudge,
        Load? Ceiling,
        long Accepted,
        double ProcessedPerSecond,
        double DrainSeconds,
        double ServerCpuUsPerEvent,
        long UniqueEvents,
        long StoredEvents,
        double ServerPeakRssMiB,
        double SeedSeconds,
        long DatabaseMiB);

    /// <summary>The bare endpoint: Kestrel with the same host defaults as Nudge.Host, reading each body and answering {}.</summary>
    public static async Task ServeBareAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPost("/api/v1/customers/{id}/events", async (HttpContext ctx) =>
        {
            var buffer = new byte[4096];
            while (await ctx.Request.Body.ReadAsync(buffer) > 0)
            {
            }

            return Results.Text("{}", "application/json");
        });
        await app.StartAsync();
        Console.WriteLine("Nudge is listening on " + app.Urls.First());
        await app.WaitForShutdownAsync();
    }

    public static async Task<Result> RunAsync(Settings s, string dir)
    {
        var seed = Stopwatch.StartNew();
        await SeedPeopleAsync(Path.Combine(dir, "nudge.db"), s.People);
        var seedSeconds = seed.Elapsed.TotalSeconds;

        Load? ceiling = null;
        if (s.WithCeiling)
        {
            await using var bare = await ChildAsync(["bare-kestrel"]);
            ceiling = (await DriveAsync(bare.BaseAddress, s, start: 0)).Load;
        }

        await using var nudge = await StartNudgeAsync(dir);
        using var admin = new HttpClient { BaseAddress = nudge.BaseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", AdminKey) } };
        var before = await StatsAsync(admin);
        var cpu0 = CpuSeconds(nudge.Pid);
        var started = Stopwatch.StartNew();
        var (load, accepted, unique) = await DriveAsync(nudge.BaseAddress, s, start: 1_000_000_000);
        var drain = Stopwatch.StartNew();
        // With the workers switched off (NUDGE_BENCH_SERVER_ARGS, to measure the API alone) nothing drains the queue.
        var workersOff = (Environment.GetEnvironmentVariable("NUDGE_BENCH_SERVER_ARGS") ?? "").Contains("Workers:Enabled=false", StringComparison.OrdinalIgnoreCase);
        while (!workersOff && (await StatsAsync(admin))["queued_events"]!.GetValue<long>() > 0)
        {
            if (drain.Elapsed > TimeSpan.FromMinutes(15))
            {
                throw new TimeoutException("the events queue did not drain in 15 minutes");
            }

            await Task.Delay(50);
        }

        var total = started.Elapsed.TotalSeconds;
        var cpu = CpuSeconds(nudge.Pid) - cpu0;
        var after = await StatsAsync(admin);
        var stored = after["events"]!.GetValue<long>() - before["events"]!.GetValue<long>();
        return new Result(s, load, ceiling, accepted, accepted / total, drain.Elapsed.TotalSeconds, cpu * 1e6 / accepted, unique, stored,
            PeakRssMiB(nudge.Pid), seedSeconds, new FileInfo(Path.Combine(dir, "nudge.db")).Length / (1024 * 1024));
    }

    /// <summary>Nudge.Host (this build's configuration) on <paramref name="dir"/>, with the repository's journeys and the benchmark's credentials.</summary>
    public static Task<NudgeProcess> StartNudgeAsync(string dir) => NudgeProcess.StartAsync(dir,
    [
        $"--Nudge:Auth:SiteId={SiteId}", $"--Nudge:Auth:ApiKey={ApiKey}", $"--Nudge:Auth:AdminKey={AdminKey}",
        "--Nudge:Auth:SegmentWriteKey=bench-write-key-0123456789", "--Logging:LogLevel:Default=Warning",
        $"--Nudge:Journeys:Dir={Path.Combine(TestEnvironment.RepositoryRoot(), "journeys")}",

        // The load is above the default Track limit (3,000/s per key): this measures capacity, not the limit.
        "--Nudge:RateLimits:Track:PerSecond=1000000", "--Nudge:RateLimits:Track:Burst=1000000",
        .. (Environment.GetEnvironmentVariable("NUDGE_BENCH_SERVER_ARGS") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries),
    ]);

    /// <summary>
    /// <paramref name="people"/> people (email, attributes, one iOS device each) written straight into the store file
    /// through the event processor, as the worker would, before the server starts: the growth runs need 10^6 of them.
    /// </summary>
    public static async Task SeedPeopleAsync(string dbPath, int people)
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(-1));
        var limits = new IngestLimits();
        var processor = new EventProcessor(limits, clock, new JourneyRuntime([], new JourneyEngine(new EngineOptions(new FrequencyCaps([]), new Schedule("UTC", null)), new Templates()), limits));
        await using var store = await SqliteStore.OpenAsync(dbPath, durable: false);
        for (var from = 0; from < people; from += 5000)
        {
            await using var session = await store.OpenSessionAsync();
            for (var i = from; i < Math.Min(people, from + 5000); i++)
            {
                var id = Person(i);
                var at = clock.GetUtcNow();
                await processor.ProcessAsync(session, CartRecoverySimulationTests.Op(OpKind.Identify, id, at) with
                {
                    Attributes = new JsonObject { ["first_name"] = "Sam", ["plan"] = i % 3 == 0 ? "pro" : "free", ["timezone"] = "UTC" },
                    SetEmail = id + "@example.com",
                });
                await processor.ProcessAsync(session, CartRecoverySimulationTests.Op(OpKind.UpsertDevice, id, at) with { Device = new DeviceData($"{id}-token-{i:x8}", "ios", null, at, []) });
            }

            await session.CommitAsync();
        }
    }

    private static string Person(int i) => "bench-" + i.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Posts events with <see cref="Settings.Connections"/> requests in flight: 3 s of warm-up, then the measured
    /// <see cref="Settings.Seconds"/>. Each event goes to a random seeded person: 90 % product_viewed (checked against
    /// every trigger, starts nothing), 9 % add_to_cart (starts cart recovery), 1 % a replay of an earlier event id.
    /// </summary>
    private static async Task<(Load Load, long Accepted, long Unique)> DriveAsync(Uri baseAddress, Settings s, long start)
    {
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = s.Connections, PooledConnectionLifetime = Timeout.InfiniteTimeSpan, UseProxy = false };
        using var http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{SiteId}:{ApiKey}")));
        var next = start;
        var measuring = false;
        var stop = false;
        long accepted = 0, errors = 0, measured = 0;
        var ids = new System.Collections.Concurrent.ConcurrentDictionary<long, byte>();  // distinct event ids answered 200
        var latencies = new List<double>[s.Connections];
        var workers = Enumerable.Range(0, s.Connections).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var mine = latencies[w] = new List<double>(1 << 16);
            while (!Volatile.Read(ref stop))
            {
                var n = Interlocked.Increment(ref next);
                var kind = rng.Next(100);
                var replay = kind == 0 && n > start + 1000;
                var id = replay ? n - 500 : n;
                var person = Person(rng.Next(s.People));
                var body = kind < 10 && !replay
                    ? $$$"""{"name":"add_to_cart","id":"ev-{{{id}}}","data":{"cart_id":"cart-{{{id}}}","cart_value":{{{rng.Next(10, 300)}}},"item_name":"serum"}}"""
                    : $$$"""{"name":"product_viewed","id":"ev-{{{id}}}","data":{"product_id":"p{{{id % 500}}}","price":19.9,"category":"skincare"}}""";
                using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                var t = Stopwatch.GetTimestamp();
                try
                {
                    using var r = await http.PostAsync($"/api/v1/customers/{person}/events", content);
                    var ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                    if (r.StatusCode == HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref accepted);
                        ids.TryAdd(id, 0);

                        if (Volatile.Read(ref measuring))
                        {
                            Interlocked.Increment(ref measured);
                            mine.Add(ms);
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        })).ToArray();

        await Task.Delay(TimeSpan.FromSeconds(3));
        var window = Stopwatch.StartNew();
        Volatile.Write(ref measuring, true);
        var errorsBefore = Interlocked.Read(ref errors);
        await Task.Delay(TimeSpan.FromSeconds(s.Seconds));
        Volatile.Write(ref measuring, false);
        var seconds = window.Elapsed.TotalSeconds;
        var count = Interlocked.Read(ref measured);
        var errs = Interlocked.Read(ref errors) - errorsBefore;
        Volatile.Write(ref stop, true);
        await Task.WhenAll(workers);

        var all = latencies.SelectMany(l => l).ToList();
        all.Sort();
        return (new Load(count, errs, count / seconds, Machine.Percentile(all, 50), Machine.Percentile(all, 99), all.Count == 0 ? 0 : all[^1]), accepted, ids.Count);
    }

    private static async Task<JsonObject> StatsAsync(HttpClient admin) => JsonNode.Parse(await admin.GetStringAsync("/admin/v1/stats"))!.AsObject();

    /// <summary>The benchmark program itself as a child process (the bare endpoint), started like Nudge.Host.</summary>
    private static async Task<ChildProcess> ChildAsync(string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Nudge.Benchmarks.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        while (await p.StandardOutput.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("Nudge is listening on ", StringComparison.Ordinal))
            {
                return new ChildProcess(p, new Uri(line["Nudge is listening on ".Length..].Trim()));
            }
        }

        throw new InvalidOperationException("the bare endpoint did not start: " + await p.StandardError.ReadToEndAsync());
    }

    private sealed class ChildProcess(Process process, Uri baseAddress) : IAsyncDisposable
    {
        public Uri BaseAddress { get; } = baseAddress;

        public async ValueTask DisposeAsync()
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            process.Dispose();
        }
    }

    /// <summary>User plus system CPU seconds of a process so far (/proc/{pid}/stat, clock ticks of 1/100 s).</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary>Peak resident set size (VmHWM) of a process, in MiB.</summary>
    public static double PeakRssMiB(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }
}
