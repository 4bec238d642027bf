using Nudge.Core.Messages;

namespace Nudge.Core.Journeys;

/// <summary>At most <paramref name="Count"/> sends of a channel within <paramref name="Window"/> (rolling).</summary>
public sealed partial record CapRule(Channel Channel, int Count, TimeSpan Window)
{
    /// <summary>Reads "channel:count/window", e.g. "sms:1/24h" or "push:3/1d".</summary>
    public static bool TryParse(string text, out CapRule rule)
    {
        rule = null!;
        var m = Pattern().Match(text);
        if (!m.Success || !Enum.TryParse<Channel>(m.Groups[1].Value, ignoreCase: true, out var channel)
            || !Durations.TryParse(m.Groups[3].Value, out var window) || window <= TimeSpan.Zero
            || !int.TryParse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture, out var count) || count < 1)
        {
            return false;
        }

        rule = new CapRule(channel, count, window);
        return true;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^(push|sms|email):(\d{1,6})/(\S+)$")]
    private static partial System.Text.RegularExpressions.Regex Pattern();
}

/// <summary>
/// Global frequency caps. A send is checked against past sends of the same channel from journeys of equal or higher
/// priority, so a browse reminder never blocks a cart recovery, while a cart recovery does count against browse.
/// Transactional journeys are exempt and their sends are not counted.
/// </summary>
public sealed class FrequencyCaps(IReadOnlyList<CapRule> rules)
{
    public IReadOnlyList<CapRule> Rules { get; } = rules;

    /// <summary>The longest window, i.e. how much send history the check needs.</summary>
    public TimeSpan Horizon => Rules.Count == 0 ? TimeSpan.Zero : Rules.Max(r => r.Window);

    /// <summary>Null when the send may go now; otherwise the earliest time it could go and the rule that blocks it.</summary>
    public (DateTimeOffset Until, CapRule Rule)? Check(Channel channel, int priority, DateTimeOffset now, IEnumerable<SendRecord> history)
    {
        var relevant = history.Where(h => h.Channel == channel && !h.Transactional && h.Priority >= priority && h.At <= now).ToList();
        (DateTimeOffset Until, CapRule Rule)? worst = null;
        foreach (var rule in Rules.Where(r => r.Channel == channel))
        {
            var inWindow = relevant.Where(h => h.At > now - rule.Window).OrderBy(h => h.At).ToList();
            if (inWindow.Count < rule.Count)
            {
                continue;
            }

            // Free again when enough of the oldest sends have left the window.
            var until = inWindow[inWindow.Count - rule.Count].At + rule.Window;
            if (worst is null || until > worst.Value.Until)
            {
                worst = (until, rule);
            }
        }

        return worst;
    }
}
