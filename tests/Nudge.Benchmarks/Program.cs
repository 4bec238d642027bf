using System.Globalization;
using System.Text;
using Nudge.Benchmarks;

// Nudge benchmarks: dotnet run -c Release --project tests/Nudge.Benchmarks -- [journeys] [--instances N] [--no-write]
// Each benchmark prints its figures and rewrites its own section of BENCHMARKS.md with the machine and date.
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
