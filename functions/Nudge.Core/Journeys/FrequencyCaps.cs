using Nudge.Core.Messages;

namespace Nudge.Core.Journeys;

/// <summary>At most <paramref name="Count"/> sends of a channel within <paramref name="Window"/> (rolling).</summary>
public sealed record CapRule(Channel Channel, int Count, TimeSpan Window);

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
