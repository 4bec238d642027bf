using Nudge.Core.Messages;
using Nudge.Core.Storage;

namespace Nudge.Core.Reports;

/// <summary>Share of active people who can receive push: the ceiling on what push can earn.</summary>
/// <param name="Since">Active means an event or a device use at or after this time.</param>
/// <param name="Active">People active since then.</param>
/// <param name="WithToken">Of them, people with at least one push-enabled device.</param>
/// <param name="Coverage">WithToken / Active (4 decimals), null when nobody was active.</param>
/// <param name="ByPlatform">People with a push-enabled device on each platform (a person with both counts in both).</param>
public sealed record TokenCoverage(DateTimeOffset Since, long Active, long WithToken, double? Coverage, IReadOnlyDictionary<string, long> ByPlatform);

/// <summary>
/// The people lists of the delivery-health view, named as the seed documents name them. Each is a set of profile keys
/// in key order; callers page through it with <see cref="Page"/>.
/// </summary>
public static class Segments
{
    /// <summary>Active people with a push-enabled device.</summary>
    public const string HasToken = "has_token";

    /// <summary>Active people without one (push cannot reach them: fall back to SMS or email).</summary>
    public const string NoToken = "no_token";

    /// <summary>People with a message that reached them (delivered, opened, clicked) in the range.</summary>
    public const string RecentlyDelivered = "recently_delivered";

    /// <summary>People with a delivery failure in the range (see <see cref="IsFailure"/>).</summary>
    public const string DeliveryFailures = "delivery_failures";

    /// <summary>"Did not receive but qualified": people a journey meant to message in the range (not held out) whom nothing reached.</summary>
    public const string NotDelivered = "not_delivered";

    public static readonly IReadOnlyList<string> All = [HasToken, NoToken, RecentlyDelivered, DeliveryFailures, NotDelivered];

    /// <summary>Reasons that are Nudge's own policy, not a failure to deliver: holdout, caps, quiet hours, suppression, fallback.</summary>
    public static readonly IReadOnlySet<string> PolicyReasons = new HashSet<string>(StringComparer.Ordinal)
    {
        MessageReason.Holdout, MessageReason.FrequencyCapped, MessageReason.QuietHours, MessageReason.Suppressed, MessageReason.FellBack,
    };

    /// <summary>True for segments computed from people's activity and devices rather than from delivery events.</summary>
    public static bool FromActivity(string segment) => segment is HasToken or NoToken;

    /// <summary>
    /// A delivery failure: bounced, dropped or failed, or undeliverable for a reason that is not policy
    /// (<see cref="PolicyReasons"/>): no device, consent missing, invalid token, provider rejection...
    /// </summary>
    public static bool IsFailure(DeliveryEvent e) =>
        e.Metric is MessageStatus.Bounced or MessageStatus.Dropped or MessageStatus.Failed
        || (e.Metric == MessageStatus.Undeliverable && !PolicyReasons.Contains(BaseReason(e.Reason)));

    /// <summary>Token coverage of <paramref name="people"/> (everyone active since <paramref name="since"/>).</summary>
    public static TokenCoverage Coverage(IReadOnlyList<PersonActivity> people, DateTimeOffset since)
    {
        var withToken = people.Count(p => p.PushPlatforms.Count > 0);
        var byPlatform = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var platform in people.SelectMany(p => p.PushPlatforms.Distinct(StringComparer.Ordinal)))
        {
            byPlatform[platform] = byPlatform.GetValueOrDefault(platform) + 1;
        }

        return new TokenCoverage(since, people.Count, withToken, DeliveryReportBuilder.Ratio(withToken, people.Count), byPlatform);
    }

    /// <summary>Members of <see cref="HasToken"/> or <see cref="NoToken"/>, by key.</summary>
    public static IReadOnlyList<string> FromPeople(string segment, IEnumerable<PersonActivity> people) =>
        [.. people.Where(p => (p.PushPlatforms.Count > 0) == (segment == HasToken)).Select(p => p.ProfileKey).Order(StringComparer.Ordinal)];

    /// <summary>
    /// Members of an event-based segment over <paramref name="events"/> (the range's events, on <paramref name="channel"/>
    /// only when given), by key.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="segment"/> is not an event-based segment.</exception>
    public static IReadOnlyList<string> FromEvents(string segment, IEnumerable<DeliveryEvent> events, string? channel, AttributionRule rule)
    {
        var reached = new HashSet<string>(StringComparer.Ordinal);
        var failed = new HashSet<string>(StringComparer.Ordinal);
        var meant = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in events)
        {
            // An erased person's kept events count in reports but name nobody, so they are in no segment.
            if ((channel is not null && e.Channel != channel) || e.ProfileKey == Storage.Erasure.ErasedKey)
            {
                continue;
            }

            if (rule.Reaches(e.Channel, e.Metric))
            {
                reached.Add(e.ProfileKey);
            }

            if (IsFailure(e))
            {
                failed.Add(e.ProfileKey);
            }

            if (!e.Holdout)
            {
                meant.Add(e.ProfileKey);
            }
        }

        IEnumerable<string> members = segment switch
        {
            RecentlyDelivered => reached,
            DeliveryFailures => failed,
            NotDelivered => meant.Except(reached),
            _ => throw new ArgumentException($"'{segment}' is not a segment of delivery events", nameof(segment)),
        };
        return [.. members.Order(StringComparer.Ordinal)];
    }

    /// <summary>The members after <paramref name="after"/> (a key of the previous page; null: from the start), at most <paramref name="limit"/>.</summary>
    public static IReadOnlyList<string> Page(IReadOnlyList<string> sortedKeys, string? after, int limit)
    {
        var start = 0;
        if (after is not null)
        {
            // Binary search on the ordinal order: the first key greater than the cursor.
            int lo = 0, hi = sortedKeys.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                if (string.CompareOrdinal(sortedKeys[mid], after) <= 0)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            start = lo;
        }

        return [.. sortedKeys.Skip(start).Take(limit)];
    }

    /// <summary>The reason without its detail ("provider_rejected: 30007" -> "provider_rejected").</summary>
    private static string BaseReason(string? reason) =>
        reason is null ? "" : reason.Split([':', ' '], 2)[0];
}
