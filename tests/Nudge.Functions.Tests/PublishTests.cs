using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Nudge.Host.CustomHandler;
using Nudge.TestSupport;

namespace Nudge.Functions.Tests;

/// <summary>Runs ./publish.sh once for the class (a self-contained linux-x64 publish: about a minute on a cold cache).</summary>
public sealed class PublishFixture : IAsyncLifetime
{
    public string RepoRoot { get; } = TestEnvironment.RepositoryRoot();

    public string AppDir => Path.Combine(RepoRoot, "artifacts", "functionapp");

    public string Zip => Path.Combine(RepoRoot, "artifacts", "functionapp.zip");

    public string Log { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var psi = new ProcessStartInfo("bash", [Path.Combine(RepoRoot, "publish.sh")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot,
        };
        using var p = ChildProcesses.Start(psi);
        try
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));
            try
            {
                await p.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("publish.sh did not finish in 8 minutes");
            }

            Log = await stdout + await stderr;
        }
        finally
        {
            await ChildProcesses.StopAsync(p);
        }

        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"publish.sh failed ({p.ExitCode}): {Log}");
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>The published Function App folder: what `func start` and zip deploy take.</summary>
public sealed class PublishTests(PublishFixture f) : IClassFixture<PublishFixture>
{
    /// <summary>function -> (trigger type, trigger queue or route/schedule, output bindings as "type:queue").</summary>
    public static TheoryData<string, string, string, string> Expected => new()
    {
        { "ingest", "httpTrigger", "{api:regex(^(api|v1)$)}/{*path}", "http:res serviceBus:events" },
        { "webhooks", "httpTrigger", "{hook:regex(^(u|e|webhooks)$)}/{*path}", "http:res serviceBus:events" },
        { "admin", "httpTrigger", "{area:regex(^(nudge-admin|health|dashboard)$)}/{*path}", "http:res serviceBus:events" },
        { "process-event", "serviceBusTrigger", "events", "serviceBus:sends" },
        { "run-step", "serviceBusTrigger", "steps", "serviceBus:sends" },
        { "send", "serviceBusTrigger", "sends", "" },
        { "journey-timers", "timerTrigger", "*/10 * * * * *", "serviceBus:steps serviceBus:sends" },
        { "reporting", "timerTrigger", "*/30 * * * * *", "" },
    };

    private JsonObject HostJson => JsonNode.Parse(File.ReadAllText(Path.Combine(f.AppDir, "host.json")))!.AsObject();

    [Fact]
    public void HostJson_IsTheCustomHandlerConfiguration()
    {
        var host = HostJson;

        Assert.Equal("2.0", host["version"]!.GetValue<string>());
        Assert.Equal("", host["extensions"]!["http"]!["routePrefix"]!.GetValue<string>());
        Assert.Equal("Nudge.Host", host["customHandler"]!["description"]!["defaultExecutablePath"]!.GetValue<string>());
        Assert.False(host["customHandler"]!["enableForwardingHttpRequest"]!.GetValue<bool>());
        Assert.Equal("Microsoft.Azure.Functions.ExtensionBundle", host["extensionBundle"]!["id"]!.GetValue<string>());
        Assert.Equal("[4.*, 5.0.0)", host["extensionBundle"]!["version"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(Expected))]
    public void FunctionJson_NamesTheRightTriggerAndBindings(string function, string trigger, string source, string outputs)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(f.AppDir, function, "function.json")))!.AsObject();
        var bindings = json["bindings"]!.AsArray().Select(b => b!.AsObject()).ToList();

        var input = Assert.Single(bindings, b => b["direction"]!.GetValue<string>() == "in");
        Assert.Equal(trigger, input["type"]!.GetValue<string>());
        var key = trigger switch { "httpTrigger" => "route", "timerTrigger" => "schedule", _ => "queueName" };
        Assert.Equal(source, input[key]!.GetValue<string>());
        if (trigger == "httpTrigger")
        {
            Assert.Equal("anonymous", input["authLevel"]!.GetValue<string>());
            Assert.Equal("req", input["name"]!.GetValue<string>());
            // The host refuses function routes that start with "admin" or "runtime" (its own APIs).
            Assert.False(source.StartsWith("admin", StringComparison.OrdinalIgnoreCase) || source.StartsWith("runtime", StringComparison.OrdinalIgnoreCase));
        }

        if (trigger == "serviceBusTrigger")
        {
            Assert.Equal("ServiceBusConnection", input["connection"]!.GetValue<string>());
        }

        var outs = bindings.Where(b => b["direction"]!.GetValue<string>() == "out")
            .Select(b => b["type"]!.GetValue<string>() + ":" + (b["queueName"]?.GetValue<string>() ?? b["name"]!.GetValue<string>()));
        Assert.Equal(outputs, string.Join(' ', outs));
        Assert.All(bindings.Where(b => b["type"]!.GetValue<string>() == "serviceBus"), b =>
        {
            Assert.Equal("ServiceBusConnection", b["connection"]!.GetValue<string>());
            // Output binding name = queue name: the handler answers {"Outputs":{"<queue>":[...]}}.
            Assert.Equal(b["queueName"]!.GetValue<string>(), b["name"]!.GetValue<string>());
        });
    }

    [Fact]
    public void Folder_HasOneFolderPerFunctionAndNothingElseWithAFunctionJson()
    {
        var folders = Directory.EnumerateDirectories(f.AppDir).Where(d => File.Exists(Path.Combine(d, "function.json"))).Select(d => Path.GetFileName(d)!).Order();

        Assert.Equal(FunctionsHost.Functions.Order(), folders);
        Assert.True(File.Exists(Path.Combine(f.AppDir, "journeys", "cart_recovery.yaml")));
        Assert.True(File.Exists(Path.Combine(f.AppDir, "appsettings.json")));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Executable_IsThereWithItsExecBit_InTheFolderAndTheZip()
    {
        var exe = Path.Combine(f.AppDir, "Nudge.Host");

        Assert.True(File.Exists(exe));
        Assert.True(File.GetUnixFileMode(exe).HasFlag(UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute));
        using var zip = ZipFile.OpenRead(f.Zip);
        var entry = zip.GetEntry("Nudge.Host");
        Assert.NotNull(entry);
        Assert.Equal(0b111_101_101, (entry.ExternalAttributes >> 16) & 0b111_111_111);
        Assert.NotNull(zip.GetEntry("host.json"));
        Assert.NotNull(zip.GetEntry("send/function.json"));
    }

    [Fact]
    public async Task PublishedExecutable_StartsInFunctionsModeFromTheAppRoot()
    {
        var dataDir = Directory.CreateTempSubdirectory("nudge-fn-pub-").FullName;
        try
        {
            var env = HandlerProcess.Settings(dataDir);
            // Relative, as in Azure: the handler's working directory is the app root (host.json workingDirectory "").
            env.Remove("Nudge__Journeys__Dir");
            await using var p = await HandlerProcess.StartAsync(Path.Combine(f.AppDir, "Nudge.Host"), [], env, f.AppDir);
            using var http = new HttpClient { BaseAddress = p.BaseAddress };

            using var timers = await http.PostAsync("/journey-timers", new StringContent(HostPayloads.Timer(), System.Text.Encoding.UTF8, "application/json"));

            Assert.True(timers.IsSuccessStatusCode);
            Assert.Contains("7 journeys from " + Path.Combine(f.AppDir, "journeys"), p.Output);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
