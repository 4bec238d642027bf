using System.Globalization;
using Nudge.Core.Journeys;

namespace Nudge.Host.Hosting;

/// <summary>Loads journey files and engine settings at start-up; anything invalid stops start-up with a precise message.</summary>
public static class JourneySetup
{
    /// <exception cref="NudgeConfigurationException">
    /// A journey file is invalid (each problem names file, line and path), or a Nudge:Journeys setting is; every problem is listed.
    /// </exception>
    public static (IReadOnlyList<JourneyDefinition> Journeys, EngineOptions Options) Load(JourneyOptions o)
    {
        var problems = new List<string>();
        var dir = Path.GetFullPath(o.Dir);
        IReadOnlyList<JourneyDefinition> journeys = [];
        try
        {
            var files = Directory.Exists(dir)
                ? Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal).Select(f => (Path.GetRelativePath(Directory.GetCurrentDirectory(), f), File.ReadAllText(f))).ToList()
                : [];
            journeys = JourneyLoader.LoadAll(files);
        }
        catch (JourneyValidationException e)
        {
            problems.AddRange(e.Problems.Select(p => p.ToString()));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"Nudge:Journeys:Dir: cannot read the journey files in {dir} ({e.Message})");
        }

        if (!Schedule.IsZone(o.DefaultTimeZone))
        {
            problems.Add($"Nudge:Journeys:DefaultTimeZone: '{o.DefaultTimeZone}' is not an IANA time zone (e.g. America/New_York)");
        }

        QuietHours? quiet = null;
        if (!string.IsNullOrEmpty(o.QuietHoursStart) || !string.IsNullOrEmpty(o.QuietHoursEnd))
        {
            var start = Time(o.QuietHoursStart, "QuietHoursStart", problems);
            var end = Time(o.QuietHoursEnd, "QuietHoursEnd", problems);
            quiet = start is { } s && end is { } e ? new QuietHours(s, e) : null;
        }

        var caps = new List<CapRule>();
        foreach (var (text, i) in (o.Caps ?? JourneyOptions.DefaultCaps).Select((c, i) => (c, i)))
        {
            if (CapRule.TryParse(text, out var rule))
            {
                caps.Add(rule);
            }
            else
            {
                problems.Add($"Nudge:Journeys:Caps:{i}: '{text}' is not channel:count/window, e.g. sms:1/24h");
            }
        }

        NudgeConfigurationException.ThrowIfAny(problems);
        return (journeys, new EngineOptions(new FrequencyCaps(caps), new Schedule(o.DefaultTimeZone, quiet)));
    }

    private static TimeOnly? Time(string value, string name, List<string> problems)
    {
        if (TimeOnly.TryParseExact(value, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var t))
        {
            return t;
        }

        problems.Add($"Nudge:Journeys:{name}: '{value}' is not a time of day as HH:mm (both QuietHoursStart and QuietHoursEnd, or both empty)");
        return null;
    }
}
