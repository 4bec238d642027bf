namespace Nudge.Delivery;

/// <summary>
/// One push to one device. <see cref="MessageId"/> is Nudge's message id: providers put it in the payload as
/// <c>delivery_id</c> so the app's SDK can report delivered/opened against it.
/// </summary>
/// <param name="MessageId">Nudge's message id.</param>
/// <param name="Token">The device token.</param>
/// <param name="Platform">ios or android.</param>
/// <param name="Content">What to show.</param>
/// <param name="ApnsEnvironment">APNs only: "production" or "sandbox" for this device; null uses the configured default.</param>
public sealed record PushRequest(string MessageId, string Token, string Platform, PushContent Content, string? ApnsEnvironment = null);

/// <summary>Rendered push content.</summary>
/// <param name="Title">Alert title.</param>
/// <param name="Body">Alert body.</param>
/// <param name="DeepLink">URL the app opens on tap; sent as data key <c>link</c> (and <c>deep_link</c>).</param>
/// <param name="Image">Image URL (FCM notification.image, APNs mutable-content + data key <c>image</c>).</param>
/// <param name="Data">Custom key/values; every value is a string (FCM requires it).</param>
/// <param name="CollapseId">Collapse key: a newer push with the same key replaces the older one (at most 64 bytes).</param>
/// <param name="TimeToLive">How long the provider keeps it for an offline device; null: the provider's default.</param>
/// <param name="HighPriority">Deliver immediately (APNs priority 10, FCM HIGH) rather than power-saving (5, NORMAL).</param>
/// <param name="Sound">Sound name; "default" plays the default sound.</param>
/// <param name="Badge">Badge number; null leaves it alone.</param>
public sealed record PushContent(
    string? Title,
    string? Body,
    string? DeepLink = null,
    string? Image = null,
    IReadOnlyDictionary<string, string>? Data = null,
    string? CollapseId = null,
    TimeSpan? TimeToLive = null,
    bool HighPriority = true,
    string? Sound = "default",
    int? Badge = null);

/// <summary>One SMS. <see cref="StatusCallback"/> carries the message id so Twilio's status callbacks find it.</summary>
public sealed record SmsRequest(string MessageId, string To, string Body, Uri? StatusCallback);

/// <summary>One email. <see cref="Headers"/> holds extra headers such as List-Unsubscribe.</summary>
public sealed record EmailRequest(
    string MessageId,
    string To,
    string Subject,
    string? Html,
    string? Text,
    IReadOnlyDictionary<string, string> Headers);

/// <summary>Provider settings that check themselves at start-up: each problem names its setting, never a secret's value.</summary>
public interface IProviderOptions
{
    IReadOnlyList<string> Validate();
}

/// <summary>A push provider (APNs for iOS, FCM for Android, or the sandbox).</summary>
public interface IPushProvider
{
    /// <summary>"apns", "fcm" or "sandbox": used in message records and circuit breaker names.</summary>
    string Name { get; }

    /// <summary>
    /// Whether Nudge hears from this provider that a message it accepted reached its recipient (a delivery receipt by
    /// webhook or status callback that Nudge is set up to receive). When false, "delivered" is not known for its messages
    /// and a delivery rate of them means nothing: reports say "not reported" instead of 0 %.
    /// </summary>
    bool ReportsDelivery { get; }

    Task<SendOutcome> SendAsync(PushRequest request, CancellationToken ct);
}

/// <summary>An SMS provider (Twilio, or the sandbox).</summary>
public interface ISmsProvider
{
    string Name { get; }

    /// <summary>
    /// Whether Nudge hears from this provider that a message it accepted reached its recipient (a delivery receipt by
    /// webhook or status callback that Nudge is set up to receive). When false, "delivered" is not known for its messages
    /// and a delivery rate of them means nothing: reports say "not reported" instead of 0 %.
    /// </summary>
    bool ReportsDelivery { get; }

    Task<SendOutcome> SendAsync(SmsRequest request, CancellationToken ct);
}

/// <summary>An email provider (SMTP, SendGrid, or the sandbox).</summary>
public interface IEmailProvider
{
    string Name { get; }

    /// <summary>
    /// Whether Nudge hears from this provider that a message it accepted reached its recipient (a delivery receipt by
    /// webhook or status callback that Nudge is set up to receive). When false, "delivered" is not known for its messages
    /// and a delivery rate of them means nothing: reports say "not reported" instead of 0 %.
    /// </summary>
    bool ReportsDelivery { get; }

    Task<SendOutcome> SendAsync(EmailRequest request, CancellationToken ct);
}
