using System.Globalization;
using System.Text;
using Nudge.Benchmarks;

// Nudge benchmarks: dotnet run -c Release --project tests/Nudge.Benchmarks -- [all] [--no-write]
//   journeys [--instances N]
//   delivery [--messages N] [--concurrency C] [--batch B] [--sweep] [--in-process-peers]
//   ingest [--seconds S] [--connections C] [--people N]
//   e2e [--shoppers N]
//   growth [--min N] [--max N]   (ingest and journeys at 10^4, 10^5 ... people up to N)
//   dashboard [--messages N]
//   (NUDGE_BENCH_PROFILE=store|providers|stage: after the warm-up, only that delivery pass, eight times, for a profiler)
// Each benchmark prints its figures and rewrites its own section of BENCHMARKS.md with the machine and date.
if (args is ["peer", ..])
{
    // The delivery benchmark's loopback APNs and FCM peers, in a process of their own.
    await DeliveryBenchmark.ServePeersAsync();
    return;
}

if (args is ["bare-kestrel", ..])
{
    // The ingest benchmark's ceiling: Kestrel reading request bodies, in a process of its own like Nudge.Host.
    await IngestBenchmark.ServeBareAsync();
    return;
}

var instances = ArgValue("--instances", 1_000_000);
var batch = ArgValue("--batch", 256); // the embedded server's Nudge:Journeys:TimerBatchSize default
var write = !args.Contains("--no-write");
var which = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal) && !int.TryParse(a, out _)).DefaultIfEmpty("all").ToList();

if (which.Contains("all") || which.Contains("journeys"))
{
    var dir = Directory.CreateTempSubdirectory("nudge-bench-").FullName;
    try
    {
        var fire = Math.Min(50_000, instances / 4);
        var late = Math.Min(5_000, instances / 10);
        var r = await JourneyBenchmark.RunAsync(instances, fire, late, batch, dir);
        var text = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Machine.Describe()}.")
            .AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tests/Nudge.Benchmarks -- journeys --instances {instances}`")
            .AppendLine()
            .AppendLine("| figure | result | target |")
            .AppendLine("|---|---|---|")
            .AppendLine(CultureInfo.InvariantCulture, $"| waiting instances in the embedded store | {r.Instances:N0} (seeded in {r.SeedSeconds:F0} s) | 1,000,000 |")
            .AppendLine(CultureInfo.InvariantCulture, $"| run-steps per second (each: delay done, push rendered and stored, next delay entered; fsync per batch of {batch}) | {r.StepsPerSecond:N0} over {r.Fired:N0} | >= 5,000 |")
            .AppendLine(CultureInfo.InvariantCulture, $"| timer lateness p50 / p99 / max ({r.LatenessSamples:N0} timers due over 20 s) | {r.P50Ms:F0} / {r.P99Ms:F0} / {r.MaxMs:F0} ms | p99 < 1,000 ms |")
            .AppendLine(CultureInfo.InvariantCulture, $"| peak RSS of the process | {r.PeakRssMiB:F0} MiB | < 400 MiB |")
            .ToString();
        Console.WriteLine(text);
        if (write)
        {
            WriteSection("journeys", "Journey engine", text);
        }
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }
}

if (which.Contains("all") || which.Contains("delivery"))
{
    var dir = Directory.CreateTempSubdirectory("nudge-bench-").FullName;
    try
    {
        var messages = ArgValue("--messages", 50_000);
        var concurrency = ArgValue("--concurrency", DeliveryBenchmark.DefaultConcurrency);
        var sendBatch = ArgValue("--batch", DeliveryBenchmark.DefaultBatch);
        var childPeers = !args.Contains("--in-process-peers");
        var sweep = args.Contains("--sweep") ? DeliveryBenchmark.SweepGrid : [];
        var r = await DeliveryBenchmark.RunAsync(new DeliveryBenchmark.Settings(messages, concurrency, sendBatch, childPeers, sweep), dir);
        if (r is null)
        {
            return;
        }

        var ratio = r.Stage.PerSecond / r.Ceiling.PerSecond;
        var bd = r.Breakdown;
        var text = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Machine.Describe()}.")
            .AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tests/Nudge.Benchmarks -- delivery --messages {messages}{(concurrency != DeliveryBenchmark.DefaultConcurrency ? $" --concurrency {concurrency}" : "")}{(sendBatch != DeliveryBenchmark.DefaultBatch ? $" --batch {sendBatch}" : "")}{(childPeers ? "" : " --in-process-peers")}{(sweep.Count > 0 ? " --sweep" : "")}`")
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"{messages:N0} people, one device each ({r.Ios:N0} iOS through the loopback APNs: HTTP/2, TLS, ES256 JWT; {r.Android:N0} Android through the loopback FCM: OAuth2 bearer),")
            .AppendLine(CultureInfo.InvariantCulture, $"one ready push each, in the durable SQLite store (fsync per commit). Peers {(childPeers ? "in a child process of the benchmark" : "in the benchmark's process")}; {concurrency} provider calls in flight in every pass.")
            .AppendLine()
            .AppendLine("| figure | result | target |")
            .AppendLine("|---|---|---|")
            .AppendLine(CultureInfo.InvariantCulture, $"| pushes/s through the send stage (`RunUntilIdleAsync`, rounds of {sendBatch}, ApnsProvider + FcmProvider) | {r.Stage.PerSecond:N0} over {r.Stage.Pushes:N0} | >= 20,000 |")
            .AppendLine(CultureInfo.InvariantCulture, $"| pushes/s, bare HttpClient loop to the same peers (ceiling; the better of a pass before and one after the stage) | {r.Ceiling.PerSecond:N0} over {r.Ceiling.Pushes:N0} | |")
            .AppendLine(CultureInfo.InvariantCulture, $"| send stage / ceiling | {ratio:P0} | >= 60% |")
            .AppendLine(CultureInfo.InvariantCulture, $"| messages ended sent; pushes the peers accepted / refused | {r.Stage.Pushes:N0}; {r.Stage.Pushes:N0} / 0 | every one |")
            .AppendLine(CultureInfo.InvariantCulture, $"| pushes/s, providers alone (no store) | {r.Providers.PerSecond:N0} | |")
            .AppendLine(CultureInfo.InvariantCulture, $"| pushes/s, send stage with providers that answer at once (store only) | {r.StoreOnly.PerSecond:N0} | |")
            .AppendLine(CultureInfo.InvariantCulture, $"| CPU per push, benchmark process / peers: ceiling, send stage | {Cpu(r.Ceiling)}; {Cpu(r.Stage)} | |")
            .AppendLine(CultureInfo.InvariantCulture, $"| allocated per push: ceiling, providers alone, send stage | {r.Ceiling.AllocatedKiBPerPush:F1} / {r.Providers.AllocatedKiBPerPush:F1} / {r.Stage.AllocatedKiBPerPush:F1} KiB | |")
            .AppendLine(CultureInfo.InvariantCulture, $"| peak RSS of the benchmark process | {r.PeakRssMiB:F0} MiB | |");
        if (r.Sweep.Count > 0)
        {
            text.AppendLine().AppendLine("Sweep of the send stage (pushes/s):").AppendLine()
                .AppendLine("| concurrency | batch | pushes/s |").AppendLine("|---|---|---|");
            foreach (var p in r.Sweep)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {p.Concurrency} | {p.Batch} | {p.PerSecond:N0} |");
            }
        }

        var serial = bd.Serial + bd.ApplySessions;
        text.AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"Reading: the send stage moved {r.Stage.PerSecond:N0} pushes/s, {ratio:P0} of the {r.Ceiling.PerSecond:N0}/s a bare HttpClient loop reached")
            .AppendLine(CultureInfo.InvariantCulture, $"against the same peers; the providers alone reached {r.Providers.PerSecond:N0}/s, and the stage with providers that answer at once")
            .AppendLine(CultureInfo.InvariantCulture, $"{r.StoreOnly.PerSecond:N0}/s, so the store side of the stage, not HTTP, sets the rate. Client and peers share the two cores: the")
            .AppendLine(CultureInfo.InvariantCulture, $"stage spent {r.Stage.ClientCpuUs:F0} µs of CPU per push where the bare loop spent {r.Ceiling.ClientCpuUs:F0} µs. In an instrumented pass ({bd.Pass.PerSecond:N0} pushes/s) the")
            .AppendLine(CultureInfo.InvariantCulture, $"single store writer (claims and outcome records share it) was busy {serial:F0} µs per push, a limit of about {1e6 / serial:N0}/s:")
            .AppendLine(CultureInfo.InvariantCulture, $"claiming {bd.Claim + bd.ClaimCommit:F1} µs (one statement per round of {r.Settings.Batch:N0}, documents included), recording outcomes {bd.ApplySessions:F1} µs")
            .AppendLine(CultureInfo.InvariantCulture, $"(write {bd.ApplyWrite:F1}, commit with fsync {bd.ApplyCommit:F1}; {bd.MessagesPerApplyCommit:F0} messages per commit). The device and bounce lookup, one read per round,")
            .AppendLine(CultureInfo.InvariantCulture, $"took {bd.Lookups:F0} µs per push. Rounds overlap, so provider calls stay in flight while the writer works. Timings on two shared cores are noisy: rerun before comparing.");
        Console.WriteLine(text);
        if (write)
        {
            WriteSection("delivery", "Push delivery", text.ToString());
        }
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }
}

if (which.Contains("all") || which.Contains("ingest"))
{
    var dir = Directory.CreateTempSubdirectory("nudge-bench-").FullName;
    try
    {
        var settings = new IngestBenchmark.Settings(ArgValue("--seconds", 20), ArgValue("--connections", 64), ArgValue("--people", 10_000), WithCeiling: true);
        var r = await IngestBenchmark.RunAsync(settings, dir);
        var c = r.Ceiling!;
        var ratio = r.Nudge.PerSecond / c.PerSecond;
        var text = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Machine.Describe()}.")
            .AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tests/Nudge.Benchmarks -- ingest --seconds {settings.Seconds} --connections {settings.Connections} --people {settings.People}`")
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"A load generator in the benchmark process keeps {settings.Connections} requests in flight over HTTP/1.1 keep-alive on loopback: `POST /api/v1/customers/{{id}}/events`")
            .AppendLine(CultureInfo.InvariantCulture, $"(Track API, Basic auth) for a random one of {settings.People:N0} people (seeded with a device each); 90 % `product_viewed`, 9 % `add_to_cart` (starts")
            .AppendLine("cart recovery), 1 % a replay of an earlier event id. Nudge.Host runs as a child process with the repository's 7 journeys: each call is")
            .AppendLine("validated and committed to the durable queue (fsync, group commit) before its 200; the worker then dedupes it by id, stores it, updates the")
            .AppendLine("person and evaluates every trigger and exit. The ceiling is a bare Kestrel endpoint in a child process that reads the body and answers `{}`,")
            .AppendLine(CultureInfo.InvariantCulture, $"driven by the same generator with the same requests. 3 s of warm-up, then {settings.Seconds} s measured. Both processes share the 2 cores with the generator.")
            .AppendLine()
            .AppendLine("| figure | result | target |")
            .AppendLine("|---|---|---|")
            .AppendLine(CultureInfo.InvariantCulture, $"| events/s answered 200 by Nudge (p50 / p99 / max latency) | {r.Nudge.PerSecond:N0} ({r.Nudge.P50Ms:F1} / {r.Nudge.P99Ms:F1} / {r.Nudge.MaxMs:F0} ms) | >= 10,000 |")
            .AppendLine(CultureInfo.InvariantCulture, $"| events/s processed (accepted {r.Accepted:N0} from the first request until the queue was empty; drained {r.DrainSeconds:F1} s after the load stopped) | {r.ProcessedPerSecond:N0} | >= 10,000 sustained |")
            .AppendLine(CultureInfo.InvariantCulture, $"| requests/s, bare Kestrel reading the body (p50 / p99 latency) | {c.PerSecond:N0} ({c.P50Ms:F1} / {c.P99Ms:F1} ms) | ceiling |")
            .AppendLine(CultureInfo.InvariantCulture, $"| Nudge / ceiling | {ratio:P0} | >= 30% |")
            .AppendLine(CultureInfo.InvariantCulture, $"| errors (non-200 or failed requests) in the window: Nudge, ceiling | {r.Nudge.Errors:N0}, {c.Errors:N0} | 0 |")
            .AppendLine(CultureInfo.InvariantCulture, $"| distinct events accepted / events stored (replays deduplicated) | {r.UniqueEvents:N0} / {r.StoredEvents:N0} | equal |")
            .AppendLine(CultureInfo.InvariantCulture, $"| Nudge.Host CPU per accepted event (ingest + processing) | {r.ServerCpuUsPerEvent:F0} µs | |")
            .AppendLine(CultureInfo.InvariantCulture, $"| Nudge.Host peak RSS | {r.ServerPeakRssMiB:F0} MiB | |")
            .AppendLine()
            .AppendLine("Customer.io documents a Track API limit of 1,000 requests/s per workspace (Segment recommends the same): one Nudge process on two")
            .AppendLine("cores takes more than ten times that.");
        Console.WriteLine(text);
        if (write)
        {
            WriteSection("ingest", "Ingest", text.ToString());
        }
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }
}

if (which.Contains("all") || which.Contains("e2e"))
{
    var shoppers = ArgValue("--shoppers", 10_000);
    Machine.ResetPeakRss();
    var r = await Nudge.Host.Tests.CartRecoverySimulationTests.RunAsync(shoppers, seed: 20261123);
    var text = new StringBuilder()
        .AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Machine.Describe()}.")
        .AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tests/Nudge.Benchmarks -- e2e --shoppers {shoppers}`")
        .AppendLine()
        .AppendLine(CultureInfo.InvariantCulture, $"{shoppers:N0} shoppers (random time zones, devices, SMS consent and email; 35 % buy at a random time) through journeys/cart_recovery.yaml")
        .AppendLine("over 30 simulated days on a virtual clock: the real process-event, run-step, journey-timer and send stages (sandbox channel) on a")
        .AppendLine("SQLite file, with quiet hours, frequency caps, the 10 % holdout, fallbacks and conversions. Every message is compared with an")
        .AppendLine("expectation computed independently (the same code as the test `CartRecoverySimulationTests`).")
        .AppendLine()
        .AppendLine("| figure | result |")
        .AppendLine("|---|---|")
        .AppendLine(CultureInfo.InvariantCulture, $"| wall time for 30 simulated days | {r.Wall.TotalSeconds:F1} s |")
        .AppendLine(CultureInfo.InvariantCulture, $"| messages | {r.Messages:N0} |")
        .AppendLine(CultureInfo.InvariantCulture, $"| shoppers whose messages differ from the expectation | {r.Mismatches.Count:N0} |")
        .AppendLine(CultureInfo.InvariantCulture, $"| peak RSS of the benchmark process | {Machine.PeakRssMiB():F0} MiB |")
        .AppendLine()
        .AppendLine("| channel / status / reason | messages |")
        .AppendLine("|---|---|");
    foreach (var (k, v) in r.Counts.OrderBy(c => c.Key, StringComparer.Ordinal))
    {
        text.AppendLine(CultureInfo.InvariantCulture, $"| {k} | {v:N0} |");
    }

    Console.WriteLine(text);
    if (r.Mismatches.Count > 0)
    {
        Console.Error.WriteLine(string.Join('\n', r.Mismatches.Take(5)));
        Environment.ExitCode = 1;
    }

    if (write)
    {
        WriteSection("e2e", "End to end: cart recovery", text.ToString());
    }
}

if (which.Contains("all") || which.Contains("growth"))
{
    var max = ArgValue("--max", 1_000_000);
    var rows = new List<(int People, IngestBenchmark.Result Ingest, JourneyBenchmark.Result Journeys)>();
    for (var n = ArgValue("--min", 10_000); n <= max; n *= 10)
    {
        Console.WriteLine($"growth: {n:N0} people");
        var dir = Directory.CreateTempSubdirectory("nudge-bench-").FullName;
        try
        {
            var ingest = await IngestBenchmark.RunAsync(new IngestBenchmark.Settings(15, 64, n, WithCeiling: false), dir);
            var journeysDir = Path.Combine(dir, "journeys-run");
            Directory.CreateDirectory(journeysDir);
            var journeys = await JourneyBenchmark.RunAsync(n, Math.Min(50_000, n / 4), Math.Min(5_000, n / 10), 256, journeysDir);
            rows.Add((n, ingest, journeys));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    var text = new StringBuilder()
        .AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Machine.Describe()}.")
        .AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tests/Nudge.Benchmarks -- growth --max {max}`")
        .AppendLine()
        .AppendLine("The ingest benchmark (15 s, 64 connections, no ceiling pass) against a store seeded with N people, each with a device, events")
        .AppendLine("spread over all of them at random; and the journey benchmark with N waiting instances (a quarter of them, at most 50,000, fired).")
        .AppendLine("The journey engine's memory is in its own section: here it would run in a process that already seeded N people.")
        .AppendLine()
        .AppendLine("| people | store file | events/s answered | events/s processed | Nudge.Host CPU per event | p99 ingest latency | Nudge.Host peak RSS | run-steps/s | timer lateness p99 |")
        .AppendLine("|---|---|---|---|---|---|---|---|---|");
    foreach (var (n, i, j) in rows)
    {
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| {n:N0} | {i.DatabaseMiB:N0} MiB | {i.Nudge.PerSecond:N0} | {i.ProcessedPerSecond:N0} | {i.ServerCpuUsPerEvent:F0} µs | {i.Nudge.P99Ms:F1} ms | {i.ServerPeakRssMiB:F0} MiB | {j.StepsPerSecond:N0} | {j.P99Ms:F0} ms |");
    }

    if (rows.Count > 1)
    {
        var first = rows[0];
        var last = rows[^1];
        text.AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"From {first.People:N0} to {last.People:N0} people the CPU per ingested event went from {first.Ingest.ServerCpuUsPerEvent:F0} to {last.Ingest.ServerCpuUsPerEvent:F0} µs")
            .AppendLine(CultureInfo.InvariantCulture, $"({last.Ingest.ServerCpuUsPerEvent / first.Ingest.ServerCpuUsPerEvent:P0} of the first) and run-steps/s from {first.Journeys.StepsPerSecond:N0} to {last.Journeys.StepsPerSecond:N0}.");
    }

    Console.WriteLine(text);
    if (write)
    {
        WriteSection("growth", "Growth from 10^4 to 10^6 people", text.ToString());
    }
}

if (which.Contains("all") || which.Contains("dashboard"))
{
    var dir = Directory.CreateTempSubdirectory("nudge-bench-").FullName;
    try
    {
        var messages = ArgValue("--messages", 100_000);
        var r = await DashboardBenchmark.RunAsync(messages, dir);
        var text = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Machine.Describe()}.")
            .AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tests/Nudge.Benchmarks -- dashboard --messages {messages}`")
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"{r.Messages:N0} cart-recovery messages (push, email, SMS) of {r.People:N0} people over the last 7 days, with {r.Events:N0} delivery events and")
            .AppendLine(CultureInfo.InvariantCulture, $"{r.People:N0} journey instances, seeded in {r.SeedSeconds:F0} s into the store of Nudge.Host (child process). Each row is one dashboard page: its admin API")
            .AppendLine("requests fetched together, as the page does; the first load, then the median and worst of five more.")
            .AppendLine()
            .AppendLine("| page | requests | first | median | worst |")
            .AppendLine("|---|---|---|---|---|");
        foreach (var p in r.Pages)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {p.Name} | {p.Paths.Length} | {p.FirstMs:N0} ms | {p.MedianMs:N0} ms | {p.MaxMs:N0} ms |");
        }

        Console.WriteLine(text);
        if (write)
        {
            WriteSection("dashboard", "Dashboard on 100,000 messages", text.ToString());
        }
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }
}

static string Cpu(DeliveryBenchmark.Pass p) =>
    p.PeerCpuUs is { } peer ? $"{p.ClientCpuUs:F0} / {peer:F0} µs" : $"{p.ClientCpuUs:F0} µs (peers included)";

int ArgValue(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static void WriteSection(string id, string title, string body)
{
    var path = Path.Combine(Nudge.TestSupport.TestEnvironment.RepositoryRoot(), "BENCHMARKS.md");
    var doc = File.Exists(path) ? File.ReadAllText(path) : "# Benchmarks\n\nReproduce any section with the command it names. Numbers are from one run on the machine named.\n";
    var start = $"<!-- {id}:start -->";
    var end = $"<!-- {id}:end -->";
    var section = $"{start}\n## {title}\n\n{body}{end}";
    var a = doc.IndexOf(start, StringComparison.Ordinal);
    var b = doc.IndexOf(end, StringComparison.Ordinal);
    doc = a >= 0 && b > a ? doc[..a] + section + doc[(b + end.Length)..] : doc.TrimEnd() + "\n\n" + section + "\n";
    File.WriteAllText(path, doc);
}

