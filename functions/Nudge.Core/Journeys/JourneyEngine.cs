using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;

namespace Nudge.Core.Journeys;

/// <summary>An event as the engine sees it.</summary>
public sealed record EventSnapshot(string Name, string EventId, DateTimeOffset Timestamp, JsonObject Data);

/// <summary>What moves an instance: its start, its timer, or an event of its person.</summary>
public abstract record EngineInput
{
    public static readonly EngineInput Start = new StartInput();
    public static readonly EngineInput Timer = new TimerInput();

    private sealed record StartInput : EngineInput;

    private sealed record TimerInput : EngineInput;
}

public sealed record EventInput(EventSnapshot Event) : EngineInput;

/// <summary>
/// Everything a run may read besides the instance: the person, their devices, their recent sends (for caps), their
/// events since the instance started (for exits that arrived during a wait), and the time.
/// </summary>
public sealed record EngineContext(
    Profile Profile,
    IReadOnlyList<Device> Devices,
    IReadOnlyList<SendRecord> SendHistory,
    IReadOnlyList<EventSnapshot> EventsSinceStart,
    DateTimeOffset Now);

/// <summary>What a run produced besides the changed instance.</summary>
public sealed class RunResult
{
    public List<Message> Messages { get; } = [];

    /// <summary>Attribute updates made by update steps, to apply at <see cref="EngineContext.Now"/>.</summary>
    public JsonObject AttributeUpdates { get; } = [];

    /// <summary>Set when the goal was reached: the caller marks the instance's delivered messages converted.</summary>
    public DateTimeOffset? ConvertedAt { get; set; }

    public bool Changed { get; set; }
}

/// <summary>Engine settings: caps, schedule (time zones and quiet hours).</summary>
public sealed record EngineOptions(FrequencyCaps Caps, Schedule Schedule)
{
    /// <summary>Most steps one run may execute; a branch loop past it ends the instance: 64.</summary>
    public int MaxStepsPerRun { get; init; } = 64;
}

/// <summary>
/// The journey engine: pure and deterministic given (definition, instance, context, input). It never reads the clock
/// or storage; the pipeline loads the context, runs it, and stores the instance, messages and attribute updates.
/// Message ids derive from (instance, step, visit), so re-running a step after a crash yields the same message.
/// </summary>
public sealed partial class JourneyEngine(EngineOptions options, Templates templates)
{
    public EngineOptions Options { get; } = options;

    /// <summary>Why a trigger did not start a journey, or null when it may start.</summary>
    public static string? CannotStart(JourneyDefinition j, Profile p, IReadOnlyList<JourneyInstance> previous, DateTimeOffset eventTime, DateTimeOffset now)
    {
        if (p.Suppressed)
        {
            return "suppressed";
        }

        var test = p.Consent.TestProfile;
        if (test != j.Testing)
        {
            return test ? "test_profile_in_live_journey" : "live_profile_in_test_journey";
        }

        if (now - eventTime > j.MaxEventAge)
        {
            return "event_too_old";
        }

        if (!j.AllowConcurrent && previous.Any(i => i.IsOpen))
        {
            return "already_active";
        }

        return j.Reentry switch
        {
            ReentryPolicy.Once when previous.Count > 0 => "entered_before",
            ReentryPolicy.OncePerPeriod when previous.Any(i => i.StartedAt > now - j.ReentryPeriod) => "entered_within_period",
            _ => null,
        };
    }

    /// <summary>A new instance (not yet run). The entry number follows the person's previous entries.</summary>
    public static JourneyInstance NewInstance(JourneyDefinition j, string profileKey, IReadOnlyList<JourneyInstance> previous, TriggerSnapshot trigger, DateTimeOffset at, InstanceStatus status = InstanceStatus.Active)
    {
        var entry = previous.Count == 0 ? 1 : previous.Max(i => i.Entry) + 1;
        return new JourneyInstance
        {
            Id = $"{j.Id}:{profileKey}:{entry}",
            JourneyId = j.Id,
            JourneyVersion = j.Version,
            ProfileKey = profileKey,
            Entry = entry,
            Status = status,
            Holdout = InHoldout(j, profileKey),
            Trigger = trigger,
            StartedAt = at,
            StepEnteredAt = at,
            WakeAt = status == InstanceStatus.Pending ? at : null,
        };
    }

    /// <summary>Deterministic per (journey, person): the same person is always in or out of a journey's holdout.</summary>
    public static bool InHoldout(JourneyDefinition j, string profileKey)
    {
        if (j.HoldoutPercent <= 0)
        {
            return false;
        }

        var h = SHA256.HashData(Encoding.UTF8.GetBytes($"holdout\n{j.Id}\n{profileKey}"));
        var bucket = BitConverter.ToUInt32(h, 0) % 10_000;
        return bucket < j.HoldoutPercent * 100;
    }

    public static string MessageId(JourneyInstance i, string stepId, int visit)
    {
        var h = SHA256.HashData(Encoding.UTF8.GetBytes($"{i.Id}\n{stepId}\n{visit}"));
        return $"{i.ProfileKey}-{Convert.ToHexStringLower(h.AsSpan(0, 10))}";
    }

    public static bool RuleMatches(EventRule r, EventSnapshot e, JourneyInstance i, Profile p) =>
        r.Event == e.Name
        && Conditions.Matches(r.Match, e.Data, i.Trigger.Data)
        && Conditions.All(r.Where, new ConditionScope(e.Data, i.Trigger.Data, p, i.StepResults));

    /// <summary>True when an event could still convert a finished instance (goal window still open).</summary>
    public static bool CanStillConvert(JourneyDefinition j, JourneyInstance i, DateTimeOffset eventTime) =>
        i.Status is InstanceStatus.Completed or InstanceStatus.Exited && i.ConvertedAt is null && j.Goal is { } g
        && eventTime >= EventsCountFrom(j, i) && eventTime - (i.LastMessageAt ?? i.StartedAt) <= g.Within;

    /// <summary>
    /// Events with a timestamp at or after this can end or convert the instance; earlier ones (a purchase from before the
    /// cart entered the journey, delivered late) cannot. For an event-triggered journey it is the trigger event's time
    /// when that is earlier than the start: the instance starts when its trigger is processed, which after a queue
    /// backlog or a crash is later than events the person sent after the trigger (a purchase right after add_to_cart,
    /// still queued), and those must end it. Other triggers (dates, inactivity) count from the start.
    /// </summary>
    public static DateTimeOffset EventsCountFrom(JourneyDefinition j, JourneyInstance i) =>
        j.Trigger is EventTrigger && i.Trigger.Timestamp < i.StartedAt ? i.Trigger.Timestamp : i.StartedAt;

    /// <summary>Moves the instance as far as it can go for this input; changes <paramref name="i"/> in place.</summary>
    public RunResult Run(JourneyDefinition j, JourneyInstance i, EngineContext ctx, EngineInput input)
    {
        var run = new Walk(this, j, i, ctx);
        run.Go(input);
        return run.Result;
    }

    private sealed class Walk(JourneyEngine engine, JourneyDefinition j, JourneyInstance i, EngineContext ctx)
    {
        private readonly List<SendRecord> _history = [.. ctx.SendHistory];

        public RunResult Result { get; } = new();

        public void Go(EngineInput input)
        {
            if (i.Status != InstanceStatus.Active)
            {
                // A finished instance still converts: the goal window runs from its last message, not its last step.
                if (input is EventInput { Event: var late } && i.Status is InstanceStatus.Completed or InstanceStatus.Exited)
                {
                    CheckGoal(late);
                }

                return;
            }

            switch (input)
            {
                case EventInput { Event: var e }:
                    OnEvent(e);
                    break;
                case var _ when input == EngineInput.Start:
                    Result.Changed = true;

                    // A scheduled start that runs late keeps StartedAt at its due time (exit and goal windows, re-entry
                    // count from it), but its first step is reached now.
                    Goto(j.Steps[0].Id);
                    Execute();
                    break;
                default:
                    OnTimer();
                    break;
            }
        }

        private void OnEvent(EventSnapshot e)
        {
            // The goal first: a purchase that is both goal and exit converts the instance rather than just ending it.
            if (CheckGoal(e))
            {
                return;
            }

            // An event from before the instance began (sent late, or replayed) cannot end it.
            if (e.Timestamp >= EventsCountFrom(j, i) && j.Exits.FirstOrDefault(r => RuleMatches(r, e, i, ctx.Profile)) is { } exit)
            {
                End(InstanceStatus.Exited, "exit_event:" + exit.Event);
                return;
            }

            if (i.CurrentStep is { } id && j.Find(id) is WaitForStep w && RuleMatches(w.Rule, e, i, ctx.Profile))
            {
                Result.Changed = true;
                var until = i.StepEnteredAt + w.Timeout;
                if (e.Timestamp > until)
                {
                    // The wait had already timed out when the event happened; a late timer must not change the outcome.
                    // The timeout branch is reached only now, though, so its delays count from now.
                    i.StepResults[w.Id] = new JsonObject { ["outcome"] = "timeout", ["at"] = until };
                    Goto(w.OnTimeout ?? j.NextOf(w));
                }
                else
                {
                    i.StepResults[w.Id] = new JsonObject { ["outcome"] = "event", ["event_id"] = e.EventId, ["at"] = ctx.Now };
                    Goto(w.OnEvent ?? j.NextOf(w));
                }

                Execute();
            }
        }

        /// <summary>True when the goal ended the instance.</summary>
        private bool CheckGoal(EventSnapshot e)
        {
            if (j.Goal is not { } g || i.ConvertedAt is not null || e.Timestamp < EventsCountFrom(j, i) || !RuleMatches(g.Rule, e, i, ctx.Profile))
            {
                return false;
            }

            var anchor = i.LastMessageAt ?? i.StartedAt;
            if (e.Timestamp - anchor > g.Within)
            {
                return false;
            }

            Result.Changed = true;
            i.ConvertedAt = e.Timestamp;
            Result.ConvertedAt = e.Timestamp;
            if (i.Status != InstanceStatus.Active)
            {
                i.Status = InstanceStatus.Converted;
                return true;
            }

            if (g.ExitOnConversion)
            {
                End(InstanceStatus.Converted, "goal:" + g.Rule.Event);
                return true;
            }

            return false;
        }

        private void OnTimer()
        {
            if (i.WakeAt is not { } wake || wake > ctx.Now)
            {
                return; // a stale or early timer: nothing is due
            }

            Result.Changed = true;

            // An exit that arrived while the instance waited stops it before anything else happens.
            // The trigger event itself is not one of them (it started the instance; it never ends it).
            var from = EventsCountFrom(j, i);
            foreach (var e in ctx.EventsSinceStart.Where(e => e.Timestamp >= from && e.EventId != i.Trigger.EventId).OrderBy(e => e.Timestamp))
            {
                if (CheckGoal(e))
                {
                    return;
                }

                if (j.Exits.FirstOrDefault(r => RuleMatches(r, e, i, ctx.Profile)) is { } exit)
                {
                    End(InstanceStatus.Exited, "exit_event:" + exit.Event);
                    return;
                }
            }

            // The next step is reached now, not at the timer's due time: after an outage the delays that follow still
            // run in full (as a Durable timer created after a late one counts from the orchestration's current time),
            // so a late push is not followed at once by the SMS meant to come 20 hours after it.
            var step = i.CurrentStep is null ? null : j.Find(i.CurrentStep);
            i.WakeAt = null;
            switch (step)
            {
                case DelayStep or DelayUntilStep:
                    Goto(j.NextOf(step));
                    break;
                case WaitForStep w:
                    i.StepResults[w.Id] = new JsonObject { ["outcome"] = "timeout", ["at"] = wake };
                    Goto(w.OnTimeout ?? j.NextOf(w));
                    break;
                case SendStep:
                    // A deferred send runs again now; the steps after it count from when it actually went out,
                    // so a deferred push never lands after the email that was meant to follow it.
                    i.StepEnteredAt = ctx.Now;
                    break;
                default:
                    break;
            }

            Execute();
        }

        private void Execute()
        {
            for (var n = 0; n < engine.Options.MaxStepsPerRun; n++)
            {
                if (i.Status != InstanceStatus.Active)
                {
                    return;
                }

                if (i.CurrentStep is null)
                {
                    End(InstanceStatus.Completed, "completed");
                    return;
                }

                var step = j.Find(i.CurrentStep);
                if (step is null)
                {
                    End(InstanceStatus.Exited, "step_removed_from_journey");
                    return;
                }

                if (!Step(step))
                {
                    return; // waiting
                }
            }

            End(InstanceStatus.Exited, "step_limit");
        }

        /// <summary>Executes one step; false when the instance now waits.</summary>
        private bool Step(Step step)
        {
            // When the person reached this step: this run's now, or an earlier run's now for a step waited on since.
            var at = i.StepEnteredAt;
            switch (step)
            {
                case DelayStep d:
                    return WaitOrGo(at + d.Duration, j.NextOf(d));
                case DelayUntilStep u:
                    return WaitOrGo(Schedule.NextLocal(at, engine.Options.Schedule.ZoneOf(ctx.Profile), u.LocalTime, u.Days), j.NextOf(u));
                case WaitForStep w:
                    {
                        var until = at + w.Timeout;
                        if (until > ctx.Now)
                        {
                            i.WakeAt = until;
                            return false;
                        }

                        i.StepResults[w.Id] = new JsonObject { ["outcome"] = "timeout", ["at"] = until };
                        Goto(w.OnTimeout ?? j.NextOf(w));
                        return true;
                    }

                case BranchStep b:
                    {
                        var ok = Conditions.All(b.If, Scope());
                        i.StepResults[b.Id] = new JsonObject { ["branch"] = ok ? "then" : "else" };
                        Goto((ok ? b.Then : b.Else) ?? j.NextOf(b));
                        return true;
                    }

                case UpdateStep u:
                    Update(u);
                    Goto(j.NextOf(u));
                    return true;
                case ExitStep:
                    End(InstanceStatus.Exited, "exit_step");
                    return false;
                case SendStep s:
                    if (Send(s) is { } deferUntil)
                    {
                        i.WakeAt = deferUntil;
                        return false;
                    }

                    Goto(j.NextOf(s));
                    return true;
                default:
                    throw new InvalidOperationException($"unknown step type {step.GetType().Name}");
            }
        }

        private bool WaitOrGo(DateTimeOffset until, string? next)
        {
            if (until > ctx.Now)
            {
                i.WakeAt = until;
                return false;
            }

            Goto(next);
            return true;
        }

        private void Update(UpdateStep u)
        {
            var model = Model();
            var errors = new JsonObject();
            foreach (var (name, value) in u.Attributes)
            {
                if (value is JsonValue v && v.TryGetValue<string>(out var text) && text.Contains("{{", StringComparison.Ordinal))
                {
                    var (rendered, error) = engine.Templates.Render(text, model);
                    if (error is not null)
                    {
                        errors[name] = error;
                        continue;
                    }

                    Result.AttributeUpdates[name] = rendered;
                }
                else
                {
                    Result.AttributeUpdates[name] = value?.DeepClone();
                }
            }

            i.StepResults[u.Id] = errors.Count == 0 ? new JsonObject { ["updated"] = u.Attributes.Count } : new JsonObject { ["errors"] = errors };
        }

        /// <summary>Creates the step's message (or records why none goes); returns a time to retry when deferred.</summary>
        private DateTimeOffset? Send(SendStep s)
        {
            var visit = i.StepVisits.GetValueOrDefault(s.Id, 1);
            var id = MessageId(i, s.Id, visit);
            var p = ctx.Profile;
            if (p.Suppressed)
            {
                Record(s, id, s.Channels[0], MessageStatus.Undeliverable, MessageReason.Suppressed, null, [], [], []);
                return null;
            }

            var passedOver = new JsonObject();
            Channel? chosen = null;
            List<string> recipients = [];
            List<string> platforms = [];
            foreach (var ch in s.Channels)
            {
                var (reason, to, plats) = Eligibility(ch, s.Devices);
                if (reason is null)
                {
                    (chosen, recipients, platforms) = (ch, to, plats);
                    break;
                }

                passedOver[Name(ch)] = reason;
            }

            if (chosen is not { } channel)
            {
                Record(s, id, s.Channels[0], MessageStatus.Undeliverable, (string)passedOver[Name(s.Channels[0])]!, null, [], [], passedOver);
                return null;
            }

            if (i.Holdout)
            {
                Record(s, id, channel, MessageStatus.Undeliverable, MessageReason.Holdout, null, recipients, platforms, passedOver);
                return null;
            }

            if (!j.Transactional)
            {
                var quiet = s.QuietHours == QuietHoursMode.Default
                    ? (channel == Channel.Email ? QuietHoursMode.Ignore : QuietHoursMode.Defer)
                    : s.QuietHours;
                if (quiet != QuietHoursMode.Ignore && engine.Options.Schedule.QuietUntil(ctx.Now, p) is { } quietEnd)
                {
                    if (quiet == QuietHoursMode.Defer)
                    {
                        i.StepResults[s.Id] = new JsonObject { ["deferred"] = MessageReason.QuietHours, ["until"] = quietEnd };
                        return quietEnd;
                    }

                    Record(s, id, channel, MessageStatus.Undeliverable, MessageReason.QuietHours, null, recipients, platforms, passedOver);
                    return null;
                }

                var capped = engine.Options.Caps.Check(channel, j.Priority, ctx.Now, _history);
                if (capped is null && j.Caps.Count > 0)
                {
                    // The journey's own caps count only its own sends, whatever their priority.
                    capped = new FrequencyCaps(j.Caps).Check(channel, int.MinValue, ctx.Now, _history.Where(h => h.JourneyId == j.Id));
                }

                if (capped is { } blocked)
                {
                    if (s.Caps == CapMode.Defer)
                    {
                        i.StepResults[s.Id] = new JsonObject { ["deferred"] = MessageReason.FrequencyCapped, ["until"] = blocked.Until };
                        return blocked.Until;
                    }

                    Record(s, id, channel, MessageStatus.Undeliverable, MessageReason.FrequencyCapped, null, recipients, platforms, passedOver);
                    return null;
                }
            }

            var (content, error) = engine.Templates.RenderAll(s.Templates[channel].Fields, Model());
            if (error is not null)
            {
                var failed = Record(s, id, channel, MessageStatus.Failed, MessageReason.RenderError, null, recipients, platforms, passedOver);
                failed.Content = new JsonObject { ["error"] = error };
                return null;
            }

            var drafted = Record(s, id, channel, MessageStatus.Drafted, null, content, recipients, platforms, passedOver);
            drafted.Fallbacks = Fallbacks(s, channel);
            _history.Add(new SendRecord(channel, ctx.Now, j.Priority, j.Transactional, j.Id));
            i.LastMessageAt = ctx.Now;
            return null;
        }

        /// <summary>
        /// The channels after <paramref name="chosen"/> in the chain that the person can receive, rendered now, so the send
        /// stage can fall back when the chosen channel turns out undeliverable (every push token bounced).
        /// </summary>
        private List<FallbackDraft> Fallbacks(SendStep s, Channel chosen)
        {
            var list = new List<FallbackDraft>();
            foreach (var ch in s.Channels.SkipWhile(c => c != chosen).Skip(1))
            {
                var (reason, to, plats) = Eligibility(ch, s.Devices);
                if (reason is null && engine.Templates.RenderAll(s.Templates[ch].Fields, Model()) is ({ } content, null))
                {
                    list.Add(new FallbackDraft(ch, content, to, plats));
                }
            }

            return list;
        }

        private (string? Reason, List<string> To, List<string> Platforms) Eligibility(Channel ch, DeviceTargeting targeting)
        {
            var p = ctx.Profile;
            var consent = p.Consent;
            switch (ch)
            {
                case Channel.Push:
                    {
                        if (consent.PushOptIn == false)
                        {
                            return (MessageReason.ConsentMissing, [], []);
                        }

                        var devices = ctx.Devices.Where(d => d.PushEnabled).OrderByDescending(d => d.LastUsed).ThenBy(d => d.Token, StringComparer.Ordinal).ToList();
                        devices = targeting switch
                        {
                            DeviceTargeting.LastUsed => devices.Take(1).ToList(),
                            DeviceTargeting.Ios => devices.Where(d => d.Platform == Platforms.Ios).ToList(),
                            DeviceTargeting.Android => devices.Where(d => d.Platform == Platforms.Android).ToList(),
                            _ => devices,
                        };
                        return devices.Count == 0
                            ? (MessageReason.NoDevice, [], [])
                            : (null, devices.Select(d => d.Token).ToList(), devices.Select(d => d.Platform).ToList());
                    }

                case Channel.Sms:
                    return consent.SmsConsent == true && consent.SmsPhone is { } phone && E164().IsMatch(phone)
                        ? (null, [phone], [])
                        : (MessageReason.ConsentMissing, [], []);
                default:
                    return p.Email is { } email && !consent.EmailUnsubscribed
                        ? (null, [email], [])
                        : (MessageReason.ConsentMissing, [], []);
            }
        }

        private Message Record(SendStep s, string id, Channel ch, string status, string? reason, JsonObject? content, List<string> to, List<string> platforms, JsonObject passedOver)
        {
            var m = new Message
            {
                Id = id,
                ProfileKey = i.ProfileKey,
                InstanceId = i.Id,
                JourneyId = j.Id,
                StepId = s.Id,
                Channel = ch,
                Status = status,
                Reason = reason,
                Content = content ?? [],
                Recipients = to,
                Platforms = platforms,
                Holdout = i.Holdout,
                Priority = j.Priority,
                Transactional = j.Transactional,
                Ready = status == MessageStatus.Drafted,
                CreatedAt = ctx.Now,
                History = [new StatusChange(status, ctx.Now, reason)],
                FallbackReasons = passedOver,
            };
            Result.Messages.Add(m);
            i.StepResults[s.Id] = new JsonObject { ["message_id"] = id, ["channel"] = Name(ch), ["status"] = status, ["reason"] = reason };
            return m;
        }

        private ConditionScope Scope() => new(null, i.Trigger.Data, ctx.Profile, i.StepResults);

        private JsonObject Model()
        {
            var p = ctx.Profile;
            var customer = new JsonObject();
            foreach (var (k, v) in p.LiveAttributes())
            {
                customer[k] = v.DeepClone();
            }

            customer["id"] = p.Id;
            customer["email"] = p.Email;
            customer["cio_id"] = Identifier.CioPrefix + p.Key;
            var ev = (JsonObject)i.Trigger.Data.DeepClone();
            return new JsonObject
            {
                ["customer"] = customer,
                ["event"] = ev,
                ["event_name"] = i.Trigger.Name,
                ["journey"] = new JsonObject { ["id"] = j.Id, ["name"] = j.Name, ["version"] = j.Version, ["step"] = i.CurrentStep },
            };
        }

        /// <summary>
        /// Enters a step now: every step an evaluation reaches is reached at its <see cref="EngineContext.Now"/>, so a delay
        /// counts from the moment the person actually gets to it, however late the timer that brought them there ran.
        /// </summary>
        private void Goto(string? stepId)
        {
            i.CurrentStep = stepId is null or JourneyLoader.End ? null : stepId;
            i.StepEnteredAt = ctx.Now;
            i.WakeAt = null;
            if (i.CurrentStep is { } s)
            {
                i.StepVisits[s] = i.StepVisits.GetValueOrDefault(s) + 1;
            }
        }

        private void End(InstanceStatus status, string reason)
        {
            Result.Changed = true;
            i.Status = status;
            i.EndReason = reason;
            i.EndedAt = ctx.Now;
            i.WakeAt = null;
        }

        private static string Name(Channel c) => c.ToString().ToLowerInvariant();
    }

    internal Templates Templates { get; } = templates;

    [System.Text.RegularExpressions.GeneratedRegex(@"^\+[1-9]\d{6,14}$")]
    private static partial System.Text.RegularExpressions.Regex E164();
}
