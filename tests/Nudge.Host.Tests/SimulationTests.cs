using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Nudge.Host.Hosting;
using Nudge.Host.Simulation;
using Nudge.TestSupport;

namespace Nudge.Host.Tests;

/// <summary>
/// `simulate`: the README quickstart's step 5. Runs the repository's journeys against scenario files on the virtual
/// clock and checks the printed timeline, the errors for bad scenarios, and that a simulation never reaches a provider.
/// </summary>
public sealed class SimulationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nudge-scenarios-").FullName;

    private static string Quickstart => Path.Combine(TestEnvironment.RepositoryRoot(), "scenarios", "quickstart.yaml");

    private static string Journeys => "--Nudge:Journeys:Dir=" + Path.Combine(TestEnvironment.RepositoryRoot(), "journeys");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Quickstart_ShowsThePushEmailAndSms_AtTheirDelays()
    {
        var (code, output, errors) = await SimulateAsync(Quickstart, Journeys);

        Assert.True(code == 0, errors + output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        string Line(string what) => lines.SingleOrDefault(l => l.Contains(what, StringComparison.Ordinal)) ?? throw new Xunit.Sdk.XunitException($"no line with '{what}' in:\n{output}");

        Assert.StartsWith("Mon 14:01 UTC     +0:01  shopper-42  entered cart_recovery", Line("entered cart_recovery"));
        Assert.Matches(@"^Mon 14:31 UTC +\+0:31  shopper-42  push \w+ to ios …06f5e4d3: ""Your cart is waiting"" ""Dana, your running shoes are still in your cart\.""  \[cart_recovery/push\]$",
            Line("[cart_recovery/push]"));
        Assert.Matches(@"^Mon 18:31 UTC +\+4:31  shopper-42  email \w+ to dana@example\.com: ""Still thinking it over\?""  \[cart_recovery/email\]$", Line("[cart_recovery/email]"));
        Assert.Matches(@"^Tue 14:31 UTC +\+24:31  shopper-42  sms \w+ to \+14155552671: ""Dana, your cart is about to expire: shop\.example/cart/cart-7 Reply STOP to opt out\.""  \[cart_recovery/sms\]$",
            Line("[cart_recovery/sms]"));
        Assert.StartsWith("Tue 14:31 UTC    +24:31  shopper-42  left cart_recovery: completed", Line("left cart_recovery"));
        Assert.Contains("3 messages sent (email 1, push 1, sms 1), 0 not sent; 1 journey entry; ended: completed 1.", output);

        // The scenario's lines come first, in the order written, with the JSON as people write it.
        Assert.Contains(@"identify: email=""dana@example.com"", first_name=""Dana"", phone=""+1 415 555 2671""", output);
        Assert.True(lines.IndexOf(Line("device: ios token …e4d3")) < lines.IndexOf(Line("event add_to_cart")));
    }

    /// <summary>The README's step 5 shows what the command prints, line for line.</summary>
    [Fact]
    public async Task TheReadme_ShowsWhatTheQuickstartSimulationPrints()
    {
        var (code, output, errors) = await SimulateAsync(Quickstart, Journeys);
        Assert.True(code == 0, errors + output);
        var readme = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot(), "README.md"));
        var block = Regex.Match(readme, "<!-- simulate-quickstart:start -->\n```\n(.*?)```\n<!-- simulate-quickstart:end -->", RegexOptions.Singleline);
        Assert.True(block.Success, "README.md has no simulate-quickstart block");

        // The first line names the file and folder as given: relative in the README (run from the repository root).
        var shown = block.Groups[1].Value.ReplaceLineEndings("\n").Split('\n');
        var printed = output.ReplaceLineEndings("\n").Split('\n');
        Assert.Equal("Simulating scenarios/quickstart.yaml against 7 journeys from journeys", shown[0]);
        Assert.StartsWith($"Simulating {Quickstart} against 7 journeys from ", printed[0]);
        Assert.Equal(printed[1..].ToList(), shown[1..].ToList());
    }

    [Fact]
    public async Task APurchase_EndsTheJourney_AndNothingIsSentAfterIt()
    {
        var file = Write("purchase.yaml", """
            start: 2026-06-01T14:00:00Z
            steps:
              - at: 0m
                identify: shopper-42
                attributes: { email: dana@example.com, first_name: Dana, phone: "+1 415 555 2671", sms_consent: true }
              - at: 0m
                device: shopper-42
                token: 3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3
                platform: ios
              - at: 1m
                event: add_to_cart
                customer: shopper-42
                data: { cart_id: cart-7, cart_value: 129.90 }
              - at: 2h
                event: purchase
                customer: shopper-42
                data: { cart_id: cart-7, value: 129.90 }
            """);

        var (code, output, errors) = await SimulateAsync(file, Journeys);

        Assert.True(code == 0, errors + output);
        Assert.Contains("[cart_recovery/push]", output);
        Assert.DoesNotContain("[cart_recovery/email]", output);
        Assert.DoesNotContain("[cart_recovery/sms]", output);
        Assert.Matches(@"Mon 16:00 UTC +\+2:00  shopper-42  converted: cart_recovery's goal reached", output);
        Assert.Contains("1 message sent (push 1), 0 not sent;", output);
    }

    [Fact]
    public async Task QuietHours_AreShownAsADeferral_AndTheStepsAfterCountFromWhenItWent()
    {
        // Added at 22:30 in New York with no device: the first step falls back to SMS at 23:00 there, inside the default
        // quiet hours (21:00-08:00), so it waits for 08:00; the email's 4 h and the SMS's 20 h count from then.
        var file = Write("late.yaml", """
            start: 2026-06-02T02:30:00Z
            steps:
              - at: 0m
                identify: night-owl
                attributes: { email: owl@example.com, phone: "+1 415 555 2672", sms_consent: true, timezone: America/New_York }
              - at: 0m
                event: add_to_cart
                customer: night-owl
                data: { cart_id: cart-9, cart_value: 250 }
            """);

        var (code, output, errors) = await SimulateAsync(file, Journeys);

        Assert.True(code == 0, errors + output);
        Assert.Contains("Tue 03:00 UTC     +0:30  night-owl  cart_recovery/push deferred: quiet hours until Tue 12:00 UTC", output);
        Assert.Matches(@"Tue 12:00 UTC +\+9:30  night-owl  sms \w+ to \+14155552672: ""Your cart is waiting: .*\[cart_recovery/push\]", output);
        Assert.Matches(@"Tue 16:00 UTC +\+13:30  night-owl  email \w+ to owl@example\.com: .*\[cart_recovery/email\]", output);
        Assert.Matches(@"Wed 12:00 UTC +\+33:30  night-owl  sms \w+ to \+14155552672: .*\[cart_recovery/sms\]", output);
    }

    [Fact]
    public async Task ConfiguredProviders_AreNeverCalled()
    {
        var calls = 0;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var peer = builder.Build();
        peer.Run(c =>
        {
            Interlocked.Increment(ref calls);
            c.Response.StatusCode = 201;
            return c.Response.WriteAsync("""{"sid":"SM00000000000000000000000000000000","status":"queued"}""");
        });
        await peer.StartAsync();
        var url = NudgeServer.BaseAddress(peer).ToString().TrimEnd('/');

        var (code, output, errors) = await SimulateAsync(Quickstart, Journeys,
            "--Nudge:Providers:Twilio:AccountSid=AC00000000000000000000000000000000", "--Nudge:Providers:Twilio:AuthToken=0123456789abcdef0123456789abcdef",
            "--Nudge:Providers:Twilio:From=+14155550100", $"--Nudge:Providers:Twilio:BaseUrl={url}");

        Assert.True(code == 0, errors + output);
        Assert.Contains("[cart_recovery/sms]", output);
        Assert.Equal(0, Volatile.Read(ref calls));
        await peer.StopAsync();
    }

    [Theory]
    [InlineData("steps: []", "bad.yaml:1: steps: must be a list of at least one step")]
    [InlineData("start: tomorrow\nsteps:\n  - at: 0m\n    identify: a", "bad.yaml:1: start: must be an ISO 8601 time with its offset")]
    [InlineData("steps:\n  - at: 1h\n    identify: a\n  - at: 30m\n    identify: b", "bad.yaml:4: steps[1].at: 30m is before the step above it (1h)")]
    [InlineData("steps:\n  - at: 0m\n    identify: a\n    event: x", "bad.yaml:2: steps[0]: has identify and event: one step makes one call")]
    [InlineData("steps:\n  - at: 0m\n    event: add_to_cart", "bad.yaml:2: steps[0].customer: required: the id of the person who performs it")]
    [InlineData("steps:\n  - at: 0m\n    device: a\n    token: t\n    platfrom: ios", "bad.yaml:5: steps[0].platfrom: unknown key for device")]
    [InlineData("steps:\n  - { at: 0m, identify: a\n", "bad.yaml:")]
    public async Task ABadScenario_IsOneLinePerProblem_NamingFileLineAndPath_ExitCode2(string yaml, string expected)
    {
        var file = Write("bad.yaml", yaml);

        var (code, output, errors) = await SimulateAsync(file);

        Assert.Equal(Simulator.BadInput, code);
        Assert.Equal("", output);
        Assert.Contains("simulate: " + Path.Combine(_dir, expected), errors);
        Assert.All(errors.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.StartsWith("simulate: ", l));
    }

    [Fact]
    public async Task ACallTheTrackApiRejects_NamesTheStep()
    {
        var file = Write("rejected.yaml", """
            steps:
              - at: 0m
                identify: shopper-1
              - at: 5m
                device: shopper-1
                token: abc
                platform: blackberry
            """);

        var (code, _, errors) = await SimulateAsync(file, Journeys);

        Assert.Equal(Simulator.BadInput, code);
        Assert.Contains($"simulate: {file}:4: steps[1]: the Track API answered 400", errors);
        Assert.Contains("platform", errors);
    }

    [Fact]
    public async Task ABadSetting_IsAConfigurationErrorLine_ExitCode2()
    {
        var (code, output, errors) = await SimulateAsync(Quickstart, Journeys, "--Nudge:Workers:BatchSize=0");

        Assert.Equal(Simulator.BadInput, code);
        Assert.Equal("", output);
        Assert.StartsWith("simulate: configuration error: Nudge:Workers:BatchSize", errors);
        Assert.DoesNotContain("   at ", errors);
    }

    [Fact]
    public async Task AnInvalidJourneyFile_IsNamedWithItsLine_ExitCode2()
    {
        var journeys = Directory.CreateDirectory(Path.Combine(_dir, "journeys")).FullName;
        File.WriteAllText(Path.Combine(journeys, "broken.yaml"), "id: broken\nversion: 1\ntrigger:\n  events: [add_to_cart]\nsteps:\n  - id: wait\n    delay: soon\n");

        var (code, output, errors) = await SimulateAsync(Quickstart, "--Nudge:Journeys:Dir=" + journeys);

        Assert.Equal(Simulator.BadInput, code);
        Assert.Equal("", output);
        Assert.StartsWith("simulate: configuration error: ", errors);
        Assert.Contains("broken.yaml:7: steps[0].delay", errors);
        Assert.DoesNotContain("   at ", errors);
    }

    [Fact]
    public async Task Usage_WithoutAScenario()
    {
        var (code, _, errors) = await SimulateAsync(null);

        Assert.Equal(Simulator.BadInput, code);
        Assert.StartsWith("usage: simulate <scenario.yaml>", errors);
    }

    /// <summary>The command as the README gives it: Nudge.Host's own entry point, in its own process.</summary>
    [Fact]
    public async Task TheProgram_RunsSimulate_AndLeavesNoDataBehind()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Nudge.Host.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir,
        };
        foreach (var a in new[] { dll, "simulate", Quickstart, Journeys })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["TMPDIR"] = _dir;
        var p = ChildProcesses.Start(psi);
        try
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, await stderr + await stdout);
            Assert.Contains("3 messages sent (email 1, push 1, sms 1)", await stdout);
            Assert.DoesNotContain("Nudge is listening", await stdout);
        }
        finally
        {
            await ChildProcesses.StopAsync(p);
        }

        // Its throw-away data folder (in TMPDIR) went with it, and nothing was written where it ran.
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_dir), e => Path.GetFileName(e).StartsWith("nudge", StringComparison.Ordinal));
    }

    private string Write(string name, string yaml)
    {
        var file = Path.Combine(_dir, name);
        File.WriteAllText(file, yaml);
        return file;
    }

    private static async Task<(int Code, string Output, string Errors)> SimulateAsync(string? file, params string[] settings)
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var code = await Simulator.RunAsync(file is null ? [] : [file, .. settings], output, errors);
        return (code, output.ToString(), errors.ToString());
    }
}
