using Nudge.Delivery;
using Nudge.Delivery.Fcm;
using Nudge.Delivery.Sandbox;
using Nudge.Delivery.Twilio;
using Nudge.Pipeline;

namespace Nudge.Host.Hosting;

/// <summary>
/// Builds the channels from Nudge:Providers:*. A provider whose section is absent leaves its channel in the sandbox;
/// a section that is present must be valid, or start-up stops with every problem listed (never a secret's value).
/// </summary>
public static class DeliverySetup
{
    public static (ChannelSet Channels, SendOptions Options) Load(IConfiguration config, NudgeOptions nudge, TimeProvider time)
    {
        var problems = new List<string>();
        var sandbox = new SandboxProvider();

        IPushProvider android = sandbox;
        if (Bind<FcmOptions>(config, FcmOptions.SectionName, problems) is { } fcm)
        {
            android = new FcmProvider(fcm, time);
        }

        ISmsProvider sms = sandbox;
        TwilioOptions? twilio = null;
        if (Bind<TwilioOptions>(config, TwilioOptions.SectionName, problems) is { } t)
        {
            (twilio, sms) = (t, new TwilioProvider(t, time));
        }

        IPushProvider ios = sandbox;
        IEmailProvider email = sandbox;

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

        if (problems.Count > 0)
        {
            throw new InvalidOperationException("Provider settings are invalid:" + string.Concat(problems.Select(p => Environment.NewLine + "  - " + p)));
        }

        return (new ChannelSet(ios, android, sms, email, time), new SendOptions { PublicBaseUrl = publicBase });
    }

    /// <summary>Which provider each channel uses, for the start-up banner.</summary>
    public static string Describe(ChannelSet c) =>
        $"push iOS -> {c.Ios.Name}, push Android -> {c.Android.Name}, SMS -> {c.Sms.Name}, email -> {c.Email.Name}";

    private static T? Bind<T>(IConfiguration config, string section, List<string> problems)
        where T : class, new()
    {
        var s = config.GetSection(section);
        if (!s.GetChildren().Any())
        {
            return null;
        }

        var o = new T();
        s.Bind(o);
        var found = o switch
        {
            FcmOptions f => f.Validate(),
            TwilioOptions t => t.Validate(),
            _ => [],
        };
        problems.AddRange(found);
        return found.Count == 0 ? o : null;
    }
}
