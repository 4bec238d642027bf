using Nudge.Core.Profiles;

namespace Nudge.Core.Storage;

/// <summary>Builds <see cref="PersonActivity"/> records the same way in every store.</summary>
public static class PersonActivities
{
    /// <summary>
    /// Everyone with an event at or after <paramref name="since"/> (<paramref name="lastEventMs"/>: profile key -> newest
    /// event time, Unix ms) or a device used from then on, with the platforms of their push-enabled devices, by key.
    /// Bounced tokens need no check here: the send stage removes a bounced token from its person.
    /// </summary>
    public static IReadOnlyList<PersonActivity> Combine(IReadOnlyDictionary<string, long> lastEventMs, IEnumerable<Device> devices, DateTimeOffset since)
    {
        var last = lastEventMs.ToDictionary(kv => kv.Key, kv => DateTimeOffset.FromUnixTimeMilliseconds(kv.Value), StringComparer.Ordinal);
        var platforms = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var d in devices)
        {
            if (d.LastUsed >= since && (!last.TryGetValue(d.ProfileKey, out var t) || d.LastUsed > t))
            {
                last[d.ProfileKey] = d.LastUsed;
            }

            if (d.PushEnabled)
            {
                if (!platforms.TryGetValue(d.ProfileKey, out var list))
                {
                    platforms[d.ProfileKey] = list = [];
                }

                list.Add(d.Platform);
            }
        }

        return [.. last.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new PersonActivity(kv.Key, kv.Value,
            platforms.TryGetValue(kv.Key, out var p) ? [.. p.Order(StringComparer.Ordinal)] : []))];
    }
}
