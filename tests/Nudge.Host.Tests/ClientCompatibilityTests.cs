using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Nudge.TestSupport;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// The official customerio-node and @segment/analytics-node clients, pointed at Nudge, as a team would point its
/// backend. Needs node and tests/clients/node_modules (installed here with npm ci when missing, and by .ci/run).
/// </summary>
public sealed class ClientCompatibilityTests(NudgeServerFixture server) : IClassFixture<NudgeServerFixture>
{
    [Fact]
    public async Task OfficialNodeClients_IdentifyTrackDevicesMergeAndSegmentBatch()
    {
        var dir = Path.Combine(TestEnvironment.RepositoryRoot(), "tests", "clients");
        if (!Directory.Exists(Path.Combine(dir, "node_modules")))
        {
            var (code, output) = await Run("npm", ["ci", "--no-audit", "--no-fund"], dir, []);
            Assert.True(code == 0, "npm ci failed in tests/clients: " + output);
        }

        var run = Guid.NewGuid().ToString("N")[..10];
        var (exit, stdout) = await Run("node", ["clients.mjs"], dir, new()
        {
            ["NUDGE_URL"] = server.BaseAddress.ToString().TrimEnd('/'),
            ["NUDGE_SITE_ID"] = SiteId,
            ["NUDGE_API_KEY"] = ApiKey,
            ["NUDGE_WRITE_KEY"] = WriteKey,
            ["RUN"] = run,
        });
        Assert.True(exit == 0, "clients.mjs failed: " + stdout);
        var result = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
        Assert.Equal(400, result["badEvent"]!["status"]!.GetValue<int>());
        Assert.Equal(401, result["wrongKey"]!["status"]!.GetValue<int>());
        Assert.Empty(result["segmentErrors"]!.AsArray());

        await server.DrainAsync();
        var p = (await server.ProfileAsync($"{run}-cio"))!;
        Assert.Equal($"{run}@example.com", p["email"].Str());
        Assert.Equal(120.5, p["attributes"]!["cart_value"]!.GetValue<double>());
        Assert.Equal("gold", p["attributes"]!["loyalty"].Str()); // merged from {run}-other
        Assert.Single(p.Events("add_to_cart")); // sent twice with the same id
        Assert.Single(p.Events("viewed_product")); // anonymous, merged on identify
        var device = Assert.Single(p.Devices());
        Assert.Equal($"{run}-token-ios", device["token"].Str());
        Assert.Equal("3.0", device["attributes"]!["app_version"].Str());
        Assert.Null(await server.ProfileAsync($"{run}-intruder"));

        var s = (await server.ProfileAsync($"{run}-seg"))!;
        Assert.Equal($"{run}-seg@example.com", s["email"].Str());
        Assert.Equal("android", Assert.Single(s.Devices())["platform"].Str());
        Assert.Single(s.Events("add_to_cart"));
        Assert.Single(s.Events("Cart"));
    }

    private static async Task<(int Code, string Output)> Run(string file, string[] args, string dir, Dictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        using var p = ChildProcesses.Start(psi);
        try
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            await p.WaitForExitAsync(timeout.Token);
            return (p.ExitCode, await stdout + await stderr);
        }
        finally
        {
            // A timed-out client run (or a failed read) must not outlive the test.
            await ChildProcesses.StopAsync(p);
        }
    }
}
