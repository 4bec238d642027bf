using System.Text.Json.Nodes;
using Nudge.Core.Profiles;

namespace Nudge.Core.Ingest;

/// <summary>What an accepted API call asks the process-event stage to do.</summary>
public enum OpKind
{
    Identify,
    Track,
    DeleteProfile,
    UpsertDevice,
    DeleteDevice,
    Suppress,
    Unsuppress,
    Merge,
}

/// <summary>
/// One validated operation, the unit that goes on the <c>events</c> queue. Everything in it has been checked at
/// ingest; the process stage never rejects an op for its shape. <see cref="MessageId"/> is the idempotency key:
/// the client's event id or Segment messageId when given, otherwise one minted at ingest.
/// </summary>
public sealed record IngestOp
{
    public required OpKind Kind { get; init; }

    public required string MessageId { get; init; }

    /// <summary>"track" (Customer.io Track API) or "segment".</summary>
    public required string Source { get; init; }

    /// <summary>When it happened according to the client (falls back to arrival time).</summary>
    public required DateTimeOffset Timestamp { get; init; }

    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>The person acted on; null only for a Track API event sent with neither id nor anonymous_id.</summary>
    public Identifier? Target { get; init; }

    /// <summary>An anonymous id whose activity merges into <see cref="Target"/> (identify with anonymous_id).</summary>
    public string? AnonymousId { get; init; }

    /// <summary>The person merged away by <see cref="OpKind.Merge"/>.</summary>
    public Identifier? Secondary { get; init; }

    /// <summary>New customer id (Track API body "id" when addressing by email or cio_ id).</summary>
    public string? SetId { get; init; }

    /// <summary>New email (lower-case).</summary>
    public string? SetEmail { get; init; }

    /// <summary>Attribute updates; JSON null removes an attribute.</summary>
    public JsonObject? Attributes { get; init; }

    /// <summary>Customer.io's _update: only update an existing person, never create one.</summary>
    public bool UpdateOnly { get; init; }

    public EventData? Event { get; init; }

    public DeviceData? Device { get; init; }

    /// <summary>A device token seen in the call's context whose last_used should be refreshed.</summary>
    public DeviceData? TouchDevice { get; init; }

    /// <summary>The client's IP as sent in the call (Segment context.ip), for consent records.</summary>
    public string? Ip { get; init; }
}

/// <summary>A tracked event: name, type (event, page, screen, group) and data.</summary>
public sealed record EventData(string Name, string Type, JsonObject Data);

/// <summary>A device as sent by a client. <see cref="Platform"/> is already normalised.</summary>
public sealed record DeviceData(string Token, string? Platform, string? DeviceId, DateTimeOffset? LastUsed, JsonObject Attributes);
