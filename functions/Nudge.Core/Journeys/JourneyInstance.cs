using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Nudge.Core.Journeys;

public enum InstanceStatus
{
    /// <summary>Scheduled to start at <see cref="JourneyInstance.WakeAt"/> (date and inactivity triggers).</summary>
    Pending,
    Active,
    Completed,
    Exited,
    Converted,
}

/// <summary>
/// One person's walk through one journey (one document per journey, person and entry). The engine changes it only
/// through the journey engine; <see cref="Version"/> guards concurrent writers.
/// </summary>
public sealed class JourneyInstance
{
    /// <summary>{journey id}:{profile key}:{entry}; stable, so retried starts are idempotent.</summary>
    public required string Id { get; init; }

    public required string JourneyId { get; init; }

    public required int JourneyVersion { get; set; }

    public required string ProfileKey { get; set; }

    public required int Entry { get; init; }

    public InstanceStatus Status { get; set; } = InstanceStatus.Active;

    public bool Holdout { get; set; }

    /// <summary>The step being executed or waited on; null before the first step and after the last.</summary>
    public string? CurrentStep { get; set; }

    /// <summary>
    /// When the person reached the current step: the time of the run that entered it, which is when a late timer actually
    /// ran, not when it was due, so the step's delay or wait-for timeout counts in full from there.
    /// </summary>
    public DateTimeOffset StepEnteredAt { get; set; }

    /// <summary>When a timer must advance this instance; indexed by the store for the timer sweep.</summary>
    public DateTimeOffset? WakeAt { get; set; }

    /// <summary>The event that started the instance (name, id, timestamp, data) for templates, matches and conditions.</summary>
    public required TriggerSnapshot Trigger { get; init; }

    /// <summary>Per step id: what happened there (send outcome, wait outcome, branch taken).</summary>
    public Dictionary<string, JsonObject> StepResults { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How many times each step was entered; part of every message id, so a loop does not collide.</summary>
    public Dictionary<string, int> StepVisits { get; set; } = new(StringComparer.Ordinal);

    public DateTimeOffset StartedAt { get; set; }

    public DateTimeOffset? EndedAt { get; set; }

    public string? EndReason { get; set; }

    public DateTimeOffset? ConvertedAt { get; set; }

    /// <summary>When the last message of this instance was created; goal windows count from it.</summary>
    public DateTimeOffset? LastMessageAt { get; set; }

    [JsonIgnore]
    public long Version { get; set; }

    [JsonIgnore]
    public bool IsOpen => Status is InstanceStatus.Active or InstanceStatus.Pending;
}

/// <summary>The trigger event as the instance remembers it.</summary>
public sealed record TriggerSnapshot(string Name, string EventId, DateTimeOffset Timestamp, JsonObject Data);
