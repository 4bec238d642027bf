using System.Globalization;
using Nudge.Core.Journeys;

namespace Nudge.Host.Hosting;

/// <summary>Loads journey files and engine settings at start-up; anything invalid stops start-up with a precise message.</summary>
public static class JourneySetup
{
    /// <exception cref="JourneyValidationException">A journey file is invalid (message names file, line, path).</exception>
    /// <exception cref="InvalidOperationException">A Nudge:Journeys setting is invalid.</exception>
    public static (IReadOnlyList<JourneyDefinition> Journeys, EngineOptions Options) Load(JourneyOptions o)
    {
        var dir = Path.GetFullPath(o.Dir);
        var files = Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal).Select(f => (Path.GetRelativePath(Directory.GetCurrentDirectory(), f), File.ReadAllText(f))).ToList()
            : [];
        var journeys = JourneyLoader.LoadAll(files);

        if (!Schedule.IsZone(o.DefaultTimeZone))
        {
            throw new InvalidOperationException($"Nudge:Journeys:DefaultTimeZone: '{o.DefaultTimeZone}' is not an IANA time zone (e.g. America/New_York)");
        }

        QuietHours? quiet = null;
        if (!string.IsNullOrEmpty(o.QuietHoursStart) || !string.IsNullOrEmpty(o.QuietHoursEnd))
        {
            quiet = new QuietHours(Time(o.QuietHoursStart, "QuietHoursStart"), Time(o.QuietHoursEnd, "QuietHoursEnd"));
        }

        var caps = (o.Caps ?? JourneyOptions.DefaultCaps).Select((c, i) => Cap(c, i)).ToList();
        return (journeys, new EngineOptions(new FrequencyCaps(caps), new Schedule(o.DefaultTimeZone, quiet)));
    }

    private static TimeOnly Time(string value, string name) =>
        TimeOnly.TryParseExact(value, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var t)
            ? t
            : throw new InvalidOperationException($"Nudge:Journeys:{name}: '{value}' is not a time of day as HH:mm");

    private static CapRule Cap(string text, int index) =>
        CapRule.TryParse(text, out var rule)
            ? rule
            : throw new InvalidOperationException($"Nudge:Journeys:Caps:{index}: '{text}' is not channel:count/window, e.g. sms:1/24h");

}
