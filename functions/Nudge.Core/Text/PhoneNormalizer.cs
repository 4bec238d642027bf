using PhoneNumbers;

namespace Nudge.Core.Text;

/// <summary>Turns phone numbers as people type them into E.164, using a default region for numbers without a country code.</summary>
public sealed class PhoneNormalizer(string defaultRegion)
{
    private static readonly PhoneNumberUtil Util = PhoneNumberUtil.GetInstance();

    public string DefaultRegion { get; } = defaultRegion;

    /// <summary>Returns the E.164 form, or null with a reason when the number is not a valid phone number.</summary>
    public string? ToE164(string raw, out string? problem)
    {
        problem = null;
        try
        {
            var number = Util.Parse(raw, DefaultRegion);
            if (!Util.IsValidNumber(number))
            {
                problem = $"'{raw}' is not a valid phone number (read with default region {DefaultRegion})";
                return null;
            }

            return Util.Format(number, PhoneNumberFormat.E164);
        }
        catch (NumberParseException e)
        {
            problem = $"'{raw}' is not a phone number: {e.ErrorType}";
            return null;
        }
    }
}
