using System.Text.Json.Nodes;

namespace Nudge.Core.Storage;

/// <summary>
/// An event kept on a person's timeline. <see cref="ProfileKey"/> is null for an event that belongs to nobody
/// (Track API /events without anonymous_id). <see cref="Type"/> is event, page, screen, group or system
/// (device and identity diagnostics Nudge records itself).
/// </summary>
public sealed record StoredEvent(
    string EventId,
    string? ProfileKey,
    string Name,
    string Type,
    DateTimeOffset Timestamp,
    DateTimeOffset ReceivedAt,
    string Source,
    JsonObject Data);
