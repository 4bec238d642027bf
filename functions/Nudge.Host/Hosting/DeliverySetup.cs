using Nudge.Core.Messages;
using Nudge.Delivery;
using Nudge.Delivery.Apns;
using Nudge.Delivery.Email;
using Nudge.Delivery.Fcm;
using Nudge.Delivery.Sandbox;
using Nudge.Delivery.Twilio;
using Nudge.Pipeline;

namespace Nudge.Host.Hosting;

/// <summary>
/// Builds the channels from Nudge:Providers:*. A provider whose section is absent or empty leaves its channel in the sandbox;
/// a section that is present must be valid, or start-up stops with every problem listed (never a secret's value).
/// </summary>
public static class DeliverySetup
{
    /// <param name="config">The app's configuration.</param>
    /// <param name="nudge">The Nudge section.</param>
    /// <param name="time">The clock.</param>
    /// <param name="links">Signs the one-click unsubscribe links of marketing email.</param>
    /// <param name="listening">Nudge's own address, for links when Nudge:PublicBaseUrl is not set (read at send time).</param>
    /// <param name="handlers">
    /// An HTTP handler per provider name ("apns", "fcm", "twilio", "sendgrid") for a program that embeds Nudge and needs
    /// its own (a proxy, a private CA); null, or null for a name, uses the provider's default.
    /// </param>
    /// <param name="sandboxOnly">Every channel in the sandbox, whatever the provider sections say (simulations never send).</param>
    public static (ChannelSet Channels, SendOptions Options) Load(IConfiguration config, NudgeOptions nudge, TimeProvider time, UnsubscribeLinks links, Func<Uri> listening,
        Func<string, HttpMessageHandler?>? handlers = null, bool sandboxOnly = false)
    {
        HttpMessageHandler? Handler(string name) => handlers?.Invoke(name);
        var problems = new List<string>();
        var sandbox = new SandboxProvider(reportPushDelivered: nudge.Reports.PushSentCountsAsDelivered);

        IPushProvider android = sandbox;
        if (Bind<FcmOptions>(config, FcmOptions.SectionName, problems, sandboxOnly) is { } fcm)
        {
            android = new FcmProvider(fcm, time, Handler("fcm"));
        }

        ISmsProvider sms = sandbox;
        var twilio = Bind<TwilioOptions>(config, TwilioOptions.SectionName, problems, sandboxOnly);

        IPushProvider ios = sandbox;
        if (Bind<ApnsOptions>(config, ApnsOptions.Section, problems, sandboxOnly) is { } apns)
        {
            ios = new ApnsProvider(apns, time, Handler("apns"));
        }

        IEmailProvider email = sandbox;
        if (Bind<EmailOptions>(config, EmailOptions.Section, problems, sandboxOnly) is { } mail)
        {
            email = string.Equals(mail.Provider, "sendgrid", StringComparison.OrdinalIgnoreCase)
                ? new SendGridEmailProvider(mail, time, Handler("sendgrid"))
                : new SmtpEmailProvider(mail, time);
        }

        Uri? publicBase = null;
        var baseText = nudge.PublicBaseUrl ?? twilio?.StatusCallbackBaseUrl;
        if (!string.IsNullOrEmpty(baseText))
        {
            if (Uri.TryCreate(baseText.EndsWith('/') ? baseText : baseText + "/", UriKind.Absolute, out var u) && u.Scheme is "https" or "http")
            {
                publicBase = u;
            }
            else
            {
                problems.Add($"Nudge:PublicBaseUrl: '{baseText}' is not an absolute http(s) URL");
            }
        }

        if (twilio is not null)
        {
            // The send stage gives each SMS a status callback only when Nudge has a public address: only then does Twilio report delivery.
            sms = new TwilioProvider(twilio, time, Handler("twilio")) { ReportsDelivery = publicBase is not null };
        }

        if (problems.Count > 0)
        {
            throw new InvalidOperationException("Provider settings are invalid:" + string.Concat(problems.Select(p => Environment.NewLine + "  - " + p)));
        }

        // Marketing mail carries RFC 8058 one-click unsubscribe headers; transactional mail does not.
        IReadOnlyDictionary<string, string> EmailHeaders(Message m) => m.Transactional
            ? new Dictionary<string, string>()
            : UnsubscribeLinks.Headers(UnsubscribeUrl(publicBase ?? listening(), links, m));
        return (new ChannelSet(ios, android, sms, email, time), new SendOptions { PublicBaseUrl = publicBase, EmailHeaders = EmailHeaders });
    }

    /// <summary>The signed link that unsubscribes the message's recipient from marketing email: {base}/u/{token}.</summary>
    public static Uri UnsubscribeUrl(Uri baseUrl, UnsubscribeLinks links, Message m) =>
        new(baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/"), "u/" + links.Create(m.ProfileKey, m.Id));

    /// <summary>Which provider each channel uses, for the start-up banner.</summary>
    public static string Describe(ChannelSet c) =>
        $"push iOS -> {c.Ios.Name}, push Android -> {c.Android.Name}, SMS -> {c.Sms.Name}, email -> {c.Email.Name}";

    private static T? Bind<T>(IConfiguration config, string section, List<string> problems, bool sandboxOnly)
        where T : class, IProviderOptions, new()
    {
        // Present means at least one non-empty value: empty placeholders (local.settings.sample.json) keep the sandbox.
        var s = config.GetSection(section);
        if (sandboxOnly || !s.AsEnumerable().Any(kv => !string.IsNullOrEmpty(kv.Value)))
        {
            return null;
        }

        var o = new T();
        s.Bind(o);
        var found = o.Validate();
        problems.AddRange(found);
        return found.Count == 0 ? o : null;
    }
}
