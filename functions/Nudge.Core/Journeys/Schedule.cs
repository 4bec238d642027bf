using NodaTime;
using NodaTime.TimeZones;
using Nudge.Core.Profiles;

namespace Nudge.Core.Journeys;

/// <summary>
/// Time-zone arithmetic for the recipient's local time (IANA zone from the "timezone" attribute, else the workspace
/// default). Uses NodaTime's bundled tz database, so results do not depend on the host's zone files.
/// </summary>
public sealed class Schedule(string defaultZone, QuietHours? quietHours)
{
    public const string TimeZoneAttribute = "timezone";

    private readonly DateTimeZone _default = DateTimeZoneProviders.Tzdb.GetZoneOrNull(defaultZone)
        ?? throw new ArgumentException($"'{defaultZone}' is not an IANA time zone", nameof(defaultZone));

    public QuietHours? QuietHours { get; } = quietHours;

    public static bool IsZone(string id) => DateTimeZoneProviders.Tzdb.GetZoneOrNull(id) is not null;

    public DateTimeZone ZoneOf(Profile? p) =>
        p?.GetString(TimeZoneAttribute) is { } id && DateTimeZoneProviders.Tzdb.GetZoneOrNull(id) is { } z ? z : _default;

    /// <summary>
    /// The first instant at or after <paramref name="after"/> whose local time is <paramref name="time"/> (on an allowed day).
    /// A local time skipped by a DST jump resolves to the first instant after the gap; a repeated one to its first occurrence.
    /// </summary>
    public static DateTimeOffset NextLocal(DateTimeOffset after, DateTimeZone zone, TimeOnly time, IReadOnlySet<DayOfWeek>? days)
    {
        var local = Instant.FromDateTimeOffset(after).InZone(zone).LocalDateTime;
        var date = local.Date;
        var at = new LocalTime(time.Hour, time.Minute);
        for (var i = 0; i < 15; i++, date = date.PlusDays(1))
        {
            if (days is not null && !days.Contains(BclDay(date.DayOfWeek)))
            {
                continue;
            }

            var candidate = zone.ResolveLocal(date + at, GapToEnd).ToInstant().ToDateTimeOffset();
            if (candidate >= after)
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("no allowed day within two weeks");
    }

    /// <summary>When the quiet window containing <paramref name="at"/> ends, or null when <paramref name="at"/> is outside it.</summary>
    public DateTimeOffset? QuietUntil(DateTimeOffset at, Profile? p)
    {
        if (QuietHours is not { } q)
        {
            return null;
        }

        var zone = ZoneOf(p);
        var lt = Instant.FromDateTimeOffset(at).InZone(zone).TimeOfDay;
        var local = new TimeOnly(lt.Hour, lt.Minute, lt.Second);
        var inside = q.Start <= q.End ? local >= q.Start && local < q.End : local >= q.Start || local < q.End;
        return inside ? NextLocal(at, zone, q.End, null) : null;
    }

    /// <summary>Ambiguous local times take the first occurrence; skipped ones the first instant after the gap.</summary>
    private static readonly ZoneLocalMappingResolver GapToEnd =
        Resolvers.CreateMappingResolver(Resolvers.ReturnEarlier, Resolvers.ReturnStartOfIntervalAfter);

    private static DayOfWeek BclDay(IsoDayOfWeek d) => d == IsoDayOfWeek.Sunday ? DayOfWeek.Sunday : (DayOfWeek)(int)d;
}

/// <summary>A daily local-time window in which non-transactional sends wait or are skipped (e.g. 21:00 to 08:00).</summary>
public sealed record QuietHours(TimeOnly Start, TimeOnly End);
