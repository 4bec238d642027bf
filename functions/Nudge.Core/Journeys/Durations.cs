using System.Globalization;
using System.Text.RegularExpressions;

namespace Nudge.Core.Journeys;

/// <summary>Durations written as in journey files: 30m, 4h, 20h, 21d, 1h30m, 90s, optionally with a leading minus.</summary>
public static partial class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        var m = Pattern().Match(text.Trim());
        if (!m.Success || m.Groups[2].Length + m.Groups[3].Length + m.Groups[4].Length + m.Groups[5].Length == 0)
        {
            return false;
        }

        long Part(int g) => m.Groups[g].Success ? long.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture) : 0;
        value = TimeSpan.FromDays(Part(2)) + TimeSpan.FromHours(Part(3)) + TimeSpan.FromMinutes(Part(4)) + TimeSpan.FromSeconds(Part(5));
        if (m.Groups[1].Value == "-")
        {
            value = -value;
        }

        return true;
    }

    public static string Format(TimeSpan t)
    {
        var sign = t < TimeSpan.Zero ? "-" : "";
        t = t.Duration();
        var s = (t.Days > 0 ? $"{t.Days}d" : "") + (t.Hours > 0 ? $"{t.Hours}h" : "") + (t.Minutes > 0 ? $"{t.Minutes}m" : "") + (t.Seconds > 0 ? $"{t.Seconds}s" : "");
        return sign + (s.Length == 0 ? "0s" : s);
    }

    [GeneratedRegex(@"^(-?)(?:(\d{1,5})d)?(?:(\d{1,6})h)?(?:(\d{1,7})m)?(?:(\d{1,9})s)?$")]
    private static partial Regex Pattern();
}
