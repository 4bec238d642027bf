using System.Globalization;
using System.Text;
using Nudge.Benchmarks;

// Nudge benchmarks: dotnet run -c Release --project tests/Nudge.Benchmarks -- [journeys] [--instances N] [--no-write]
//   delivery [--messages N] [--concurrency C] [--batch B] [--sweep] [--in-process-peers] [--no-write]
//   (NUDGE_BENCH_PROFILE=store|providers|stage: after the warm-up, only that delivery pass, eight times, for a profiler)
// Each benchmark prints its figures and rewrites its own section of BENCHMARKS.md with the machine and date.
if (args is ["peer", ..])
{
    // The delivery benchmark's loopback APNs and FCM peers, in a process of their own.
    await DeliveryBenchmark.ServePeersAsync();
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

static string Cpu(DeliveryBenchmark.Pass p) =>
    p.PeerCpuUs is { } peer ? $"{p.ClientCpuUs:F0} / {peer:F0} µs" : $"{p.ClientCpuUs:F0} µs (peers included)";

int ArgValue(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static void WriteSection(string id, string title, string body)
{
    var path = Path.Combine(RepoRoot(), "BENCHMARKS.md");
    var doc = File.Exists(path) ? File.ReadAllText(path) : "# Benchmarks\n\nReproduce any section with the command it names. Numbers are from one run on the machine named.\n";
    var start = $"<!-- {id}:start -->";
    var end = $"<!-- {id}:end -->";
    var section = $"{start}\n## {title}\n\n{body}{end}";
    var a = doc.IndexOf(start, StringComparison.Ordinal);
    var b = doc.IndexOf(end, StringComparison.Ordinal);
    doc = a >= 0 && b > a ? doc[..a] + section + doc[(b + end.Length)..] : doc.TrimEnd() + "\n\n" + section + "\n";
    File.WriteAllText(path, doc);
}

static string RepoRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
    {
        if (File.Exists(Path.Combine(d.FullName, "Serverless.sln")))
        {
            return d.FullName;
        }
    }

    return Directory.GetCurrentDirectory();
}
