namespace Nudge.Delivery;

/// <summary>What a provider call came to.</summary>
public enum OutcomeKind
{
    /// <summary>The provider accepted the message; <see cref="SendOutcome.ProviderId"/> is its id.</summary>
    Sent,

    /// <summary>The push token is dead (unregistered, expired, not valid): remove the device, mark the message bounced.</summary>
    InvalidToken,

    /// <summary>The provider asked us to slow down; retry after <see cref="SendOutcome.RetryAfter"/>.</summary>
    RateLimited,

    /// <summary>A failure that may pass (5xx, timeout, connection reset): retry with backoff.</summary>
    Transient,

    /// <summary>A failure that retrying will not fix (bad request, bad credentials, recipient refused).</summary>
    Permanent,
}

/// <summary>
/// The typed result of one provider call. <see cref="Reason"/> is machine-readable (see <see cref="DeliveryReason"/>);
/// <see cref="Detail"/> carries the provider's own code (FCM errorCode, APNs reason, Twilio error code, SMTP status) and is
/// safe to show: it never holds a secret or a whole token.
/// </summary>
public sealed record SendOutcome(OutcomeKind Kind, string? ProviderId, string? Reason, string? Detail, TimeSpan? RetryAfter)
{
    /// <summary>SMS only: segments the body takes.</summary>
    public int? Segments { get; init; }

    /// <summary>SMS only: estimated cost in USD.</summary>
    public decimal? EstimatedCost { get; init; }

    /// <summary>
    /// APNs only: the environment ("production" or "sandbox") the token turned out to belong to, when it was not the
    /// one the request named. The send stage remembers it on the device, so the next push goes straight there.
    /// </summary>
    public string? ApnsEnvironment { get; init; }

    /// <summary>
    /// The provider knows the message reached its recipient as it accepted it (the sandbox, where nothing leaves the
    /// machine): the send stage records delivered right after sent, as a provider's delivery report would.
    /// </summary>
    public bool Delivered { get; init; }

    public static SendOutcome Sent(string? providerId) => new(OutcomeKind.Sent, providerId, null, null, null);

    public static SendOutcome InvalidToken(string detail) => new(OutcomeKind.InvalidToken, null, DeliveryReason.InvalidToken, detail, null);

    public static SendOutcome RateLimited(TimeSpan? retryAfter, string detail) => new(OutcomeKind.RateLimited, null, DeliveryReason.RateLimited, detail, retryAfter);

    public static SendOutcome Transient(string reason, string detail, TimeSpan? retryAfter = null) => new(OutcomeKind.Transient, null, reason, detail, retryAfter);

    public static SendOutcome Permanent(string reason, string detail) => new(OutcomeKind.Permanent, null, reason, detail, null);
}

/// <summary>Machine-readable reasons a provider call did not end in "sent".</summary>
public static class DeliveryReason
{
    /// <summary>The push token is no longer valid.</summary>
    public const string InvalidToken = Core.Messages.MessageReason.InvalidToken;

    /// <summary>The provider refused this message (bad recipient, bad content, not allowed).</summary>
    public const string ProviderRejected = Core.Messages.MessageReason.ProviderRejected;

    /// <summary>The provider refused our credentials or configuration (key, topic, sender).</summary>
    public const string ProviderAuth = "provider_auth";

    /// <summary>The provider throttled us.</summary>
    public const string RateLimited = "rate_limited";

    /// <summary>The provider answered 5xx or was not reachable.</summary>
    public const string ProviderUnavailable = "provider_unavailable";

    /// <summary>No answer in time.</summary>
    public const string Timeout = "timeout";

    /// <summary>The payload is over the provider's size limit.</summary>
    public const string PayloadTooLarge = "payload_too_large";

    /// <summary>The recipient opted out at the provider (Twilio 21610).</summary>
    public const string RecipientUnsubscribed = "recipient_unsubscribed";

    /// <summary>The recipient address or number is not valid for this channel.</summary>
    public const string InvalidRecipient = "invalid_recipient";

    /// <summary>The provider's circuit breaker is open after repeated failures.</summary>
    public const string CircuitOpen = "circuit_open";
}
