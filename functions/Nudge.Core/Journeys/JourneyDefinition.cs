using System.Text.Json.Nodes;

namespace Nudge.Core.Journeys;

/// <summary>
/// A validated journey. Built only by <see cref="JourneyLoader"/>, so every step id is unique, every "next" names a
/// step that exists, and every duration is positive.
/// </summary>
public sealed class JourneyDefinition
{
    public required string Id { get; init; }

    public required int Version { get; init; }

    public required string Name { get; init; }

    /// <summary>The file it was loaded from, for error messages and the admin API.</summary>
    public required string SourceFile { get; init; }

    /// <summary>The line of <c>id:</c> in <see cref="SourceFile"/>, for errors about the id.</summary>
    public int IdLine { get; init; } = 1;

    public required Trigger Trigger { get; init; }

    /// <summary>Events older than this never start the journey (Customer.io: 72 h).</summary>
    public TimeSpan MaxEventAge { get; init; } = TimeSpan.FromHours(72);

    public ReentryPolicy Reentry { get; init; } = ReentryPolicy.EveryTime;

    /// <summary>With <see cref="ReentryPolicy.OncePerPeriod"/>: how long after an entry the person may enter again.</summary>
    public TimeSpan ReentryPeriod { get; init; }

    /// <summary>Allow more than one active instance per person (e.g. one per cart). Default: false.</summary>
    public bool AllowConcurrent { get; init; }

    public IReadOnlyList<EventRule> Exits { get; init; } = [];

    public GoalRule? Goal { get; init; }

    /// <summary>The names of the events this journey reacts to: its trigger or inactivity event, exits, goal and wait-for steps.</summary>
    public IEnumerable<string> EventNames()
    {
        var names = Trigger switch
        {
            EventTrigger t => t.Names,
            InactivityTrigger t => [t.Event],
            _ => [],
        };
        return names.Concat(Exits.Select(r => r.Event)).Concat(Goal is { } g ? [g.Rule.Event] : [])
            .Concat(Steps.OfType<WaitForStep>().Select(w => w.Rule.Event));
    }

    /// <summary>Share of entries held out (0..100), chosen deterministically per (journey, person).</summary>
    public double HoldoutPercent { get; init; }

    /// <summary>Higher wins when frequency caps force a choice (cart recovery above browse).</summary>
    public int Priority { get; init; }

    /// <summary>Caps on this journey's own sends (e.g. push:1/24h), on top of the global caps.</summary>
    public IReadOnlyList<CapRule> Caps { get; init; } = [];

    /// <summary>Transactional journeys are exempt from frequency caps and quiet hours.</summary>
    public bool Transactional { get; init; }

    /// <summary>Test profiles enter only journeys marked for testing; others never enter these.</summary>
    public bool Testing { get; init; }

    public required IReadOnlyList<Step> Steps { get; init; }

    public Step? Find(string id) => Steps.FirstOrDefault(s => s.Id == id);

    /// <summary>The step after <paramref name="step"/>: its explicit next, else the one below it, else null (journey complete).</summary>
    public string? NextOf(Step step)
    {
        if (step.Next is not null)
        {
            return step.Next;
        }

        var i = IndexOf(step.Id);
        return i + 1 < Steps.Count ? Steps[i + 1].Id : null;
    }

    public int IndexOf(string stepId)
    {
        for (var i = 0; i < Steps.Count; i++)
        {
            if (Steps[i].Id == stepId)
            {
                return i;
            }
        }

        return -1;
    }
}

public enum ReentryPolicy
{
    EveryTime,
    Once,
    OncePerPeriod,
}

/// <summary>What starts a journey.</summary>
public abstract record Trigger;

/// <summary>A tracked event with one of <paramref name="Names"/> whose conditions hold.</summary>
public sealed record EventTrigger(IReadOnlyList<string> Names, IReadOnlyList<Condition> Where) : Trigger;

/// <summary>A time relative to a date attribute (unix seconds or ISO text), e.g. 24 h before trial_end_at.</summary>
public sealed record DateTrigger(string Attribute, TimeSpan Offset, IReadOnlyList<Condition> Where) : Trigger;

/// <summary>No event named <paramref name="Event"/> for <paramref name="Period"/> after the person's last one.</summary>
public sealed record InactivityTrigger(string Event, TimeSpan Period, IReadOnlyList<Condition> Where) : Trigger;

/// <summary>
/// An event that matters to a running instance. <paramref name="Match"/> lists event data keys whose value must equal
/// the trigger event's value for the same key (same cart_id).
/// </summary>
public sealed record EventRule(string Event, IReadOnlyList<Condition> Where, IReadOnlyList<string> Match);

/// <summary>A conversion goal: the event within <paramref name="Within"/> of the message that preceded it.</summary>
public sealed record GoalRule(EventRule Rule, TimeSpan Within, bool ExitOnConversion);

public enum ConditionOp
{
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
    NotExists,
    In,
    Contains,
}

/// <summary>
/// A test on a value found by <paramref name="Path"/>: <c>event.x</c> (the event being evaluated), <c>trigger.x</c>
/// (the event that started the instance), <c>customer.x</c> (profile attributes; also customer.id, customer.email),
/// <c>steps.{id}.x</c> (step results).
/// </summary>
public sealed record Condition(string Path, ConditionOp Op, JsonNode? Value);

/// <summary>One step. <see cref="Next"/> null means "the step below, or complete".</summary>
public abstract record Step(string Id, string? Next);

public sealed record DelayStep(string Id, string? Next, TimeSpan Duration) : Step(Id, Next);

/// <summary>Waits until the next <paramref name="LocalTime"/> in the person's time zone (on one of <paramref name="Days"/>, if given).</summary>
public sealed record DelayUntilStep(string Id, string? Next, TimeOnly LocalTime, IReadOnlySet<DayOfWeek>? Days) : Step(Id, Next);

/// <summary>Waits for an event; goes to <paramref name="OnEvent"/> if it comes, <paramref name="OnTimeout"/> if not.</summary>
public sealed record WaitForStep(string Id, EventRule Rule, TimeSpan Timeout, string? OnEvent, string? OnTimeout) : Step(Id, null);

public sealed record BranchStep(string Id, IReadOnlyList<Condition> If, string? Then, string? Else) : Step(Id, null);

public sealed record UpdateStep(string Id, string? Next, JsonObject Attributes) : Step(Id, Next);

public sealed record ExitStep(string Id) : Step(Id, null);

public sealed record SendStep(
    string Id,
    string? Next,
    IReadOnlyList<Channel> Channels,
    IReadOnlyDictionary<Channel, MessageTemplate> Templates,
    DeviceTargeting Devices,
    QuietHoursMode QuietHours,
    CapMode Caps) : Step(Id, Next);

public enum Channel
{
    Push,
    Sms,
    Email,
}

public enum DeviceTargeting
{
    LastUsed,
    All,
    Ios,
    Android,
}

/// <summary>What a send does inside quiet hours: wait for the window to end, skip the message, or ignore quiet hours.</summary>
public enum QuietHoursMode
{
    Default,
    Defer,
    Skip,
    Ignore,
}

/// <summary>What a capped send does: record it undeliverable (frequency_capped), or defer until the cap allows.</summary>
public enum CapMode
{
    Drop,
    Defer,
}

/// <summary>Liquid templates for one channel. Push: title, body, deep_link, data. Email: subject, html, text. SMS: body.</summary>
public sealed record MessageTemplate(IReadOnlyDictionary<string, string> Fields);
