using MimeKit;

namespace Nudge.Delivery.Email;

/// <summary>
/// Settings under the "Nudge:Providers:Email" configuration section. <see cref="Validate"/> lists every problem by
/// setting name; no message, exception or <see cref="ToString"/> ever contains <see cref="SmtpEmailOptions.Password"/>
/// or <see cref="SendGridEmailOptions.ApiKey"/>.
/// </summary>
public sealed class EmailOptions : IProviderOptions
{
    public const string Section = "Nudge:Providers:Email";

    /// <summary>Which provider sends email: "smtp" or "sendgrid" (case-insensitive). Required.</summary>
    public string? Provider { get; set; }

    /// <summary>Sender address (From), e.g. news@example.com. Required.</summary>
    public string? From { get; set; }

    /// <summary>Sender display name shown next to <see cref="From"/>. Optional.</summary>
    public string? FromName { get; set; }

    /// <summary>Reply-To address. Optional.</summary>
    public string? ReplyTo { get; set; }

    public SmtpEmailOptions Smtp { get; set; } = new();

    public SendGridEmailOptions SendGrid { get; set; } = new();

    /// <summary>
    /// Budget for one send, connecting included; also how long a send queued for an SMTP session waits without any
    /// session finishing a send before it gives up (smtp_busy): 15 s (1 to 300).
    /// </summary>
    public int RequestTimeoutSeconds { get; set; } = 15;

    /// <summary>
    /// The settings the SendGrid Event Webhook needs on its own: its verification key. A section with only these leaves
    /// outbound email in the sandbox; any other setting means a provider should send, and then <see cref="Validate"/> must pass.
    /// </summary>
    public static readonly IReadOnlySet<string> InboundSettings = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "SendGrid:WebhookPublicKey" };

    /// <summary>Every problem with these settings, each naming its setting; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = ValidateCommon();
        if (string.IsNullOrWhiteSpace(Provider))
        {
            problems.Add($"{Section}:Provider is required (\"smtp\" or \"sendgrid\")");
        }
        else if (IsProvider("smtp"))
        {
            problems.AddRange(ValidateSmtp());
        }
        else if (IsProvider("sendgrid"))
        {
            problems.AddRange(ValidateSendGrid());
        }
        else
        {
            // The value is not echoed: a misplaced secret must not end up in a start-up log.
            problems.Add($"{Section}:Provider must be \"smtp\" or \"sendgrid\"");
        }

        return problems;
    }

    /// <summary>The settings with secrets shown only as set / not set.</summary>
    public override string ToString() =>
        $"EmailOptions {{ Provider = {Provider}, From = {From}, FromName = {FromName}, ReplyTo = {ReplyTo}, " +
        $"RequestTimeoutSeconds = {RequestTimeoutSeconds}, Smtp = {Smtp}, SendGrid = {SendGrid} }}";

    internal bool IsProvider(string name) => string.Equals(Provider?.Trim(), name, StringComparison.OrdinalIgnoreCase);

    internal TimeSpan RequestTimeout => TimeSpan.FromSeconds(RequestTimeoutSeconds);

    internal List<string> ValidateCommon()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(From))
        {
            problems.Add($"{Section}:From is required");
        }
        else if (EmailAddresses.Parse(From) is null)
        {
            problems.Add($"{Section}:From is not a valid email address");
        }

        if (!string.IsNullOrWhiteSpace(ReplyTo) && EmailAddresses.Parse(ReplyTo) is null)
        {
            problems.Add($"{Section}:ReplyTo is not a valid email address");
        }

        if (FromName is not null && FromName.AsSpan().ContainsAny('\r', '\n'))
        {
            problems.Add($"{Section}:FromName must be one line");
        }

        if (RequestTimeoutSeconds is < 1 or > 300)
        {
            problems.Add($"{Section}:RequestTimeoutSeconds must be between 1 and 300");
        }

        return problems;
    }

    internal List<string> ValidateSmtp()
    {
        var problems = new List<string>();
        var s = Smtp ?? new SmtpEmailOptions();
        if (string.IsNullOrWhiteSpace(s.Host))
        {
            problems.Add($"{Section}:Smtp:Host is required when Provider is smtp");
        }

        if (s.Port is < 1 or > 65535)
        {
            problems.Add($"{Section}:Smtp:Port must be between 1 and 65535");
        }

        if (SmtpEmailOptions.SecurityMode(s.Security) is null)
        {
            problems.Add($"{Section}:Smtp:Security must be \"none\", \"starttls\" or \"tls\"");
        }

        if (s.MaxConnections is < 1 or > 16)
        {
            problems.Add($"{Section}:Smtp:MaxConnections must be between 1 and 16");
        }

        var hasUser = !string.IsNullOrEmpty(s.UserName);
        var hasPassword = !string.IsNullOrEmpty(s.Password);
        if (hasPassword && !hasUser)
        {
            problems.Add($"{Section}:Smtp:UserName is required when Smtp:Password is set");
        }
        else if (hasUser && !hasPassword)
        {
            problems.Add($"{Section}:Smtp:Password is required when Smtp:UserName is set");
        }

        return problems;
    }

    internal List<string> ValidateSendGrid()
    {
        var problems = new List<string>();
        var g = SendGrid ?? new SendGridEmailOptions();
        if (string.IsNullOrWhiteSpace(g.ApiKey))
        {
            problems.Add($"{Section}:SendGrid:ApiKey is required when Provider is sendgrid");
        }
        else if (g.ApiKey.AsSpan().ContainsAny('\r', '\n'))
        {
            problems.Add($"{Section}:SendGrid:ApiKey must be one line");
        }

        if (!Uri.TryCreate(g.BaseUrl, UriKind.Absolute, out var baseUrl) || (baseUrl.Scheme != Uri.UriSchemeHttps && baseUrl.Scheme != Uri.UriSchemeHttp))
        {
            problems.Add($"{Section}:SendGrid:BaseUrl must be an absolute http(s) URL");
        }

        return problems;
    }

    /// <summary>Throws when the settings a provider needs are not usable; the message lists the problems (never a secret).</summary>
    internal static void ThrowIfInvalid(List<string> problems, string paramName)
    {
        if (problems.Count > 0)
        {
            throw new ArgumentException("Email settings are not valid: " + string.Join("; ", problems), paramName);
        }
    }
}

/// <summary>SMTP settings (Nudge:Providers:Email:Smtp).</summary>
public sealed class SmtpEmailOptions
{
    /// <summary>SMTP server host name or IP. Required when Provider is smtp.</summary>
    public string? Host { get; set; }

    /// <summary>SMTP server port: 587 (submission). Use 465 with Security "tls", 25 or 1025 with "none".</summary>
    public int Port { get; set; } = 587;

    /// <summary>"none" (plain text; local test servers only), "starttls" (upgrade required, the default) or "tls" (TLS from the first byte).</summary>
    public string Security { get; set; } = "starttls";

    /// <summary>SMTP AUTH user name; empty sends without authenticating.</summary>
    public string? UserName { get; set; }

    /// <summary>SMTP AUTH password. Secret: never logged or shown.</summary>
    public string? Password { get; set; }

    /// <summary>
    /// Most SMTP sessions kept open and used at once: 1 (1 to 16). Each session sends one message at a time; raise it
    /// for volume if the server allows parallel sessions per account.
    /// </summary>
    public int MaxConnections { get; set; } = 1;

    /// <summary>The settings with the password shown only as set / not set.</summary>
    public override string ToString() =>
        $"{{ Host = {Host}, Port = {Port}, Security = {Security}, MaxConnections = {MaxConnections}, UserName = {UserName}, Password = {(string.IsNullOrEmpty(Password) ? "(not set)" : "(set)")} }}";

    internal static MailKit.Security.SecureSocketOptions? SecurityMode(string? security) => security?.Trim().ToLowerInvariant() switch
    {
        "none" => MailKit.Security.SecureSocketOptions.None,
        "starttls" => MailKit.Security.SecureSocketOptions.StartTls,
        "tls" => MailKit.Security.SecureSocketOptions.SslOnConnect,
        _ => null,
    };
}

/// <summary>SendGrid settings (Nudge:Providers:Email:SendGrid).</summary>
public sealed class SendGridEmailOptions
{
    /// <summary>SendGrid API key with Mail Send permission. Secret: never logged or shown. Required when Provider is sendgrid.</summary>
    public string? ApiKey { get; set; }

    /// <summary>API root: https://api.sendgrid.com (https://api.eu.sendgrid.com for EU-pinned subusers).</summary>
    public string BaseUrl { get; set; } = "https://api.sendgrid.com";

    /// <summary>
    /// The Event Webhook's verification key (Settings > Mail Settings > Signed Event Webhook): base64 DER
    /// SubjectPublicKeyInfo of a P-256 key. Nudge accepts POST /webhooks/sendgrid only when it is set and the signature verifies.
    /// </summary>
    public string? WebhookPublicKey { get; set; }

    /// <summary>The settings with the API key shown only as set / not set.</summary>
    public override string ToString() =>
        $"{{ BaseUrl = {BaseUrl}, ApiKey = {(string.IsNullOrEmpty(ApiKey) ? "(not set)" : "(set)")} }}";
}

/// <summary>Address parsing shared by the options and both providers.</summary>
internal static class EmailAddresses
{
    /// <summary>One mailbox ("a@example.com" or "Name &lt;a@example.com&gt;"), or null when the text is not exactly one address.</summary>
    public static MailboxAddress? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.AsSpan().ContainsAny('\r', '\n', '\0'))
        {
            return null;
        }

        if (!MailboxAddress.TryParse(ParserOptions.Default, text.Trim(), out var mailbox) || mailbox.Route.Count > 0)
        {
            return null;
        }

        var at = mailbox.Address.LastIndexOf('@');
        return at > 0 && at < mailbox.Address.Length - 1 ? mailbox : null;
    }
}
