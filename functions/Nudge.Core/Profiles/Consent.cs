namespace Nudge.Core.Profiles;

/// <summary>
/// Consent and eligibility read from a profile's attributes. The attribute names are the public contract:
/// <c>sms_consent</c> (bool), <c>sms_consent_at</c> (ISO time, set by Nudge), <c>sms_consent_ip</c>, <c>sms_phone</c> or
/// <c>phone</c> (E.164 after normalisation), <c>unsubscribed</c> (email, Customer.io's name), <c>push_opt_in</c> (bool),
/// <c>test_profile</c> (bool).
/// </summary>
public sealed record Consent(
    bool? SmsConsent,
    string? SmsConsentAt,
    string? SmsConsentIp,
    string? SmsPhone,
    bool EmailUnsubscribed,
    bool? PushOptIn,
    bool TestProfile)
{
    public const string SmsConsentAttr = "sms_consent";
    public const string SmsConsentAtAttr = "sms_consent_at";
    public const string SmsConsentIpAttr = "sms_consent_ip";
    public const string SmsPhoneAttr = "sms_phone";
    public const string PhoneAttr = "phone";
    public const string UnsubscribedAttr = "unsubscribed";
    public const string PushOptInAttr = "push_opt_in";
    public const string TestProfileAttr = "test_profile";

    /// <summary>Attributes whose value must be a JSON boolean.</summary>
    public static readonly IReadOnlySet<string> BooleanAttributes =
        new HashSet<string>(StringComparer.Ordinal) { SmsConsentAttr, UnsubscribedAttr, PushOptInAttr, TestProfileAttr };

    /// <summary>Attributes holding phone numbers, normalised to E.164 at ingest.</summary>
    public static readonly IReadOnlySet<string> PhoneAttributes =
        new HashSet<string>(StringComparer.Ordinal) { SmsPhoneAttr, PhoneAttr };

    /// <summary>Attributes that record consent changes in <see cref="Profile.ConsentHistory"/>.</summary>
    public static readonly IReadOnlySet<string> TrackedAttributes =
        new HashSet<string>(StringComparer.Ordinal) { SmsConsentAttr, UnsubscribedAttr, PushOptInAttr };

    internal static Consent From(Profile p) => new(
        p.Get(SmsConsentAttr) is null ? null : p.GetBool(SmsConsentAttr),
        p.GetString(SmsConsentAtAttr),
        p.GetString(SmsConsentIpAttr),
        p.GetString(SmsPhoneAttr) ?? p.GetString(PhoneAttr),
        p.GetBool(UnsubscribedAttr),
        p.Get(PushOptInAttr) is null ? null : p.GetBool(PushOptInAttr),
        p.GetBool(TestProfileAttr));
}
