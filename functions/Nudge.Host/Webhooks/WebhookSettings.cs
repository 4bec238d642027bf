using System.Security.Cryptography;
using Nudge.Delivery.Email;
using Nudge.Delivery.Twilio;
using Nudge.Host.Hosting;

namespace Nudge.Host.Webhooks;

/// <summary>
/// What the inbound webhooks verify against, read once at start-up: the Twilio auth token (X-Twilio-Signature), the
/// SendGrid Event Webhook's public key, the public address providers call, and the SMS HELP answer. A webhook whose
/// secret is not configured rejects every request (nothing can be verified). Never logged.
/// </summary>
public sealed class WebhookSettings
{
    /// <summary>The SendGrid key setting, named in start-up errors.</summary>
    public const string SendGridKeySetting = EmailOptions.Section + ":SendGrid:WebhookPublicKey";

    /// <summary>Twilio's auth token, or null when Twilio is not configured.</summary>
    public string? TwilioAuthToken { get; init; }

    /// <summary>The SendGrid Event Webhook verification key (P-256), or null when not configured.</summary>
    public ECDsa? SendGridKey { get; init; }

    /// <summary>Nudge's public address (Nudge:PublicBaseUrl), or null: then the request's own scheme and host.</summary>
    public Uri? PublicBaseUrl { get; init; }

    /// <summary>The answer to HELP / INFO.</summary>
    public string HelpReply { get; init; } = SmsOptions.DefaultHelpReply;

    /// <summary>Reads the settings.</summary>
    /// <exception cref="NudgeConfigurationException">The SendGrid key is set but is not a base64 DER P-256 public key; the problem names the setting.</exception>
    public static WebhookSettings Load(IConfiguration config, NudgeOptions nudge, Uri? publicBaseUrl)
    {
        var key = ReadSendGridKey(config, out var problem);
        if (problem is not null)
        {
            throw new NudgeConfigurationException(problem);
        }

        var token = config[TwilioOptions.SectionName + ":AuthToken"];
        return new WebhookSettings
        {
            TwilioAuthToken = string.IsNullOrWhiteSpace(token) ? null : token,
            SendGridKey = key,
            PublicBaseUrl = publicBaseUrl,
            HelpReply = nudge.Sms.HelpReply,
        };
    }

    /// <summary>Every problem with the webhooks' own settings (the SendGrid key); empty when <see cref="Load"/> will succeed.</summary>
    public static IReadOnlyList<string> Validate(IConfiguration config)
    {
        ReadSendGridKey(config, out var problem)?.Dispose();
        return problem is null ? [] : [problem];
    }

    private static ECDsa? ReadSendGridKey(IConfiguration config, out string? problem)
    {
        problem = null;
        if (config[SendGridKeySetting] is not { Length: > 0 } text)
        {
            return null;
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(Convert.FromBase64String(text.Trim()), out _);
            if (key.KeySize == 256)
            {
                return key;
            }
        }
        catch (Exception e) when (e is FormatException or CryptographicException)
        {
            // Described below; the parser's message is not used.
        }

        key.Dispose();
        problem = $"{SendGridKeySetting} must be the base64 DER public key (P-256) SendGrid shows for the signed Event Webhook";
        return null;
    }

    /// <summary>
    /// The URL a provider called, as it saw it: the public base address with the request's path and query (exactly as
    /// received); without a public address, the request's own scheme and host.
    /// </summary>
    public string PublicUrlOf(HttpRequest r)
    {
        var root = PublicBaseUrl?.AbsoluteUri ?? $"{r.Scheme}://{r.Host.ToUriComponent()}/";
        root = root.EndsWith('/') ? root : root + "/";
        var path = (r.PathBase + r.Path).ToUriComponent().TrimStart('/');
        return root + path + r.QueryString.ToUriComponent();
    }
}
