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
}

/// <summary>One status change.</summary>
public sealed record StatusChange(string Status, DateTimeOffset At, string? Reason);

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

    [JsonIgnore]
    public bool CountsTowardCaps => Status is MessageStatus.Drafted or MessageStatus.Attempted or MessageStatus.Sent
        or MessageStatus.Delivered or MessageStatus.Opened or MessageStatus.Clicked or MessageStatus.Converted;
}

/// <summary>A past send as frequency caps see it.</summary>
public sealed record SendRecord(Channel Channel, DateTimeOffset At, int Priority, bool Transactional, string? JourneyId = null);
