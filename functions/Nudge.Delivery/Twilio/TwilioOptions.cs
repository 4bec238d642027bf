using System.Globalization;
using System.Text.RegularExpressions;

namespace Nudge.Delivery.Twilio;

/// <summary>
/// Twilio settings, bound from <see cref="SectionName"/>. Call <see cref="Validate"/> at start-up. <see cref="AuthToken"/>
/// is a secret: no message, exception or <see cref="ToString"/> built from these options contains it.
/// </summary>
public sealed partial class TwilioOptions : IProviderOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string SectionName = "Nudge:Providers:Twilio";

    /// <summary>The path the status-callback webhook listens on, below <see cref="StatusCallbackBaseUrl"/>.</summary>
    public const string StatusCallbackPath = "/webhooks/twilio/status";

    /// <summary>Account SID: "AC" + 32 hex digits. Required; the user name of Basic auth and part of the API path.</summary>
    public string AccountSid { get; set; } = "";

    /// <summary>Auth Token (secret). Required; the Basic auth password and the key of X-Twilio-Signature.</summary>
    public string AuthToken { get; set; } = "";

    /// <summary>Messaging Service SID: "MG" + 32 hex digits. Set this or <see cref="From"/>, not both.</summary>
    public string? MessagingServiceSid { get; set; }

    /// <summary>Sender number in E.164 (+ and up to 15 digits). Set this or <see cref="MessagingServiceSid"/>, not both.</summary>
    public string? From { get; set; }

    /// <summary>Twilio REST API root, absolute http(s) URL without a query. Default https://api.twilio.com; tests point it at a loopback peer.</summary>
    public string BaseUrl { get; set; } = "https://api.twilio.com";

    /// <summary>
    /// Nudge's public base URL, where Twilio posts status callbacks ({base}/webhooks/twilio/status?message_id=...).
    /// Optional (no callbacks when unset); absolute http(s) URL without a query. See <see cref="StatusCallbackFor"/>.
    /// </summary>
    public string? StatusCallbackBaseUrl { get; set; }

    /// <summary>Price per segment for the cost estimate, in USD. Default 0.0079 (US outbound list price); must be &gt;= 0.</summary>
    public decimal PricePerSegmentUsd { get; set; } = 0.0079m;

    /// <summary>Segments above which a body counts as long and worth a warning, in segments. Default 4; must be &gt;= 1.</summary>
    public int MaxSegmentsWarning { get; set; } = 4;

    /// <summary>Time allowed for one API call, connect to last byte, in seconds. Default 10; 1 to 300.</summary>
    public int RequestTimeoutSeconds { get; set; } = 10;

    /// <summary>
    /// The settings inbound webhooks need on their own: the auth token, which keys X-Twilio-Signature on inbound SMS
    /// (STOP / START / HELP) and status callbacks. A section with only these leaves outbound SMS in the sandbox; any
    /// other setting means Twilio should send, and then <see cref="Validate"/> must pass.
    /// </summary>
    public static readonly IReadOnlySet<string> InboundSettings = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { nameof(AuthToken) };

    /// <summary>Problems with the settings inbound webhooks read (the auth token); empty when they can verify signatures.</summary>
    public IReadOnlyList<string> ValidateInbound()
    {
        var p = SectionName + ":";
        if (string.IsNullOrWhiteSpace(AuthToken))
        {
            return [$"{p}AuthToken is required"];
        }

        return AuthToken.Any(char.IsWhiteSpace) ? [$"{p}AuthToken must not contain white space"] : [];
    }

    /// <summary>Problems with these settings, each naming the setting; empty when valid. Never quotes the auth token.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        var p = SectionName + ":";
        if (string.IsNullOrWhiteSpace(AccountSid))
        {
            problems.Add($"{p}AccountSid is required");
        }
        else if (!AccountSidPattern().IsMatch(AccountSid))
        {
            problems.Add($"{p}AccountSid must be 'AC' followed by 32 hex digits");
        }

        problems.AddRange(ValidateInbound());

        var hasService = !string.IsNullOrWhiteSpace(MessagingServiceSid);
        var hasFrom = !string.IsNullOrWhiteSpace(From);
        if (hasService == hasFrom)
        {
            problems.Add($"{p}MessagingServiceSid or {p}From is required (set exactly one)");
        }

        if (hasService && !MessagingServiceSidPattern().IsMatch(MessagingServiceSid!))
        {
            problems.Add($"{p}MessagingServiceSid must be 'MG' followed by 32 hex digits");
        }

        if (hasFrom && !E164Pattern().IsMatch(From!))
        {
            problems.Add($"{p}From must be an E.164 number such as +14155550100");
        }

        CheckUrl(problems, p + "BaseUrl", BaseUrl, required: true);
        CheckUrl(problems, p + "StatusCallbackBaseUrl", StatusCallbackBaseUrl, required: false);

        if (PricePerSegmentUsd < 0)
        {
            problems.Add($"{p}PricePerSegmentUsd must be 0 or more (USD per segment)");
        }

        if (MaxSegmentsWarning < 1)
        {
            problems.Add($"{p}MaxSegmentsWarning must be 1 or more (segments)");
        }

        if (RequestTimeoutSeconds is < 1 or > 300)
        {
            problems.Add($"{p}RequestTimeoutSeconds must be between 1 and 300 (seconds)");
        }

        return problems;
    }

    /// <summary>
    /// The status callback URL for one message: {StatusCallbackBaseUrl}/webhooks/twilio/status?message_id={messageId},
    /// or null when no base URL is configured.
    /// </summary>
    public Uri? StatusCallbackFor(string messageId)
    {
        ArgumentException.ThrowIfNullOrEmpty(messageId);
        return string.IsNullOrWhiteSpace(StatusCallbackBaseUrl)
            ? null
            : new Uri($"{StatusCallbackBaseUrl.TrimEnd('/')}{StatusCallbackPath}?message_id={Uri.EscapeDataString(messageId)}");
    }

    /// <summary>The settings with the auth token masked.</summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"TwilioOptions {{ AccountSid = {AccountSid}, AuthToken = {(string.IsNullOrEmpty(AuthToken) ? "(unset)" : "***")}, " +
        $"MessagingServiceSid = {MessagingServiceSid}, From = {From}, BaseUrl = {BaseUrl}, StatusCallbackBaseUrl = {StatusCallbackBaseUrl}, " +
        $"PricePerSegmentUsd = {PricePerSegmentUsd}, MaxSegmentsWarning = {MaxSegmentsWarning}, RequestTimeoutSeconds = {RequestTimeoutSeconds} }}");

    private static void CheckUrl(List<string> problems, string name, string? value, bool required)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            if (required)
            {
                problems.Add($"{name} is required");
            }

            return;
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            problems.Add($"{name} must be an absolute http(s) URL");
        }
        else if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment) || !string.IsNullOrEmpty(uri.UserInfo))
        {
            problems.Add($"{name} must not have a query, fragment or user info");
        }
        else if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback)
        {
            // Plain http would send the auth token (BaseUrl) or let callbacks be read in transit (StatusCallbackBaseUrl).
            problems.Add($"{name} must use https (http is allowed for loopback only)");
        }
    }

    [GeneratedRegex("^AC[0-9a-fA-F]{32}$")]
    private static partial Regex AccountSidPattern();

    [GeneratedRegex("^MG[0-9a-fA-F]{32}$")]
    private static partial Regex MessagingServiceSidPattern();

    [GeneratedRegex(@"^\+[1-9][0-9]{1,14}$")]
    private static partial Regex E164Pattern();
}
