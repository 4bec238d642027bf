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
/// a section that is present must be valid, or start-up stops with every problem listed (never a secret's value). A
/// section holding only what an inbound webhook needs (<see cref="TwilioOptions.InboundSettings"/>,
/// <see cref="EmailOptions.InboundSettings"/>) turns that webhook on and leaves sending in the sandbox.
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
    /// <exception cref="NudgeConfigurationException">A provider's settings are invalid or incomplete; every problem is listed.</exception>
    public static (ChannelSet Channels, SendOptions Options) Load(IConfiguration config, NudgeOptions nudge, TimeProvider time, UnsubscribeLinks links, Func<Uri> listening,
        Func<string, HttpMessageHandler?>? handlers = null, bool sandboxOnly = false)
    {
        HttpMessageHandler? Handler(string name) => handlers?.Invoke(name);
        var problems = new List<string>();
        var settings = sandboxOnly ? new ProviderSettings(null, null, null, null, null) : Read(config, nudge, problems);
        NudgeConfigurationException.ThrowIfAny(problems);

        var sandbox = new SandboxProvider(reportPushDelivered: nudge.Reports.PushSentCountsAsDelivered);
        IPushProvider android = settings.Fcm is { } fcm ? new FcmProvider(fcm, time, Handler("fcm")) : sandbox;

        // The send stage gives each SMS a status callback only when Nudge has a public address: only then does Twilio report delivery.
        ISmsProvider sms = settings.Twilio is { } twilio
            ? new TwilioProvider(twilio, time, Handler("twilio")) { ReportsDelivery = settings.PublicBaseUrl is not null }
            : sandbox;
        IPushProvider ios = settings.Apns is { } apns ? new ApnsProvider(apns, time, Handler("apns")) : sandbox;
        IEmailProvider email = sandbox;
        if (settings.Email is { } mail)
        {
            email = string.Equals(mail.Provider, "sendgrid", StringComparison.OrdinalIgnoreCase)
                ? new SendGridEmailProvider(mail, time, Handler("sendgrid"))
                : new SmtpEmailProvider(mail, time);
        }

        var publicBase = settings.PublicBaseUrl;

        // Marketing mail carries RFC 8058 one-click unsubscribe headers; transactional mail does not.
        IReadOnlyDictionary<string, string> EmailHeaders(Message m) => m.Transactional
            ? new Dictionary<string, string>()
            : UnsubscribeLinks.Headers(UnsubscribeUrl(publicBase ?? listening(), links, m));
        return (new ChannelSet(ios, android, sms, email, time), new SendOptions { PublicBaseUrl = publicBase, EmailHeaders = EmailHeaders });
    }

    /// <summary>Every problem with the provider settings and Nudge:PublicBaseUrl, without creating anything; empty when <see cref="Load"/> will succeed.</summary>
    public static IReadOnlyList<string> Validate(IConfiguration config, NudgeOptions nudge)
    {
        var problems = new List<string>();
        Read(config, nudge, problems);
        return problems;
    }

    /// <summary>The signed link that unsubscribes the message's recipient from marketing email: {base}/u/{token}.</summary>
    public static Uri UnsubscribeUrl(Uri baseUrl, UnsubscribeLinks links, Message m) =>
        new(baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/"), "u/" + links.Create(m.ProfileKey, m.Id));

    /// <summary>
    /// Which provider each channel uses, for the start-up banner, and which inbound webhooks can verify their calls
    /// when their channel sends from the sandbox (a Twilio auth token or a SendGrid key given alone).
    /// </summary>
    public static string Describe(ChannelSet c, bool twilioInbound = false, bool sendGridEvents = false)
    {
        var sms = c.Sms is SandboxProvider && twilioInbound ? " (Twilio inbound webhooks on)" : "";
        var email = c.Email is SandboxProvider && sendGridEvents ? " (SendGrid event webhook on)" : "";
        return $"push iOS -> {c.Ios.Name}, push Android -> {c.Android.Name}, SMS -> {c.Sms.Name}{sms}, email -> {c.Email.Name}{email}";
    }

    /// <summary>The providers' settings that are given (null: that channel stays in the sandbox), and the public address.</summary>
    private sealed record ProviderSettings(FcmOptions? Fcm, TwilioOptions? Twilio, ApnsOptions? Apns, EmailOptions? Email, Uri? PublicBaseUrl);

    private static ProviderSettings Read(IConfiguration config, NudgeOptions nudge, List<string> problems)
    {
        var fcm = Bind<FcmOptions>(config, FcmOptions.SectionName, problems, inbound: null);
        var twilio = Bind<TwilioOptions>(config, TwilioOptions.SectionName, problems, TwilioOptions.InboundSettings);
        var twilioSection = config.GetSection(TwilioOptions.SectionName);
        if (!Given(twilioSection, TwilioOptions.InboundSettings) && Given(twilioSection, except: null))
        {
            // Only the auth token: the webhooks verify with it, SMS is sent by the sandbox.
            problems.AddRange(NudgeSettings.Bind<TwilioOptions>(config, TwilioOptions.SectionName, problems).ValidateInbound());
        }

        var apns = Bind<ApnsOptions>(config, ApnsOptions.Section, problems, inbound: null);
        var email = Bind<EmailOptions>(config, EmailOptions.Section, problems, EmailOptions.InboundSettings);

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
                var key = nudge.PublicBaseUrl is null ? TwilioOptions.SectionName + ":StatusCallbackBaseUrl" : "Nudge:PublicBaseUrl";
                problems.Add($"{key}: '{baseText}' is not an absolute http(s) URL such as https://nudge.example.com");
            }
        }

        return new ProviderSettings(fcm, twilio, apns, email, publicBase);
    }

    /// <summary>
    /// The section's settings when any is given besides <paramref name="inbound"/> ones, validated (problems added);
    /// null when none is, or when they are not usable.
    /// </summary>
    private static T? Bind<T>(IConfiguration config, string section, List<string> problems, IReadOnlySet<string>? inbound)
        where T : class, IProviderOptions, new()
    {
        if (!Given(config.GetSection(section), inbound))
        {
            return null;
        }

        var o = NudgeSettings.Bind<T>(config, section, problems);
        var found = o.Validate();
        problems.AddRange(found);
        return found.Count == 0 ? o : null;
    }

    /// <summary>True when a setting other than <paramref name="except"/> ones has a non-empty value (empty placeholders, as in local.settings.sample.json, keep the sandbox).</summary>
    private static bool Given(IConfigurationSection s, IReadOnlySet<string>? except) =>
        s.AsEnumerable(makePathsRelative: true).Any(kv => !string.IsNullOrEmpty(kv.Value) && except?.Contains(kv.Key) != true);
}
