namespace Nudge.Host.Hosting;

/// <summary>
/// Settings under "Nudge:Retention": how long Nudge keeps what it records. A purge (the embedded retention worker, or
/// the reporting function in Azure) deletes older data about once an hour.
/// </summary>
public sealed class RetentionOptions
{
    /// <summary>Longest accepted setting: 36,500 days (100 years).</summary>
    public const int MaxDays = 36_500;

    /// <summary>Events (track, page, screen, identity and device diagnostics) are kept this many days after their timestamp: 180.</summary>
    public int EventsDays { get; set; } = 180;

    /// <summary>
    /// Messages, their delivery events (what reports count) and sandbox outbox entries are kept this many days: 365.
    /// Reports over a range that starts earlier say they are incomplete.
    /// </summary>
    public int MessagesDays { get; set; } = 365;

    /// <summary>Every problem, by setting name; empty when usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (EventsDays is < 1 or > MaxDays)
        {
            problems.Add($"Nudge:Retention:EventsDays must be between 1 and {MaxDays} days (it is {EventsDays})");
        }

        if (MessagesDays is < 1 or > MaxDays)
        {
            problems.Add($"Nudge:Retention:MessagesDays must be between 1 and {MaxDays} days (it is {MessagesDays})");
        }

        return problems;
    }
}
