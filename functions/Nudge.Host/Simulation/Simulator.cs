using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Host.Auth;
using Nudge.Host.Hosting;
using Nudge.Host.Workers;
using Nudge.Pipeline;

namespace Nudge.Host.Simulation;

/// <summary>
/// <c>simulate</c>: runs the journeys against a scenario on a virtual clock and prints the timeline. It is the real
/// embedded server (Track API, events queue, engine, send stage) on a throw-away data folder, with every channel in the
/// sandbox; the clock jumps from one timer to the next, firing each at its due time, so a day of journey time takes a
/// second. Nothing is sent and the real data folder is not touched.
/// </summary>
public static class Simulator
{
    /// <summary>Exit code for a usage, scenario or configuration problem.</summary>
    public const int BadInput = 2;

    /// <summary>Runs <c>simulate &lt;scenario.yaml&gt; [--Nudge:Setting=value ...]</c>; returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter errors, TimeProvider? wallClock = null)
    {
        if (args.Length == 0 || args[0].StartsWith('-') || args.Skip(1).Any(a => !a.StartsWith("--", StringComparison.Ordinal)))
        {
            await errors.WriteLineAsync("usage: simulate <scenario.yaml> [--Nudge:Setting=value ...]  (e.g. simulate scenarios/quickstart.yaml)");
            return BadInput;
        }

        Scenario scenario;
        try
        {
            scenario = Scenario.Load(args[0]);
        }
        catch (ScenarioException e)
        {
            foreach (var p in e.Problems)
            {
                await errors.WriteLineAsync("simulate: " + p);
            }

            return BadInput;
        }

        var now = (wallClock ?? TimeProvider.System).GetUtcNow();
        var start = scenario.Start ?? new DateTimeOffset(now.UtcTicks - now.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        var dataDir = Directory.CreateTempSubdirectory("nudge-simulate-").FullName;
        try
        {
            var timeline = await RunAsync(scenario, start, dataDir, args[1..], output);
            if (timeline.Failure is { } failure)
            {
                await errors.WriteLineAsync("simulate: " + failure);
                return BadInput;
            }

            return 0;
        }
        catch (NudgeConfigurationException e)
        {
            foreach (var p in e.Problems)
            {
                await errors.WriteLineAsync("simulate: configuration error: " + p);
            }

            return BadInput;
        }
        catch (NudgeSetupException e)
        {
            await errors.WriteLineAsync("simulate: cannot start: " + e.Message);
            return BadInput;
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static async Task<(string? Failure, int Lines)> RunAsync(Scenario scenario, DateTimeOffset start, string dataDir, string[] settings, TextWriter output)
    {
        var clock = new SimulationClock(start);

        // The scenario's own folder, the simulated store and the sandbox win over whatever the environment configures.
        var app = await NudgeServer.BuildAsync(
        [
            .. settings, "--urls=http://127.0.0.1:0", $"--Nudge:DataDir={dataDir}", "--Nudge:Store:Kind=sqlite", "--Nudge:Workers:Enabled=false",
            "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning",
        ], clock, simulation: true);
        try
        {
            await app.StartAsync();
            var runtime = app.Services.GetRequiredService<JourneyRuntime>();
            var journeysDir = Path.GetFullPath(app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<NudgeOptions>>().Value.Journeys.Dir);
            var shown = Path.GetRelativePath(Environment.CurrentDirectory, journeysDir);
            shown = shown.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(shown) ? journeysDir : shown;
            await output.WriteLineAsync(
                $"Simulating {scenario.File} against {NudgeServer.Count(runtime.Journeys.Count, "journey", "journeys")} from {shown}");
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"Virtual clock from {start:dddd yyyy-MM-dd HH:mm} UTC; every channel is the sandbox, so nothing is sent."));
            if (scenario.Description is { } d)
            {
                await output.WriteLineAsync(d);
            }

            await output.WriteLineAsync();
            var store = app.Services.GetRequiredService<IStore>();
            var deferrals = new Dictionary<(string Instance, string Step, DateTimeOffset Until), Deferral>();
            var customers = scenario.Steps.Select(s => s.Customer).Distinct(StringComparer.Ordinal).ToList();

            // A deferral lasts only until the step runs (the step's result is then its message), so it is noted as it is seen.
            async Task NoteDeferrals()
            {
                foreach (var customer in customers)
                {
                    if (await store.ResolveAsync(new Identifier(IdentifierKind.Id, customer)) is not { } key)
                    {
                        continue;
                    }

                    foreach (var i in await store.GetInstancesAsync(key))
                    {
                        foreach (var (step, result) in i.StepResults)
                        {
                            if (result["deferred"] is JsonValue why && result["until"] is JsonValue until)
                            {
                                deferrals.TryAdd((i.Id, step, until.GetValue<DateTimeOffset>()),
                                    new Deferral(clock.GetUtcNow(), customer, i.JourneyId, step, why.GetValue<string>(), until.GetValue<DateTimeOffset>()));
                            }
                        }
                    }
                }
            }

            var driver = new Driver(app, clock, NoteDeferrals);
            var credentials = app.Services.GetRequiredService<Credentials>();
            using var track = new HttpClient { BaseAddress = NudgeServer.BaseAddress(app) };
            track.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.SiteId}:{credentials.ApiKey}")));

            foreach (var step in scenario.Steps)
            {
                if (await driver.AdvanceToAsync(start + step.At) is { } stuck)
                {
                    return (stuck, 0);
                }

                using var request = new HttpRequestMessage(step.Method, step.Path)
                {
                    Content = new StringContent(step.Body.ToJsonString(), Encoding.UTF8, "application/json"),
                };
                using var answer = await track.SendAsync(request);
                if (!answer.IsSuccessStatusCode)
                {
                    var why = (await answer.Content.ReadAsStringAsync()).Trim();
                    return ($"{scenario.File}:{step.Line}: steps[{step.Index}]: the Track API answered {(int)answer.StatusCode} {why}", 0);
                }

                await driver.SettleAsync();
            }

            var last = start + (scenario.Steps.Count > 0 ? scenario.Steps[^1].At : TimeSpan.Zero);
            var end = last + scenario.RunFor;
            if (await driver.AdvanceToAsync(end, stopWhenIdle: true) is { } stuckAfter)
            {
                return (stuckAfter, 0);
            }

            var lines = await Timeline.BuildAsync(store, scenario, start, deferrals.Values);
            foreach (var line in lines.Entries)
            {
                await output.WriteLineAsync(line);
            }

            await output.WriteLineAsync();
            await output.WriteLineAsync(lines.Summary);
            await output.FlushAsync();
            return (null, lines.Entries.Count);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>Moves the virtual clock and runs the stages at each moment, exactly as the embedded workers would.</summary>
    private sealed class Driver(WebApplication app, SimulationClock clock, Func<Task> afterEach)
    {
        /// <summary>How many wake-ups in a row may find nothing to fire before the simulation gives up.</summary>
        private const int MaxIdleWakes = 100;

        private readonly IStore _store = app.Services.GetRequiredService<IStore>();
        private readonly EventWorker _events = app.Services.GetRequiredService<EventWorker>();
        private readonly TimerWorker _timers = app.Services.GetRequiredService<TimerWorker>();
        private readonly SendWorker _sends = app.Services.GetRequiredService<SendWorker>();

        /// <summary>Processes queued events, then fires due timers and sends ready messages until nothing moves.</summary>
        public async Task SettleAsync()
        {
            while (true)
            {
                var moved = 0;
                while (await _events.RunOnceAsync() is > 0 and var n)
                {
                    moved += n;
                }

                moved += await _timers.RunDueOnceAsync();
                moved += await _sends.RunOnceAsync();
                await afterEach();
                if (moved == 0)
                {
                    return;
                }
            }
        }

        /// <summary>
        /// Moves the clock to <paramref name="target"/>, stopping at every timer on the way; with
        /// <paramref name="stopWhenIdle"/> it stops at the last timer once none is left. Returns a problem, or null.
        /// </summary>
        public async Task<string?> AdvanceToAsync(DateTimeOffset target, bool stopWhenIdle = false)
        {
            var idle = 0;
            while (await _store.NextWakeAsync() is { } next && next <= target)
            {
                var before = clock.GetUtcNow();
                clock.MoveTo(next);
                var fired = await _timers.RunDueOnceAsync();
                await SettleAsync();
                idle = fired == 0 && clock.GetUtcNow() == before ? idle + 1 : 0;
                if (idle > MaxIdleWakes)
                {
                    return $"a journey instance due at {next:u} does not advance (see the log above); the simulation stops";
                }
            }

            if (!stopWhenIdle)
            {
                clock.MoveTo(target);
                await SettleAsync();
            }

            return null;
        }
    }
}

/// <summary>A step the engine put off (quiet hours, a frequency cap), as the simulation saw it at <see cref="Seen"/>.</summary>
internal sealed record Deferral(DateTimeOffset Seen, string Customer, string Journey, string Step, string Why, DateTimeOffset Until);

/// <summary>A clock that stands still until the simulation moves it forward.</summary>
public sealed class SimulationClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    /// <summary>Moves the clock to <paramref name="t"/>; never backwards.</summary>
    public void MoveTo(DateTimeOffset t)
    {
        if (t.UtcTicks > Interlocked.Read(ref _ticks))
        {
            Interlocked.Exchange(ref _ticks, t.UtcTicks);
        }
    }
}

/// <summary>The simulation's printed timeline, read back from the store once the clock has run.</summary>
internal static class Timeline
{
    public static async Task<(IReadOnlyList<string> Entries, string Summary)> BuildAsync(IStore store, Scenario scenario, DateTimeOffset start, IEnumerable<Deferral> deferrals)
    {
        var rows = new List<(DateTimeOffset At, int Order, int Seq, string Who, string What)>();
        var seq = 0;
        void Add(DateTimeOffset at, int order, string who, string what) => rows.Add((at, order, seq++, who, what));

        foreach (var s in scenario.Steps)
        {
            Add(start + s.At, 0, s.Customer, s.Summary);
        }

        int sent = 0, notSent = 0, entered = 0;
        var byChannel = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var ends = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var customer in scenario.Steps.Select(s => s.Customer).Distinct(StringComparer.Ordinal))
        {
            if (await store.ResolveAsync(new Identifier(IdentifierKind.Id, customer)) is not { } key)
            {
                continue;
            }

            foreach (var i in await store.GetInstancesAsync(key))
            {
                entered++;
                Add(i.StartedAt, 1, customer, $"entered {i.JourneyId} (trigger {i.Trigger.Name})" + (i.Holdout ? ", in the holdout group: no messages" : ""));

                if (i.ConvertedAt is { } c)
                {
                    Add(c, 3, customer, $"converted: {i.JourneyId}'s goal reached");
                }

                if (i.EndedAt is { } e)
                {
                    var reason = i.EndReason ?? i.Status.ToString().ToLowerInvariant();
                    ends[reason] = ends.GetValueOrDefault(reason) + 1;
                    Add(e, 4, customer, $"left {i.JourneyId}: {reason}");
                }
            }

            foreach (var m in await store.GetMessagesAsync(key, 1000))
            {
                var channel = m.Channel.ToString().ToLowerInvariant();
                var went = m.SentAt is not null;
                if (went)
                {
                    sent++;
                    byChannel[channel] = byChannel.GetValueOrDefault(channel) + 1;
                }
                else
                {
                    notSent++;
                }

                var status = m.Status + (m.Reason is { } r ? $" ({r})" : "");
                Add(m.SentAt ?? m.CreatedAt, 2, customer, $"{channel} {status}{To(m)}: {Content(m)}  [{m.JourneyId}/{m.StepId}]");
            }
        }

        foreach (var d in deferrals)
        {
            Add(d.Seen, 2, d.Customer, string.Create(CultureInfo.InvariantCulture,
                $"{d.Journey}/{d.Step} deferred: {d.Why.Replace('_', ' ')} until {d.Until:ddd HH:mm} UTC"));
        }

        var entries = rows.OrderBy(r => r.At).ThenBy(r => r.Order).ThenBy(r => r.Seq)
            .Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.At:ddd HH:mm} UTC  {Elapsed(r.At - start),8}  {r.Who}  {r.What}"))
            .ToList();
        var channels = byChannel.Count == 0 ? "" : " (" + string.Join(", ", byChannel.Select(kv => $"{kv.Key} {kv.Value}")) + ")";
        var endText = ends.Count == 0 ? "" : "; ended: " + string.Join(", ", ends.Select(kv => $"{kv.Key} {kv.Value}"));
        var summary = $"{NudgeServer.Count(sent, "message", "messages")} sent{channels}, {notSent} not sent; "
            + $"{NudgeServer.Count(entered, "journey entry", "journey entries")}{endText}.";
        return (entries, summary);
    }

    /// <summary>Time since the start as +h:mm (hours count on past a day, so the gaps between lines read at a glance).</summary>
    private static string Elapsed(TimeSpan t) => $"+{(int)t.TotalHours}:{t.Minutes:00}";

    private static string To(Message m)
    {
        if (m.Recipients.Count == 0)
        {
            return "";
        }

        var who = m.Channel == Channel.Push
            ? string.Join(", ", m.Recipients.Select((r, n) => (n < m.Platforms.Count ? m.Platforms[n] + " " : "") + Device.TokenTailOf(r)))
            : string.Join(", ", m.Recipients);
        return " to " + who;
    }

    private static string Content(Message m)
    {
        string? Field(string name) => m.Content[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        var text = m.Channel switch
        {
            Channel.Push => Quote(Field("title")) + " " + Quote(Field("body")),
            Channel.Sms => Quote(Field("body")),
            Channel.Email => Quote(Field("subject")),
            _ => "",
        };
        return text.Trim();
    }

    private static string Quote(string? s) => s is null ? "" : "\"" + s.ReplaceLineEndings(" ") + "\"";
}
