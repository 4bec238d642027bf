using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>Tests against Nudge.Host as a real process: crash durability and first-run behaviour.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ProcessTests : IDisposable
{
    /// <summary>The fixed credentials every process test starts Nudge with.</summary>
    internal static readonly string[] Keys =
    [
        $"--Nudge:Auth:SiteId={SiteId}", $"--Nudge:Auth:ApiKey={ApiKey}",
        $"--Nudge:Auth:SegmentWriteKey={WriteKey}", $"--Nudge:Auth:AdminKey={AdminKey}",
    ];

    private readonly string _dataDir = Directory.CreateTempSubdirectory("nudge-proc-").FullName;

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    [Fact]
    public async Task AcceptedEvents_SurviveKill9BeforeProcessing_AndAreProcessedAfterRestart()
    {
        const int people = 40;
        const int eventsEach = 5;
        await using (var first = await NudgeProcess.StartAsync(_dataDir, [.. Keys, "--Nudge:Workers:Enabled=false"]))
        {
            var track = Client(first.BaseAddress, "Basic", Basic(SiteId, ApiKey));
            var segment = Client(first.BaseAddress, "Basic", Basic(WriteKey, ""));
            await Parallel.ForEachAsync(Enumerable.Range(0, people), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
            {
                for (var e = 0; e < eventsEach; e++)
                {
                    var r = e % 2 == 0
                        ? await track.PostAsync($"/api/v1/customers/p{i}/events", Json($$$"""{"name":"add_to_cart","id":"p{{{i}}}-e{{{e}}}"}"""), ct)
                        : await segment.PostAsync("/v1/track", Json($$$"""{"userId":"p{{{i}}}","event":"add_to_cart","messageId":"p{{{i}}}-e{{{e}}}"}"""), ct);
                    Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                }
            });

            // Killed right after the last 2xx: nothing was processed, everything is only in the queue file.
            await first.KillHardAsync();
        }

        await using var second = await NudgeProcess.StartAsync(_dataDir, Keys);
        var admin = Client(second.BaseAddress, "Bearer", AdminKey);
        await Drain(admin);
        for (var i = 0; i < people; i++)
        {
            var p = (await Profile(admin, $"p{i}"))!;
            Assert.Equal(eventsEach, p.Events("add_to_cart").Count());
        }
    }

    [Fact]
    public async Task Kill9DuringLoad_EveryAcknowledgedEventIsStoredExactlyOnce()
    {
        var acknowledged = new ConcurrentBag<string>();
        await using (var first = await NudgeProcess.StartAsync(_dataDir, Keys))
        {
            var track = Client(first.BaseAddress, "Basic", Basic(SiteId, ApiKey));
            using var stop = new CancellationTokenSource();
            var senders = Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
            {
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    var id = $"w{w}-n{n}";
                    try
                    {
                        var r = await track.PostAsync($"/api/v1/customers/worker{w}/events", Json($$$"""{"name":"tick","id":"{{{id}}}","data":{"n":{{{n}}}}}"""));
                        if (r.StatusCode == HttpStatusCode.OK)
                        {
                            acknowledged.Add(id);
                        }
                    }
                    catch (HttpRequestException)
                    {
                        return; // the server is gone
                    }
                }
            })).ToArray();

            // Kill while requests are in flight and the worker is applying batches.
            while (acknowledged.Count < 600)
            {
                await Task.Delay(10);
            }

            await first.KillHardAsync();
            await stop.CancelAsync();
            await Task.WhenAll(senders);
        }

        await using var second = await NudgeProcess.StartAsync(_dataDir, Keys);
        var admin = Client(second.BaseAddress, "Bearer", AdminKey);
        await Drain(admin);
        var stored = new List<string>();
        for (var w = 0; w < 6; w++)
        {
            var r = await admin.GetStringAsync($"/admin/v1/profiles/worker{w}?events=500");
            stored.AddRange(JsonNode.Parse(r)!.AsObject().Events("tick").Select(e => e["id"].Str()));
        }

        Assert.True(acknowledged.Count >= 600);
        Assert.Empty(acknowledged.Except(stored));
        Assert.Equal(stored.Count, stored.Distinct().Count());
    }

    [Fact]
    public async Task FirstRun_GeneratesCredentials_PrintsThemOnce_AndTheyWork()
    {
        string printedKey;
        await using (var first = await NudgeProcess.StartAsync(_dataDir))
        {
            await WaitFor(() => first.Output.Contains("admin key", StringComparison.Ordinal));
            var output = first.Output;
            Assert.Contains("New credentials were generated", output, StringComparison.Ordinal);
            printedKey = Line(output, "API key");
            var site = Line(output, "site id");
            var file = Path.Combine(_dataDir, "credentials.json");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            Assert.Contains(printedKey, await File.ReadAllTextAsync(file), StringComparison.Ordinal);

            var track = Client(first.BaseAddress, "Basic", Basic(site, printedKey));
            Assert.Equal(HttpStatusCode.OK, (await track.PutAsync("/api/v1/customers/first", Json("{}"))).StatusCode);
            var wrong = Client(first.BaseAddress, "Basic", Basic(site, "guess"));
            Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.PutAsync("/api/v1/customers/first", Json("{}"))).StatusCode);
        }

        await using var second = await NudgeProcess.StartAsync(_dataDir);
        await WaitFor(() => second.Output.Contains("Credentials: from configuration", StringComparison.Ordinal));
        Assert.DoesNotContain(printedKey, second.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("New credentials", second.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfiguredCredentials_AreUsedAndNeverWrittenOrPrinted()
    {
        await using var p = await NudgeProcess.StartAsync(_dataDir, Keys);
        await WaitFor(() => p.Output.Contains("Credentials: from configuration", StringComparison.Ordinal));
        var track = Client(p.BaseAddress, "Basic", Basic(SiteId, ApiKey));
        Assert.Equal(HttpStatusCode.OK, (await track.PutAsync("/api/v1/customers/c1", Json("{}"))).StatusCode);
        Assert.DoesNotContain(ApiKey, p.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(AdminKey, p.Output, StringComparison.Ordinal);

        // Only the generated link key (it signs unsubscribe links, which must survive restarts) is saved; no configured secret.
        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(_dataDir, "credentials.json")))!;
        Assert.Equal(64, saved["linkKey"]!.GetValue<string>().Length);
        foreach (var name in new[] { "siteId", "apiKey", "segmentWriteKey", "adminKey" })
        {
            Assert.Equal("", saved[name]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task SecondProcessOnTheSameDataFolder_RefusesToStart()
    {
        await using var first = await NudgeProcess.StartAsync(_dataDir, Keys);

        // It exits on its own, however long the machine takes to get it there.
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => NudgeProcess.StartAsync(_dataDir, Keys));
        Assert.Contains("exited with code 2 before listening: nudge: cannot start: Another Nudge process is using the data folder", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error.Message, StringComparison.Ordinal);
    }

    internal static HttpClient Client(Uri baseAddress, string scheme, string value) =>
        new() { BaseAddress = baseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue(scheme, value) } };

    private static string Line(string output, string label) =>
        output.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith(label, StringComparison.Ordinal))[label.Length..].Trim();

    private static async Task WaitFor(Func<bool> condition)
    {
        // Output lines arrive on the reader thread; allow a loaded machine plenty of time for them.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!condition() && waited.Elapsed < TimeSpan.FromMinutes(1))
        {
            await Task.Delay(20);
        }

        Assert.True(condition());
    }
}
