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
// Each benchmark prints its figures and rewrites its own section of BENCHMARKS.md with the machine and date (ingest
// and delivery also their ratio-to-ceiling line in README.md).
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

// Customer.io's documented Track API rate limit per workspace (requests/s), the figure the ingest section compares with.
const double CustomerIoTrackLimit = 1_000;
var instances = ArgValue("--instances", 1_000_000);
var batch = ArgValue("--batch", 256); // the embedded server's Nudge:Journeys:TimerBatchSize default
var write = !args.Contains("--no-write");
var which = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal) && !int.TryParse(a, out _)).DefaultIfEmpty("all").ToList();

JourneyBenchmark.Result? journeysRun = null;
if (which.Contains("all") || which.Contains("journeys"))
{
    var dir = Directory.CreateTempSubdirectory("nudge-bench-").FullName;
    try
    {
        var (warm, fire, late) = JourneyBlocks(instances);
        var r = await JourneyBenchmark.RunAsync(instances, warm, fire, late, batch, dir);
        journeysRun = r;
        var l = r.Lateness;
        var text = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Machine.Describe()}.")
            .AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tests/Nudge.Benchmarks -- journeys --instances {instances}`")
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"Throughput: {r.Instances:N0} waiting instances in the durable SQLite store (fsync per commit), {r.WarmUp + r.Fired:N0} of them due; Nudge.Host's")
            .AppendLine(CultureInfo.InvariantCulture, $"timer worker sweeps them in batches of {batch} (one commit per batch), {r.WarmUp:N0} untimed to warm up (JIT tiering, page cache), then {r.Fired:N0} timed.")
            .AppendLine(CultureInfo.InvariantCulture, $"Lateness: Nudge.Host as a child process (durable store, no quiet hours) with its timer, event and send workers running, {l.Timers:N0} waiting")
            .AppendLine(CultureInfo.InvariantCulture, $"instances re-timed to fall due evenly over {l.WindowSeconds:F0} s, and Track events posted at a paced {l.EventsPerSecond:N0}/s meanwhile; each timer's due time against")
            .AppendLine("the time its step recorded (the timer worker's sweep) and the time the send worker recorded its push sent (sandbox channel).")
            .AppendLine("No ceiling applies: nothing bare does this work to compare with; the targets are the issue's.")
            .AppendLine()
            .AppendLine("| figure | result | target |")
            .AppendLine("|---|---|---|")
            .AppendLine(CultureInfo.InvariantCulture, $"| waiting instances in the embedded store | {r.Instances:N0} (seeded in {r.SeedSeconds:F0} s) | 1,000,000 |")
            .AppendLine(CultureInfo.InvariantCulture, $"| run-steps per second (each: delay done, push rendered and stored, next delay entered) | {r.StepsPerSecond:N0} over {r.Fired:N0} | >= 5,000 |")
            .AppendLine(CultureInfo.InvariantCulture, $"| timer lateness p50 / p99 / max, due to fired by the timer worker | {l.FiredP50:F0} / {l.FiredP99:F0} / {l.FiredMax:F0} ms | p99 < 1,000 ms |")
            .AppendLine(CultureInfo.InvariantCulture, $"| due to push sent by the send worker, p50 / p99 / max | {l.SentP50:F0} / {l.SentP99:F0} / {l.SentMax:F0} ms | |")
            .AppendLine(CultureInfo.InvariantCulture, $"| Track events answered 200 during the lateness run; errors | {l.EventsAnswered:N0}; {l.EventErrors:N0} | |")
            .AppendLine(CultureInfo.InvariantCulture, $"| peak RSS of the benchmark process (seeding and throughput) | {r.PeakRssMiB:F0} MiB | < 400 MiB |")
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
            .AppendLine(CultureInfo.InvariantCulture, $"| messages ended sent; pushes the peers counted accepted / refused (APNs, FCM) | {r.Stage.Pushes:N0}; {PeerCounts(r.Stage)} | every one |")
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
        var (slower, slowerRate, faster, fasterRate) = r.StoreOnly.PerSecond < r.Providers.PerSecond
            ? ("the store side (the stage with providers that answer at once)", r.StoreOnly.PerSecond, "the providers alone", r.Providers.PerSecond)
            : ("the providers alone", r.Providers.PerSecond, "the store side (the stage with providers that answer at once)", r.StoreOnly.PerSecond);
        text.AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"Reading: the send stage moved {r.Stage.PerSecond:N0} pushes/s, {ratio:P0} of the {r.Ceiling.PerSecond:N0}/s a bare HttpClient loop reached")
            .AppendLine(CultureInfo.InvariantCulture, $"against the same peers in this run. Of the stage's two parts measured alone, {slower} was the slower: {slowerRate:N0}/s")
            .AppendLine(CultureInfo.InvariantCulture, $"against {fasterRate:N0}/s for {faster}. Client and peers share this machine's {Environment.ProcessorCount} cores: the stage spent")
            .AppendLine(CultureInfo.InvariantCulture, $"{r.Stage.ClientCpuUs:F0} µs of the benchmark process's CPU per push where the bare loop spent {r.Ceiling.ClientCpuUs:F0} µs. In an instrumented pass ({bd.Pass.PerSecond:N0} pushes/s) the")
            .AppendLine(CultureInfo.InvariantCulture, $"single store writer (claims and outcome records share it) was busy {serial:F0} µs per push, a limit of about {1e6 / serial:N0}/s:")
            .AppendLine(CultureInfo.InvariantCulture, $"claiming {bd.Claim + bd.ClaimCommit:F1} µs (rounds of {r.Settings.Batch:N0}), recording outcomes {bd.ApplySessions:F1} µs")
            .AppendLine(CultureInfo.InvariantCulture, $"(write {bd.ApplyWrite:F1}, commit with fsync {bd.ApplyCommit:F1}; {bd.MessagesPerApplyCommit:F0} messages per commit); the device and bounce lookups")
            .AppendLine(CultureInfo.InvariantCulture, $"took {bd.Lookups:F0} µs per push.");
        Console.WriteLine(text);
        if (write)
        {
            WriteSection("delivery", "Push delivery", text.ToString());
            WriteReadmeRatio("delivery", $"- Push delivery: the send stage reached {ratio:P0} of a bare HttpClient loop's pushes/s to the same loopback APNs and FCM peers (measured {DateTime.UtcNow:yyyy-MM-dd} on {Environment.ProcessorCount} cores).");
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
            .AppendLine(CultureInfo.InvariantCulture, $"cart recovery), 1 % a replay of an earlier event id. Nudge.Host runs as a child process with the repository's {RepositoryJourneys()} journeys: each call is")
            .AppendLine("validated and committed to the durable queue (fsync, group commit) before its 200; the worker then dedupes it by id, stores it, updates the")
            .AppendLine("person and evaluates every trigger and exit. The ceiling is a bare Kestrel endpoint in a child process that reads the body and answers `{}`,")
            .AppendLine(CultureInfo.InvariantCulture, $"driven by the same generator with the same requests in the same run. 3 s of warm-up, then {settings.Seconds} s measured. Both processes share the {Environment.ProcessorCount} cores with the generator.")
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
            .AppendLine(CultureInfo.InvariantCulture, $"Customer.io documents a Track API limit of {CustomerIoTrackLimit:N0} requests/s per workspace: in this run Nudge answered")
            .AppendLine(CultureInfo.InvariantCulture, $"{r.Nudge.PerSecond / CustomerIoTrackLimit:F1} times that and processed {r.ProcessedPerSecond / CustomerIoTrackLimit:F1} times that, on {Environment.ProcessorCount} cores shared with the load generator.");
        Console.WriteLine(text);
        if (write)
        {
            WriteSection("ingest", "Ingest", text.ToString());
            WriteReadmeRatio("ingest", $"- Ingest: Nudge.Host answered {ratio:P0} of the Track API calls per second a bare Kestrel endpoint answered, and processed {r.ProcessedPerSecond / c.PerSecond:P0} (measured {DateTime.UtcNow:yyyy-MM-dd} on {Environment.ProcessorCount} cores).");
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
        .AppendLine(CultureInfo.InvariantCulture, $"SQLite file ({(Nudge.Host.Tests.CartRecoverySimulationTests.DurableStore ? "durable: fsync on every commit" : "not durable: commits are not fsynced, as a simulation that rebuilds its data")}), with quiet hours, frequency caps,")
        .AppendLine("the 10 % holdout, fallbacks and conversions. Every message is compared with an expectation computed independently (the same code")
        .AppendLine("as the test `CartRecoverySimulationTests`). No ceiling applies: the wall time is the whole pipeline's on a virtual clock.")
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
    var min = ArgValue("--min", 10_000);
    for (var n = min; n <= max; n *= 10)
    {
        Console.WriteLine($"growth: {n:N0} people");
        var dir = Directory.CreateTempSubdirectory("nudge-bench-").FullName;
        try
        {
            var ingest = await IngestBenchmark.RunAsync(new IngestBenchmark.Settings(15, 64, n, WithCeiling: false), dir);
            var journeysDir = Path.Combine(dir, "journeys-run");
            Directory.CreateDirectory(journeysDir);
            var (warm, fire, late) = JourneyBlocks(n);
            var journeys = await JourneyBenchmark.RunAsync(n, warm, fire, late, batch, journeysDir);
            rows.Add((n, ingest, journeys));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    var text = new StringBuilder()
        .AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Machine.Describe()}.")
        .AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tests/Nudge.Benchmarks -- growth{(min != 10_000 ? $" --min {min}" : "")} --max {max}`")
        .AppendLine()
        .AppendLine("The ingest benchmark (15 s, 64 connections, no ceiling pass: the ingest section has the bare Kestrel ceiling) against a store")
        .AppendLine("seeded with N people, each with a device, events spread over all of them at random; then, in the same process, the journeys")
        .AppendLine("benchmark with N waiting instances, exactly as its own section runs it (same code, warm-up, timed and lateness blocks for N, batches")
        .AppendLine(CultureInfo.InvariantCulture, $"of {batch}, durable store; lateness is due to fired by Nudge.Host's timer worker). The journey engine's memory is in its own section:")
        .AppendLine("here it would run in a process that already seeded N people.")
        .AppendLine()
        .AppendLine("| people | store file | events/s answered | events/s processed | Nudge.Host CPU per event | p99 ingest latency | Nudge.Host peak RSS | run-steps/s (steps timed) | timer lateness p99 |")
        .AppendLine("|---|---|---|---|---|---|---|---|---|");
    foreach (var (n, i, j) in rows)
    {
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| {n:N0} | {i.DatabaseMiB:N0} MiB | {i.Nudge.PerSecond:N0} | {i.ProcessedPerSecond:N0} | {i.ServerCpuUsPerEvent:F0} µs | {i.Nudge.P99Ms:F1} ms | {i.ServerPeakRssMiB:F0} MiB | {j.StepsPerSecond:N0} ({j.Fired:N0}) | {j.Lateness.FiredP99:F0} ms |");
    }

    if (rows.Count > 1)
    {
        var first = rows[0];
        var last = rows[^1];
        text.AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"From {first.People:N0} to {last.People:N0} people the CPU per ingested event went from {first.Ingest.ServerCpuUsPerEvent:F0} to {last.Ingest.ServerCpuUsPerEvent:F0} µs")
            .AppendLine(CultureInfo.InvariantCulture, $"({last.Ingest.ServerCpuUsPerEvent / first.Ingest.ServerCpuUsPerEvent:P0} of the first) and run-steps/s from {first.Journeys.StepsPerSecond:N0} to {last.Journeys.StepsPerSecond:N0}.");
    }

    if (journeysRun is { } jr && rows.FirstOrDefault(x => x.People == jr.Instances) is { Journeys: { } same })
    {
        // Same code and blocks; what differs is only what ran before in this process (the journeys section runs first).
        text.AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"At {jr.Instances:N0} instances the journeys section of this run measured {jr.StepsPerSecond:N0} run-steps/s and this table {same.StepsPerSecond:N0}/s")
            .AppendLine(CultureInfo.InvariantCulture, $"({same.StepsPerSecond / jr.StepsPerSecond:P0}): the same code and blocks, run at different times in one process (the growth rows run after ingest passes).");
    }

    Console.WriteLine(text);
    if (write)
    {
        WriteSection("growth", $"Growth from {rows.FirstOrDefault().People:N0} to {rows.LastOrDefault().People:N0} people", text.ToString());
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
            .AppendLine("requests fetched together, as the page does; the first load, then the median and worst of five more. No ceiling applies:")
            .AppendLine("each figure is a page's own response time; nothing bare answers these requests to compare with.")
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
            WriteSection("dashboard", $"Dashboard on {messages:N0} messages", text.ToString());
        }
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }
}

// The journeys benchmark's blocks at N instances, the same in its own section and in the growth table: warm-up and
// timed blocks are due at once, the lateness block runs in Nudge.Host.
static (int WarmUp, int Fire, int Late) JourneyBlocks(int instances) =>
    (Math.Min(10_000, instances / 10), Math.Min(50_000, instances / 4), Math.Min(5_000, instances / 10));

static int RepositoryJourneys() =>
    Directory.GetFiles(Path.Combine(Nudge.TestSupport.TestEnvironment.RepositoryRoot(), "journeys"), "*.yaml").Length;

static string PeerCounts(DeliveryBenchmark.Pass p) => p.Peers is { } c
    ? $"{c.ApnsAccepted + c.FcmAccepted:N0} / {c.ApnsRejected + c.FcmRejected:N0} ({c.ApnsAccepted:N0} / {c.ApnsRejected:N0}, {c.FcmAccepted:N0} / {c.FcmRejected:N0})"
    : "not counted";

static string Cpu(DeliveryBenchmark.Pass p) =>
    p.PeerCpuUs is { } peer ? $"{p.ClientCpuUs:F0} / {peer:F0} µs" : $"{p.ClientCpuUs:F0} µs (peers included)";

int ArgValue(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static void WriteSection(string id, string title, string body) =>
    WriteBlock("BENCHMARKS.md", id, $"## {title}\n\n{body}",
        "# Benchmarks\n\nReproduce any section with the command it names. Numbers are from one run on the machine named.\n");

// The README quotes a benchmark as a ratio to the ceiling measured in the same run, rewritten by that benchmark.
static void WriteReadmeRatio(string id, string line) =>
    WriteBlock("README.md", "ratio-" + id, line.TrimEnd() + "\n", null);

static void WriteBlock(string file, string id, string body, string? empty)
{
    var path = Path.Combine(Nudge.TestSupport.TestEnvironment.RepositoryRoot(), file);
    var doc = File.Exists(path) ? File.ReadAllText(path) : empty ?? throw new FileNotFoundException(path);
    var start = $"<!-- {id}:start -->";
    var end = $"<!-- {id}:end -->";
    var a = doc.IndexOf(start, StringComparison.Ordinal);
    var b = doc.IndexOf(end, StringComparison.Ordinal);
    if (empty is null && (a < 0 || b < a))
    {
        // The README places its quotes itself; a missing marker is a README edit to make, not a place to guess.
        Console.Error.WriteLine($"{file} has no {start} ... {end}; not quoted there");
        return;
    }

    var section = $"{start}\n{body}{end}";
    doc = a >= 0 && b > a ? doc[..a] + section + doc[(b + end.Length)..] : doc.TrimEnd() + "\n\n" + section + "\n";
    File.WriteAllText(path, doc);
}
