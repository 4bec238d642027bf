using Nudge.Core.Journeys;
using static Nudge.Core.Tests.Journeys.JourneyKit;

namespace Nudge.Core.Tests.Journeys;

public class ScheduleTests
{
    private static readonly Schedule NewYork = new("America/New_York", null);

    private static readonly QuietHours Night = new(new TimeOnly(21, 0), new TimeOnly(8, 0));

    private static DateTimeOffset Utc(int month, int day, int hour, int minute = 0, int year = 2026) =>
        new(year, month, day, hour, minute, 0, TimeSpan.Zero);

    private static DateTimeOffset Next(Schedule s, DateTimeOffset after, string time, params DayOfWeek[] days) =>
        Schedule.NextLocal(after, s.ZoneOf(null), TimeOnly.Parse(time, System.Globalization.CultureInfo.InvariantCulture), days.Length == 0 ? null : days.ToHashSet());

    // ---- NextLocal ----------------------------------------------------------------------------------------------

    [Fact]
    public void NextLocal_LaterToday_ReturnsTodayInZone()
    {
        // 08:00 EDT on 2026-06-10 -> 10:00 EDT the same day = 14:00 UTC.
        Assert.Equal(Utc(6, 10, 14), Next(NewYork, Utc(6, 10, 12), "10:00"));
    }

    [Fact]
    public void NextLocal_TimeAlreadyPassedToday_ReturnsTomorrow()
    {
        // 11:00 EDT: 10:00 has passed, so 10:00 EDT on the 11th.
        Assert.Equal(Utc(6, 11, 14), Next(NewYork, Utc(6, 10, 15), "10:00"));
    }

    [Fact]
    public void NextLocal_ExactlyAtTime_ReturnsSameInstant()
    {
        Assert.Equal(Utc(6, 10, 14), Next(NewYork, Utc(6, 10, 14), "10:00"));
    }

    [Fact]
    public void NextLocal_LocalDateDiffersFromUtcDate_UsesLocalDate()
    {
        // 2026-06-11 02:00 UTC is still 22:00 EDT on the 10th: the next 23:00 local is 03:00 UTC on the 11th.
        Assert.Equal(Utc(6, 11, 3), Next(NewYork, Utc(6, 11, 2), "23:00"));
    }

    [Fact]
    public void NextLocal_InWinter_UsesStandardOffset()
    {
        // January: EST, UTC-5.
        Assert.Equal(Utc(1, 15, 15), Next(NewYork, Utc(1, 15, 12), "10:00"));
    }

    [Fact]
    public void NextLocal_SpringForwardGap_ResolvesToFirstInstantAfterGap()
    {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 does not exist that day.
        // Schedule documents "a local time skipped by a DST jump resolves to the first instant after the gap": 03:00 EDT.
        var at = Next(NewYork, Utc(3, 8, 5), "02:30"); // 00:00 EST

        Assert.Equal(Utc(3, 8, 7), at);
    }

    [Fact]
    public void NextLocal_SpringForwardGap_StaysOnTheSameDay()
    {
        var at = Next(NewYork, Utc(3, 8, 5), "02:30");

        Assert.Equal(new DateTime(2026, 3, 8), at.ToOffset(TimeSpan.FromHours(-4)).Date);
        Assert.True(at >= Utc(3, 8, 7), $"{at:O} is inside the gap");
    }

    [Fact]
    public void NextLocal_DayAfterSpringForward_UsesDaylightOffset()
    {
        // 2026-03-09 02:30 EDT = 06:30 UTC.
        Assert.Equal(Utc(3, 9, 6, 30), Next(NewYork, Utc(3, 8, 12), "02:30"));
    }

    [Fact]
    public void NextLocal_FallBackOverlap_ReturnsFirstOccurrence()
    {
        // 2026-11-01: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST); the first one counts.
        Assert.Equal(Utc(11, 1, 5, 30), Next(NewYork, Utc(11, 1, 4), "01:30"));
    }

    [Fact]
    public void NextLocal_AfterFallBack_UsesStandardOffset()
    {
        // 10:00 EST on 2026-11-01 = 15:00 UTC (it would be 14:00 UTC before the change).
        Assert.Equal(Utc(11, 1, 15), Next(NewYork, Utc(11, 1, 4), "10:00"));
    }

    [Fact]
    public void NextLocal_DayRestriction_SkipsToAllowedDay()
    {
        // 2026-06-10 is a Wednesday; the next Monday is the 15th.
        Assert.Equal(DayOfWeek.Wednesday, Utc(6, 10, 12).DayOfWeek);

        Assert.Equal(Utc(6, 15, 14), Next(NewYork, Utc(6, 10, 12), "10:00", DayOfWeek.Monday));
    }

    [Fact]
    public void NextLocal_AllowedDayButTimePassed_GoesToNextAllowedDay()
    {
        // Wednesday 11:00 EDT with Monday or Wednesday allowed: Wednesday 10:00 has passed, so Monday the 15th.
        Assert.Equal(Utc(6, 15, 14), Next(NewYork, Utc(6, 10, 15), "10:00", DayOfWeek.Monday, DayOfWeek.Wednesday));
    }

    [Fact]
    public void NextLocal_SundayAllowed_MapsIsoSunday()
    {
        // Sunday is 7 in ISO and 0 in .NET: the next Sunday 09:00 UTC after Wednesday the 10th is the 14th.
        var utc = new Schedule("UTC", null);

        Assert.Equal(Utc(6, 14, 9), Next(utc, Utc(6, 10, 12), "09:00", DayOfWeek.Sunday));
    }

    // ---- ZoneOf -------------------------------------------------------------------------------------------------

    [Fact]
    public void ZoneOf_TimezoneAttribute_UsesIt()
    {
        var s = new Schedule("UTC", null);

        Assert.Equal("Europe/Berlin", s.ZoneOf(Person("""{"timezone":"Europe/Berlin"}""")).Id);
    }

    [Theory]
    [InlineData("""{}""")]
    [InlineData("""{"timezone":"Mars/Olympus_Mons"}""")]
    [InlineData("""{"timezone":""}""")]
    [InlineData("""{"timezone":5}""")]
    public void ZoneOf_MissingOrInvalid_FallsBackToDefault(string attributes)
    {
        Assert.Equal("America/New_York", NewYork.ZoneOf(Person(attributes)).Id);
    }

    [Fact]
    public void ZoneOf_NoProfile_UsesDefault()
    {
        Assert.Equal("America/New_York", NewYork.ZoneOf(null).Id);
    }

    [Fact]
    public void Constructor_UnknownDefaultZone_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => new Schedule("Nowhere/Land", null));

        Assert.Equal("defaultZone", e.ParamName);
    }

    [Fact]
    public void IsZone_KnownAndUnknown()
    {
        Assert.True(Schedule.IsZone("Asia/Tokyo"));
        Assert.False(Schedule.IsZone("Asia/Atlantis"));
    }

    // ---- QuietUntil ---------------------------------------------------------------------------------------------

    [Fact]
    public void QuietUntil_WindowAcrossMidnightBeforeMidnight_ReturnsNextMorning()
    {
        // Person in New York, workspace default UTC. 22:30 EDT on the 10th = 02:30 UTC on the 11th; quiet ends at
        // 08:00 EDT on the 11th = 12:00 UTC.
        var s = new Schedule("UTC", Night);
        var p = Person("""{"timezone":"America/New_York"}""");

        Assert.Equal(Utc(6, 11, 12), s.QuietUntil(Utc(6, 11, 2, 30), p));
    }

    [Fact]
    public void QuietUntil_WindowAcrossMidnightAfterMidnight_ReturnsSameMorning()
    {
        // 03:00 EDT on the 11th = 07:00 UTC; quiet ends at 12:00 UTC.
        var s = new Schedule("UTC", Night);
        var p = Person("""{"timezone":"America/New_York"}""");

        Assert.Equal(Utc(6, 11, 12), s.QuietUntil(Utc(6, 11, 7), p));
    }

    [Theory]
    [InlineData(16, 0)] // 12:00 EDT
    [InlineData(12, 0)] // 08:00 EDT exactly: the window has ended
    [InlineData(0, 59)] // 20:59 EDT
    public void QuietUntil_OutsideWindow_ReturnsNull(int hourUtc, int minuteUtc)
    {
        var s = new Schedule("UTC", Night);
        var p = Person("""{"timezone":"America/New_York"}""");

        Assert.Null(s.QuietUntil(Utc(6, 11, hourUtc, minuteUtc), p));
    }

    [Fact]
    public void QuietUntil_AtWindowStart_IsInside()
    {
        // 21:00 EDT on the 10th = 01:00 UTC on the 11th.
        var s = new Schedule("UTC", Night);
        var p = Person("""{"timezone":"America/New_York"}""");

        Assert.Equal(Utc(6, 11, 12), s.QuietUntil(Utc(6, 11, 1), p));
    }

    [Fact]
    public void QuietUntil_SameInstantInAnotherZone_DependsOnPerson()
    {
        // 02:30 UTC is quiet in New York (22:30) but not in Tokyo (11:30).
        var s = new Schedule("UTC", Night);

        Assert.NotNull(s.QuietUntil(Utc(6, 11, 2, 30), Person("""{"timezone":"America/New_York"}""")));
        Assert.Null(s.QuietUntil(Utc(6, 11, 2, 30), Person("""{"timezone":"Asia/Tokyo"}""")));
    }

    [Fact]
    public void QuietUntil_NoTimezoneAttribute_UsesWorkspaceDefault()
    {
        // Default zone New York: 02:30 UTC is 22:30 EDT.
        var s = new Schedule("America/New_York", Night);

        Assert.Equal(Utc(6, 11, 12), s.QuietUntil(Utc(6, 11, 2, 30), Person()));
    }

    [Theory]
    [InlineData(13, 0, true)]
    [InlineData(12, 0, true)]
    [InlineData(13, 59, true)]
    [InlineData(14, 0, false)]
    [InlineData(11, 59, false)]
    [InlineData(23, 0, false)]
    public void QuietUntil_WindowWithinOneDay_InsideUntilEnd(int hour, int minute, bool inside)
    {
        var s = new Schedule("UTC", new QuietHours(new TimeOnly(12, 0), new TimeOnly(14, 0)));

        var until = s.QuietUntil(Utc(6, 10, hour, minute), Person());

        Assert.Equal(inside ? Utc(6, 10, 14) : null, until);
    }

    [Fact]
    public void QuietUntil_NoQuietHours_ReturnsNull()
    {
        var s = new Schedule("UTC", null);

        Assert.Null(s.QuietUntil(Utc(6, 10, 23), Person()));
        Assert.Null(s.QuietHours);
    }
}
