using System.Text.Json.Serialization;

namespace Nudge.Cosmos;

/// <summary>Values of <see cref="PersonDoc{T}.Type"/>: what a document in a person's partition holds.</summary>
internal static class DocType
{
    public const string Profile = "profile";
    public const string Device = "device";
    public const string Event = "event";
    public const string Instance = "instance";
    public const string Message = "message";
    public const string Outbox = "outbox";
}

/// <summary>
/// A document in the people container: the stored object under <see cref="Doc"/>, serialised with
/// <see cref="Core.Storage.StoreJson.Options"/> exactly as every store keeps it, and beside it the few fields the store
/// filters and sorts on (times in Unix milliseconds). Only the fields of its <see cref="Type"/> are set.
/// </summary>
internal sealed record PersonDoc<T>
{
    public required string Id { get; init; }

    /// <summary>The profile key (or <see cref="CosmosIds.Unattached"/> for events of nobody).</summary>
    public required string Pk { get; init; }

    public required string Type { get; init; }

    /// <summary>The object's own id (token, event, instance, message id), for sorting by it as the SQLite store does.</summary>
    public string? Key { get; init; }

    /// <summary>Profiles and instances: optimistic-concurrency version (the objects do not serialise it).</summary>
    public long? Version { get; init; }

    /// <summary>Events: timestamp, and the order appended (ties on the timestamp are broken by it).</summary>
    public long? Ts { get; init; }

    public long? Seq { get; init; }

    /// <summary>Messages: created at, and when the send stage is due to handle it (0: nothing to do).</summary>
    public long? CreatedAt { get; init; }

    public long? Ready { get; init; }

    /// <summary>
    /// Messages: what the message log filters on (journey, step, channel, current status and reason, the recipients'
    /// platforms), beside the unindexed document and rewritten with it on every write.
    /// </summary>
    public string? JourneyId { get; init; }

    public string? StepId { get; init; }

    public string? Channel { get; init; }

    public string? Status { get; init; }

    public string? Reason { get; init; }

    public List<string>? Platforms { get; init; }

    /// <summary>Instances: when a timer must advance it.</summary>
    public long? WakeAt { get; init; }

    /// <summary>Outbox entries: when recorded.</summary>
    public long? RecordedAt { get; init; }

    /// <summary>
    /// Profiles: the person's phone numbers (sms_phone and phone, E.164), beside the unindexed document so that an
    /// inbound SMS finds its sender with an indexed query.
    /// </summary>
    public List<string>? Phones { get; init; }

    /// <summary>Instances and messages that are due at some time: the timer entry that makes the sweep find them.</summary>
    public TimerRef? Timer { get; init; }

    public required T Doc { get; init; }

    [JsonPropertyName("_etag")]
    public string? ETag { get; init; }
}

/// <summary>Where a timer entry is: its id and bucket.</summary>
internal sealed record TimerRef(string Id, string Pk);

/// <summary>
/// An identifier claimed by a profile (container identifiers, pk = id). It resolves to <see cref="ProfileKey"/> only
/// while that profile lists it; <see cref="ClaimedAt"/> (the writer's clock, Unix ms) tells a claim in progress from one
/// left by a crash.
/// </summary>
internal sealed record IdentifierDoc
{
    public required string Id { get; init; }

    public required string Pk { get; init; }

    public required string Kind { get; init; }

    public required string Value { get; init; }

    public required string ProfileKey { get; init; }

    public long ClaimedAt { get; init; }

    /// <summary>Set when an identity merge handed the identifier over: the merged-away profile it came from.</summary>
    public string? TakenFrom { get; init; }

    [JsonPropertyName("_etag")]
    public string? ETag { get; init; }
}

/// <summary>
/// A push token (container tokens, pk = id): who has it now (the one source of truth for that) and its physical device
/// id, and when it last bounced. Kept without an owner while only the bounce is worth remembering.
/// </summary>
internal sealed record TokenDoc
{
    public required string Id { get; init; }

    public required string Pk { get; init; }

    public required string Token { get; init; }

    public string? ProfileKey { get; init; }

    public string? DeviceId { get; init; }

    public long? BouncedAt { get; init; }

    public string? BounceDetail { get; init; }

    [JsonPropertyName("_etag")]
    public string? ETag { get; init; }
}

/// <summary>
/// One scheduled wake-up (container timers, pk = hour bucket of <see cref="Due"/>): the instance or message
/// <see cref="Target"/> of <see cref="ProfileKey"/> is due at <see cref="Due"/>. It counts only while the target's
/// document names this entry in its <see cref="PersonDoc{T}.Timer"/>.
/// </summary>
internal sealed record TimerDoc
{
    public required string Id { get; init; }

    public required string Pk { get; init; }

    /// <summary><see cref="DocType.Instance"/> or <see cref="DocType.Message"/>.</summary>
    public required string Kind { get; init; }

    public required long Due { get; init; }

    public required string Target { get; init; }

    public required string ProfileKey { get; init; }

    /// <summary>When the entry was written (the writer's clock, Unix ms).</summary>
    public long WrittenAt { get; init; }

    [JsonPropertyName("_etag")]
    public string? ETag { get; init; }
}

/// <summary>Which person's partition holds a message or journey instance (container lookups, pk = id).</summary>
internal sealed record LookupDoc
{
    public required string Id { get; init; }

    public required string Pk { get; init; }

    public required string ProfileKey { get; init; }
}

/// <summary>An idempotency key of work done (container processed, pk = id).</summary>
internal sealed record ProcessedDoc
{
    public required string Id { get; init; }

    public required string Pk { get; init; }

    public required string Key { get; init; }

    public long At { get; init; }
}

/// <summary>A delivery event in the deliveryEvents container: pk is the UTC day of <see cref="At"/>; times in Unix ms.</summary>
internal sealed record DeliveryEventDoc
{
    public required string Id { get; init; }

    public required string Pk { get; init; }

    public required long At { get; init; }

    public required long RecordedAt { get; init; }

    public required Core.Messages.DeliveryEvent Doc { get; init; }
}

/// <summary>A named checkpoint (container lookups, pk = id = "checkpoint:" + name, escaped); <see cref="Version"/> counts writes.</summary>
internal sealed record CheckpointDoc
{
    public required string Id { get; init; }

    public required string Pk { get; init; }

    public required string Name { get; init; }

    public required string Value { get; init; }

    public long Version { get; init; }

    [JsonPropertyName("_etag")]
    public string? ETag { get; init; }
}
