namespace Nudge.Delivery.Twilio;

/// <summary>
/// Twilio error codes Nudge acts on, and the <see cref="DeliveryReason"/> each maps to. The same table serves the send
/// API's error bodies and the ErrorCode of status callbacks (where the 300xx carrier codes mostly arrive).
/// </summary>
public static class TwilioErrors
{
    /// <summary>Authenticate: wrong Account SID / Auth Token (HTTP 401).</summary>
    public const int Authenticate = 20003;

    /// <summary>The requested resource was not found: the Account SID in the path is not ours.</summary>
    public const int NotFound = 20404;

    /// <summary>Too Many Requests (HTTP 429).</summary>
    public const int TooManyRequests = 20429;

    /// <summary>The 'To' number is not a valid phone number.</summary>
    public const int InvalidTo = 21211;

    /// <summary>The 'From' number is not a valid phone number.</summary>
    public const int InvalidFrom = 21212;

    /// <summary>Message body is required.</summary>
    public const int BodyRequired = 21602;

    /// <summary>A 'From' number (or a Messaging Service) is required.</summary>
    public const int FromRequired = 21603;

    /// <summary>A 'To' number is required.</summary>
    public const int ToRequired = 21604;

    /// <summary>The 'From' number is not a message-capable number of this account.</summary>
    public const int FromNotCapable = 21606;

    /// <summary>The recipient replied STOP: Twilio blocks sends to them from this sender until they reply START.</summary>
    public const int Unsubscribed = 21610;

    /// <summary>The 'To' number is not a mobile number.</summary>
    public const int NotMobile = 21614;

    /// <summary>The concatenated body is over Twilio's 1600-character limit.</summary>
    public const int BodyTooLong = 21617;

    /// <summary>The account is suspended.</summary>
    public const int AccountSuspended = 30002;

    /// <summary>Unreachable destination handset.</summary>
    public const int Unreachable = 30003;

    /// <summary>Message blocked (by the recipient or the carrier).</summary>
    public const int Blocked = 30004;

    /// <summary>Unknown destination handset.</summary>
    public const int UnknownHandset = 30005;

    /// <summary>Landline or unreachable carrier.</summary>
    public const int Landline = 30006;

    /// <summary>Filtered by the carrier as spam or unwanted content.</summary>
    public const int Filtered = 30007;

    /// <summary>Unknown error.</summary>
    public const int Unknown = 30008;

    /// <summary>Sent from an unregistered US A2P 10DLC number.</summary>
    public const int Unregistered10Dlc = 30034;

    /// <summary>
    /// The machine-readable reason for a Twilio error code. Codes not in the table are <see cref="DeliveryReason.ProviderRejected"/>.
    /// Whether to retry is not in the code alone: the send path also looks at the HTTP status (429 and 5xx retry).
    /// </summary>
    public static string Reason(int code) => code switch
    {
        Unsubscribed => DeliveryReason.RecipientUnsubscribed,
        InvalidTo or ToRequired or NotMobile or Unreachable or Landline => DeliveryReason.InvalidRecipient,
        // Credentials or sender configuration: no message will pass until someone fixes the settings.
        Authenticate or NotFound or InvalidFrom or FromRequired or FromNotCapable or AccountSuspended => DeliveryReason.ProviderAuth,
        TooManyRequests => DeliveryReason.RateLimited,
        BodyTooLong => DeliveryReason.PayloadTooLarge,
        // Blocked, UnknownHandset, Filtered, Unknown, Unregistered10Dlc, BodyRequired and every other code.
        _ => DeliveryReason.ProviderRejected,
    };
}
