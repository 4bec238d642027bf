using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Nudge.Core.Journeys;

namespace Nudge.Core.Messages;

/// <summary>Customer.io's delivery metric names, used as message statuses.</summary>
public static class MessageStatus
{
    public const string Drafted = "drafted";
    public const string Attempted = "attempted";
    public const string Sent = "sent";
    public const string Delivered = "delivered";
    public const string Opened = "opened";
    public const string Clicked = "clicked";
    public const string Converted = "converted";
    public const string Bounced = "bounced";
    public const string Dropped = "dropped";
    public const string Failed = "failed";
    public const string Undeliverable = "undeliverable";
}

/// <summary>Machine-readable reasons carried by every message that was not delivered.</summary>
public static class MessageReason
{
    public const string NoDevice = "no_device";
    public const string ConsentMissing = "consent_missing";
    public const string FrequencyCapped = "frequency_capped";
    public const string QuietHours = "quiet_hours";
    public const string Suppressed = "suppressed";
    public const string Holdout = "holdout";
    public const string RenderError = "render_error";
    public const string InvalidToken = "invalid_token";
    public const string ProviderRejected = "provider_rejected";

    /// <summary>The message went out on the next channel of its fallback chain instead.</summary>
    public const string FellBack = "fell_back";
}

/// <summary>Where one recipient of a message stands with the provider.</summary>
public static class DeliveryStatus
{
    public const string Pending = "pending";
    public const string Sent = "sent";
    public const string Bounced = "bounced";
    public const string Dropped = "dropped";
    public const string Failed = "failed";
}

/// <summary>
/// One recipient of a message (a push token, a phone number or an address) and what the provider said. A push to
/// several devices has one each, so a retry re-sends only to the recipients that are still pending.
/// </summary>
public sealed class MessageDelivery
{
    public required string Recipient { get; init; }

    public string? Platform { get; init; }

    public string Status { get; set; } = DeliveryStatus.Pending;

    public string? Provider { get; set; }

    public string? ProviderId { get; set; }

    public string? Reason { get; set; }

    /// <summary>The provider's own code (FCM errorCode, APNs reason, Twilio or SMTP code).</summary>
    public string? Detail { get; set; }

    public int Attempts { get; set; }

    /// <summary>
    /// Times the recipient was passed over because its provider's circuit was open: no call was made, so these are not
    /// <see cref="Attempts"/>; a recipient passed over too often fails with reason circuit_open.
    /// </summary>
    public int Skips { get; set; }

    public DateTimeOffset? At { get; set; }
}

/// <summary>A later channel of the step's fallback chain, rendered when the message was drafted.</summary>
public sealed record FallbackDraft(Channel Channel, JsonObject Content, List<string> Recipients, List<string> Platforms);

/// <summary>
/// One entry of a message's status history: a status the message took, or a metric reported for it later (delivered,
/// opened, clicked...) even when it did not move the status (<see cref="StatusTransitions"/>).
/// </summary>
/// <param name="Status">A <see cref="MessageStatus"/> value.</param>
/// <param name="At">When it happened (the reporter's time when it gives one).</param>
/// <param name="Reason">Why, for every non-delivery (a <see cref="MessageReason"/> value, optionally with detail).</param>
/// <param name="Source">Who reported it when not the send stage: "twilio", "sendgrid", "sdk", "email_link"...</param>
/// <param name="Key">The reporter's idempotency key (e.g. Twilio MessageSid + status, SendGrid sg_event_id): a repeat is ignored.</param>
public sealed record StatusChange(string Status, DateTimeOffset At, string? Reason, string? Source = null, string? Key = null);

/// <summary>
/// A message a journey step produced. <see cref="Id"/> is derived from (instance, step, visit), so a step run twice
/// produces the same id and the store keeps one message. <see cref="Ready"/> marks drafted messages the send stage
/// still has to hand to a provider.
/// </summary>
public sealed class Message
{
    public required string Id { get; init; }

    public required string ProfileKey { get; set; }

    public required string InstanceId { get; init; }

    public required string JourneyId { get; init; }

    public required string StepId { get; init; }

    public required Channel Channel { get; init; }

    public required string Status { get; set; }

    public string? Reason { get; set; }

    /// <summary>Rendered content: push title/body/deep_link/data.*, SMS body, email subject/html/text.</summary>
    public JsonObject Content { get; set; } = [];

    /// <summary>Push tokens, phone number or email address the message goes to.</summary>
    public List<string> Recipients { get; set; } = [];

    /// <summary>Push platform of each recipient token (same order); empty for SMS and email.</summary>
    public List<string> Platforms { get; set; } = [];

    public bool Holdout { get; init; }

    public int Priority { get; init; }

    public bool Transactional { get; init; }

    public bool Ready { get; set; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? SentAt { get; set; }

    public DateTimeOffset? ConvertedAt { get; set; }

    public List<StatusChange> History { get; set; } = [];

    /// <summary>Channels tried before this one in the fallback chain, with why each was passed over.</summary>
    public JsonObject FallbackReasons { get; set; } = [];

    /// <summary>Later channels of the chain the person could receive, tried in order if this one is undeliverable.</summary>
    public List<FallbackDraft> Fallbacks { get; set; } = [];

    /// <summary>The message this one replaced as the next channel of its chain; null for a first choice.</summary>
    public string? FallbackOf { get; set; }

    /// <summary>The message created on the next channel when this one could not be delivered.</summary>
    public string? FallbackMessageId { get; set; }

    /// <summary>Per recipient outcomes, filled by the send stage.</summary>
    public List<MessageDelivery> Deliveries { get; set; } = [];

    /// <summary>Send attempts so far (each attempt may cover several recipients).</summary>
    public int Attempts { get; set; }

    /// <summary>When a message waiting to retry is next due; null means as soon as it is ready.</summary>
    public DateTimeOffset? NextAttemptAt { get; set; }

    /// <summary>Lint findings (long push title, many SMS segments), kept with the message for the dashboard.</summary>
    public List<string> Warnings { get; set; } = [];

    /// <summary>SMS only: segments, and the estimated cost in USD.</summary>
    public int? Segments { get; set; }

    public decimal? EstimatedCost { get; set; }

    [JsonIgnore]
    public bool CountsTowardCaps => Status is MessageStatus.Drafted or MessageStatus.Attempted or MessageStatus.Sent
        or MessageStatus.Delivered or MessageStatus.Opened or MessageStatus.Clicked or MessageStatus.Converted;
}

/// <summary>A past send as frequency caps see it.</summary>
public sealed record SendRecord(Channel Channel, DateTimeOffset At, int Priority, bool Transactional, string? JourneyId = null);
