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

    /// <summary>A metric reported for a message (provider webhook, email pixel or link, app SDK); see <see cref="IngestOp.Report"/>.</summary>
    MessageReport,

    /// <summary>An SMS opt-out or opt-in keyword from a phone number; see <see cref="IngestOp.Phone"/>.</summary>
    SmsKeyword,
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

    /// <summary>
    /// <see cref="OpKind.MessageReport"/>: the metric reported for one message. <see cref="Attributes"/> may carry a consent
    /// change that comes with it (unsubscribed, sms_consent), applied to the message's person (or to <see cref="Target"/>
    /// when the message is unknown) with <see cref="Source"/> and <see cref="Timestamp"/> in the consent history.
    /// </summary>
    public MetricReport? Report { get; init; }

    /// <summary><see cref="OpKind.SmsKeyword"/>: the E.164 number that sent the keyword; <see cref="Attributes"/> holds the sms_consent change.</summary>
    public string? Phone { get; init; }
}

/// <summary>
/// A metric reported for a message. <paramref name="Metric"/> is a message status (delivered, opened, clicked, converted,
/// sent, bounced, dropped, failed) or an event-only metric (<see cref="Messages.ReportedMetric"/>).
/// </summary>
/// <param name="MessageId">Nudge's message id (the delivery_id the provider or SDK echoes back).</param>
/// <param name="Metric">What happened.</param>
/// <param name="Reason">Why, for a non-delivery (machine-readable).</param>
/// <param name="Key">The reporter's idempotency key (Twilio MessageSid + status, SendGrid sg_event_id).</param>
/// <param name="Recipient">The device token, phone number or email the report is about, when known.</param>
/// <param name="ProviderId">The provider's id for the message (Twilio MessageSid, SendGrid sg_message_id).</param>
public sealed record MetricReport(string MessageId, string Metric, string? Reason = null, string? Key = null, string? Recipient = null, string? ProviderId = null);

/// <summary>A tracked event: name, type (event, page, screen, group) and data.</summary>
public sealed record EventData(string Name, string Type, JsonObject Data);

/// <summary>A device as sent by a client. <see cref="Platform"/> is already normalised.</summary>
public sealed record DeviceData(string Token, string? Platform, string? DeviceId, DateTimeOffset? LastUsed, JsonObject Attributes);
