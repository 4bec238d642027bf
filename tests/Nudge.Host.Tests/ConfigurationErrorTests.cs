using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Nudge.Delivery;
using Nudge.Host.Hosting;
using Nudge.TestSupport;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// Every configuration mistake is one clear line (issue 15): the real Nudge.Host process, started once per option group
/// with one wrong value, exits with code 2 and prints one stderr line per problem naming the setting, no stack trace,
/// no secret, and creates nothing. The groups are found by reflection (NudgeOptions and every provider's options), so a
/// new group without a case here fails <see cref="EveryOptionGroup_HasACase"/>.
/// </summary>
public sealed class ConfigurationErrorTests
{
    private const string ErrorPrefix = "nudge: configuration error: ";
    private const string SetupPrefix = "nudge: cannot start: ";

    /// <summary>Processes started at once: each spends about a second of CPU starting, on a machine with 2 cores shared with other work.</summary>
    private const int Parallelism = 4;

    private static readonly string[] FunctionsKeys =
    [
        $"--Nudge:Auth:SiteId={SiteId}", $"--Nudge:Auth:ApiKey={ApiKey}", $"--Nudge:Auth:SegmentWriteKey={WriteKey}", $"--Nudge:Auth:AdminKey={AdminKey}",
        $"--Nudge:Auth:LinkKey={new string('l', 64)}", "--Nudge:PublicBaseUrl=https://nudge.example.com",
    ];

    // Before Apns: static initializers run in the order they are written.
    private static readonly string ApnsKeyPem = NewApnsKeyPem();

    /// <summary>A whole, valid APNs configuration but for the setting a case gets wrong.</summary>
    private static readonly string[] Apns =
    [
        "--Nudge:Providers:Apns:KeyId=ABCDE12345", "--Nudge:Providers:Apns:TeamId=TEAM123456", "--Nudge:Providers:Apns:BundleId=com.example.shop",
        $"--Nudge:Providers:Apns:PrivateKey={ApnsKeyPem}",
    ];

    /// <summary>One mistake per case: the settings the process must name, one stderr line each, and values that must not be printed.</summary>
    public sealed record Case(string Group, string[] Args, string[] Named, string[]? Secrets = null, bool Functions = false)
    {
        public override string ToString() => $"{Group} ({string.Join(' ', Args.Where(a => !a.Contains("PrivateKey=", StringComparison.Ordinal)))})";
    }

    public static readonly IReadOnlyList<Case> Cases =
    [
        new("Nudge", ["--Nudge:DefaultPhoneRegion=usa"], ["Nudge:DefaultPhoneRegion"]),
        new("Nudge", ["--Nudge:PublicBaseUrl=nudge.example.com"], ["Nudge:PublicBaseUrl"]),
        new("Nudge:Auth", ["--Nudge:Auth:LinkKey=short-link-secret-value"], ["Nudge:Auth:LinkKey"], ["short-link-secret-value"]),

        // App Service passes a Key Vault reference it cannot resolve through as text: never a credential.
        new("Nudge:Auth", ["--Nudge:Auth:ApiKey=@Microsoft.KeyVault(VaultName=nudge-kv;SecretName=nudge-api-key)"],
            ["Nudge:Auth:ApiKey: is an unresolved Key Vault reference"], ["SecretName=nudge-api-key"]),
        new("Nudge:RateLimits", ["--Nudge:RateLimits:Enabled=sometimes"], ["Nudge:RateLimits:Enabled"]),
        new("Nudge:RateLimits:Track", ["--Nudge:RateLimits:Track:PerSecond=0"], ["Nudge:RateLimits:Track:PerSecond"]),
        new("Nudge:RateLimits:Segment", ["--Nudge:RateLimits:Segment:Burst=1"], ["Nudge:RateLimits:Segment:Burst"]),
        new("Nudge:RateLimits:Admin", ["--Nudge:RateLimits:Admin:Burst=20000000"], ["Nudge:RateLimits:Admin:Burst"]),
        new("Nudge:RateLimits:AuthFailures", ["--Nudge:RateLimits:AuthFailures:PerSecond=ten"], ["Nudge:RateLimits:AuthFailures:PerSecond"]),
        new("Nudge:Workers", ["--Nudge:Workers:BatchSize=0"], ["Nudge:Workers:BatchSize"]),

        // A misspelt setting would otherwise be ignored: it is named, with the one meant.
        new("Nudge:Workers", ["--Nudge:Workers:BatchSzie=10"], ["Nudge:Workers:BatchSzie: no such setting (did you mean Nudge:Workers:BatchSize?)"]),
        new("Nudge", ["--Nudge:Wrokers:Enabled=false"], ["Nudge:Wrokers:Enabled: no such setting (did you mean Nudge:Workers:Enabled?)"]),
        new("Nudge:Journeys", ["--Nudge:Journeys:DefaultTimeZone=Mars/Olympus_Mons"], ["Nudge:Journeys:DefaultTimeZone"]),
        new("Nudge:Journeys", ["--Nudge:Journeys:Caps:0=sms:lots"], ["Nudge:Journeys:Caps:0"]),
        new("Nudge:Store", ["--Nudge:Store:Kind=mongo"], ["Nudge:Store:Kind"]),
        new("Nudge:Cosmos", ["--Nudge:Store:Kind=cosmos", "--Nudge:Cosmos:Endpoint=https://127.0.0.1:8081/", "--Nudge:Cosmos:Key=not base64 secret!"],
            ["Nudge:Cosmos:Key"], ["not base64 secret!"]),
        new("Nudge:Functions", [.. FunctionsKeys, "--Nudge:Functions:MaxDeliveryCount=0"], ["Nudge:Functions:MaxDeliveryCount"], [ApiKey, AdminKey], Functions: true),
        new("Nudge:Functions", ["--Nudge:Functions:SweepLimit=0"], ["Nudge:Functions:SweepLimit"]),
        new("Nudge:Reports", ["--Nudge:Reports:ActiveDays=0"], ["Nudge:Reports:ActiveDays"]),
        new("Nudge:Alerts", ["--Nudge:Alerts:WebhookUrl=hooks.slack.com/services/T0/B0/alert-secret"], ["Nudge:Alerts:WebhookUrl"], ["alert-secret"]),
        new("Nudge:ReportingWebhooks", ["--Nudge:ReportingWebhooks:Url=https://receiver.example.com/x", "--Nudge:ReportingWebhooks:Secret=tiny-secret"],
            ["Nudge:ReportingWebhooks:Secret"], ["tiny-secret"]),
        new("Nudge:Sms", [$"--Nudge:Sms:HelpReply={new string('h', 1601)}"], ["Nudge:Sms:HelpReply"]),
        new("Nudge:Telemetry", ["--Nudge:Telemetry:Otlp=yes"], ["Nudge:Telemetry:Otlp"]),
        new("Nudge:Telemetry", ["--Nudge:Telemetry:Otlp=true", "--OTEL_EXPORTER_OTLP_PROTOCOL=carrier-pigeon", "--OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317"],
            ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT"]),
        new("Nudge:Retention", ["--Nudge:Retention:EventsDays=0"], ["Nudge:Retention:EventsDays"]),
        new("Nudge:Providers:Fcm", ["--Nudge:Providers:Fcm:ServiceAccountJson={\"private_key\": \"fcm-secret-material"], ["Nudge:Providers:Fcm:ServiceAccountJson"],
            ["fcm-secret-material"]),
        new("Nudge:Providers:Apns", [.. Apns, "--Nudge:Providers:Apns:TokenRefreshMinutes=90"], ["Nudge:Providers:Apns:TokenRefreshMinutes"],
            [ApnsKeyPem.Split('\n')[1]]),
        new("Nudge:Providers:Twilio", ["--Nudge:Providers:Twilio:AccountSid=AC0123456789abcdef0123456789abcdef", "--Nudge:Providers:Twilio:AuthToken=twilio-secret-token",
            "--Nudge:Providers:Twilio:From=555-0100"], ["Nudge:Providers:Twilio:From"], ["twilio-secret-token"]),

        // Outbound settings given in part are an error naming what is missing; the auth token alone is not (TwilioInboundOnlyTests).
        new("Nudge:Providers:Twilio", ["--Nudge:Providers:Twilio:AccountSid=AC0123456789abcdef0123456789abcdef", "--Nudge:Providers:Twilio:AuthToken=twilio-secret-token"],
            ["Nudge:Providers:Twilio:MessagingServiceSid or Nudge:Providers:Twilio:From is required"], ["twilio-secret-token"]),
        new("Nudge:Providers:Twilio", ["--Nudge:Providers:Twilio:AuthToken=twilio secret token"], ["Nudge:Providers:Twilio:AuthToken"], ["twilio secret token"]),
        new("Nudge:Providers:Email", ["--Nudge:Providers:Email:Provider=carrier-pigeon", "--Nudge:Providers:Email:From=shop@example.com"], ["Nudge:Providers:Email:Provider"],
            ["carrier-pigeon"]),
        new("Nudge:Providers:Email:Smtp", ["--Nudge:Providers:Email:Provider=smtp", "--Nudge:Providers:Email:From=shop@example.com", "--Nudge:Providers:Email:Smtp:Host=localhost",
            "--Nudge:Providers:Email:Smtp:Password=smtp-secret-password"], ["Nudge:Providers:Email:Smtp:UserName"], ["smtp-secret-password"]),
        new("Nudge:Providers:Email:SendGrid", ["--Nudge:Providers:Email:Provider=sendgrid", "--Nudge:Providers:Email:From=shop@example.com",
            "--Nudge:Providers:Email:SendGrid:ApiKey=SG.sendgrid-secret-key", "--Nudge:Providers:Email:SendGrid:BaseUrl=ftp://api.sendgrid.com"],
            ["Nudge:Providers:Email:SendGrid:BaseUrl"], ["SG.sendgrid-secret-key"]),
        new("Nudge:Providers:Email:SendGrid", ["--Nudge:Providers:Email:SendGrid:WebhookPublicKey=bm90IGEga2V5"], ["Nudge:Providers:Email:SendGrid:WebhookPublicKey"]),
        new("urls", ["--urls=localhost-7071"], ["urls: 'localhost-7071'"]),
    ];

    /// <summary>Every options class reachable from NudgeOptions and from each provider's options, by configuration path.</summary>
    private static IEnumerable<string> OptionGroups()
    {
        var providers = typeof(IProviderOptions).Assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false } && t.IsAssignableTo(typeof(IProviderOptions))).ToList();
        Assert.NotEmpty(providers);
        var roots = providers.Select(t => (Type: t, Path: (t.GetField("SectionName") ?? t.GetField("Section"))?.GetRawConstantValue() as string
            ?? throw new InvalidOperationException($"{t.Name} declares no SectionName or Section constant: add one so its settings can be named")))
            .Prepend((Type: typeof(NudgeOptions), Path: NudgeOptions.Section));
        return roots.SelectMany(r => Groups(r.Type, r.Path)).Append("urls");

        static IEnumerable<string> Groups(Type type, string path) =>
            type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.PropertyType.IsClass && p.PropertyType.Namespace?.StartsWith("Nudge.", StringComparison.Ordinal) == true)
                .SelectMany(p => Groups(p.PropertyType, $"{path}:{p.Name}"))
                .Prepend(path);
    }

    [Fact]
    public void EveryOptionGroup_HasACase()
    {
        var groups = OptionGroups().ToHashSet(StringComparer.Ordinal);

        Assert.Contains("Nudge:RateLimits:AuthFailures", groups);
        Assert.Contains("Nudge:Providers:Email:SendGrid", groups);
        Assert.Empty(groups.Except(Cases.Select(c => c.Group)));
        Assert.Empty(Cases.Select(c => c.Group).Except(groups));
    }

    [Fact]
    public async Task OneWrongValuePerGroup_ExitsWith2_OneLinePerProblemNamingTheSetting_NoStackTrace_NoSecret()
    {
        var results = new Dictionary<Case, Run>();
        await Parallel.ForEachAsync(Cases, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (c, _) =>
        {
            var run = await RunAsync(c.Args, c.Functions);
            lock (results)
            {
                results[c] = run;
            }
        });

        var failures = new List<string>();
        foreach (var c in Cases)
        {
            var run = results[c];
            var problems = Check(run, ErrorPrefix, c.Named.Length, c.Secrets ?? []);
            problems.AddRange(c.Named.Where(n => !run.ErrorLines.Any(l => l.Contains(n, StringComparison.Ordinal))).Select(n => $"no line names {n}"));
            if (run.DataDirCreated)
            {
                problems.Add("the data folder was created before the settings were checked");
            }

            failures.AddRange(problems.Select(p => $"{c}: {p}{Environment.NewLine}  stderr: {run.Stderr}{Environment.NewLine}  stdout: {run.Stdout}"));
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public async Task DataFolderHeldByAnotherProcess_IsOneLine_Exit2()
    {
        var dir = Directory.CreateTempSubdirectory("nudge-cfg-").FullName;
        try
        {
            // The lock Nudge takes (an exclusive open) held by this process stands for another Nudge.
            await using (new FileStream(Path.Combine(dir, "nudge.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
            {
                var run = await RunAsync([], functions: false, dataDir: dir);
                Assert.Equal([], Check(run, SetupPrefix, 1, []));
                Assert.Contains($"Another Nudge process is using the data folder {dir}", run.Stderr, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task DataFolderThatCannotBeCreated_IsOneLineNamingTheSetting_Exit2()
    {
        var dir = Directory.CreateTempSubdirectory("nudge-cfg-").FullName;
        try
        {
            // A folder below a plain file cannot be created, even by root (a read-only folder would not stop root).
            var file = Path.Combine(dir, "a-file");
            await File.WriteAllTextAsync(file, "");
            var run = await RunAsync([], functions: false, dataDir: Path.Combine(file, "data"));
            Assert.Equal([], Check(run, SetupPrefix, 1, []));
            Assert.Contains($"Nudge:DataDir: cannot use the data folder {Path.Combine(file, "data")}", run.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task DataFolderWithAFileThatIsNotADatabase_IsOneLineNamingTheSetting_Exit2()
    {
        var dir = Directory.CreateTempSubdirectory("nudge-cfg-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "nudge.db"), string.Concat(Enumerable.Repeat("not a database ", 100)));
            var run = await RunAsync([], functions: false, dataDir: dir);
            Assert.Equal([], Check(run, SetupPrefix, 1, []));
            Assert.Contains($"Nudge:DataDir: the SQLite files in {dir} cannot be opened", run.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task PortInUse_IsOneLineNamingTheAddress_Exit2()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}";

        var run = await RunAsync([$"--urls={url}"], functions: false);

        Assert.Equal([], Check(run, SetupPrefix, 1, []));
        Assert.Contains($"Failed to bind to address {url}", run.Stderr, StringComparison.Ordinal);
    }

    /// <summary>What is wrong with a run that should have stopped with <paramref name="lines"/> stderr lines starting with <paramref name="prefix"/>.</summary>
    private static List<string> Check(Run run, string prefix, int lines, IEnumerable<string> secrets)
    {
        var problems = new List<string>();
        if (run.ExitCode != NudgeConfigurationException.ExitCode)
        {
            problems.Add($"exit code {run.ExitCode}, not {NudgeConfigurationException.ExitCode}");
        }

        if (run.ErrorLines.Count != lines || run.ErrorLines.Any(l => !l.StartsWith(prefix, StringComparison.Ordinal)))
        {
            problems.Add($"stderr has {run.ErrorLines.Count} lines, expected {lines}, each starting with '{prefix}'");
        }

        var all = run.Stdout + run.Stderr;
        foreach (var trace in new[] { "   at ", "Unhandled exception", "Exception:", "Nudge is listening" })
        {
            if (all.Contains(trace, StringComparison.Ordinal))
            {
                problems.Add($"the output contains '{trace}'");
            }
        }

        problems.AddRange(secrets.Where(s => all.Contains(s, StringComparison.Ordinal)).Select(s => $"a secret was printed ({s.Length} characters)"));
        return problems;
    }

    /// <summary>The outcome of one start: exit code, both streams, and whether the data folder came to exist.</summary>
    private sealed record Run(int ExitCode, string Stdout, string Stderr, bool DataDirCreated)
    {
        public IReadOnlyList<string> ErrorLines { get; } = Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>
    /// Runs Nudge.Host to its exit. A start that does not stop on its own is a failure: it is stopped after two minutes,
    /// a bound only a machine far slower than any start seen would reach.
    /// </summary>
    private static async Task<Run> RunAsync(IEnumerable<string> args, bool functions, string? dataDir = null)
    {
        var work = Directory.CreateTempSubdirectory("nudge-cfg-run-").FullName;
        try
        {
            dataDir ??= Path.Combine(work, "data");
            var existed = Directory.Exists(dataDir);
            var psi = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = work,
                StandardErrorEncoding = Encoding.UTF8,
                StandardOutputEncoding = Encoding.UTF8,
            };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Nudge.Host.dll"), "--urls=http://127.0.0.1:0", $"--Nudge:DataDir={dataDir}" }.Concat(args))
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["DOTNET_NOLOGO"] = "1";
            if (functions)
            {
                psi.Environment["FUNCTIONS_CUSTOMHANDLER_PORT"] = "0";
            }

            using var process = ChildProcesses.Start(psi);
            try
            {
                var stdout = process.StandardOutput.ReadToEndAsync();
                var stderr = process.StandardError.ReadToEndAsync();
                using var bound = new CancellationTokenSource(TimeSpan.FromMinutes(2));
                try
                {
                    await process.WaitForExitAsync(bound.Token);
                }
                catch (OperationCanceledException)
                {
                    await ChildProcesses.StopAsync(process);
                    return new Run(-1, await stdout, "still running after 2 minutes: " + await stderr, false);
                }

                return new Run(process.ExitCode, await stdout, await stderr, !existed && Directory.Exists(dataDir));
            }
            finally
            {
                await ChildProcesses.StopAsync(process);
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string NewApnsKeyPem()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return key.ExportPkcs8PrivateKeyPem();
    }
}
