using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using static Nudge.Core.Tests.Journeys.JourneyKit;

namespace Nudge.Core.Tests.Journeys;

public class CapsTests
{
    private static readonly CapRule Sms2PerDay = new(Channel.Sms, 2, TimeSpan.FromHours(24));
    private static readonly CapRule Sms1PerDay = new(Channel.Sms, 1, TimeSpan.FromHours(24));
    private static readonly CapRule Sms4Per30Days = new(Channel.Sms, 4, TimeSpan.FromDays(30));

    private static SendRecord Sms(TimeSpan ago, int priority = 100, bool transactional = false) =>
        new(Channel.Sms, T0 - ago, priority, transactional);

    private static TimeSpan H(double hours) => TimeSpan.FromHours(hours);

    private static TimeSpan D(double days) => TimeSpan.FromDays(days);

    [Fact]
    public void Check_NoHistory_Allows()
    {
        Assert.Null(new FrequencyCaps([Sms2PerDay]).Check(Channel.Sms, 100, T0, []));
    }

    [Fact]
    public void Check_BelowCount_Allows()
    {
        Assert.Null(new FrequencyCaps([Sms2PerDay]).Check(Channel.Sms, 100, T0, [Sms(H(1))]));
    }

    [Fact]
    public void Check_ExactlyAtCount_BlocksUntilOldestLeavesWindow()
    {
        var capped = new FrequencyCaps([Sms2PerDay]).Check(Channel.Sms, 100, T0, [Sms(H(1)), Sms(H(23))]);

        Assert.NotNull(capped);
        Assert.Equal(T0 + H(1), capped.Value.Until); // the send 23 h ago leaves the 24 h window in 1 h
        Assert.Equal(Sms2PerDay, capped.Value.Rule);
    }

    [Fact]
    public void Check_OverCount_FreeWhenEnoughHaveLeft()
    {
        // Three in the window with a limit of two: both the -20h and the -10h sends must leave, so -10h + 24h.
        var capped = new FrequencyCaps([Sms2PerDay]).Check(Channel.Sms, 100, T0, [Sms(H(1)), Sms(H(20)), Sms(H(10))]);

        Assert.Equal(T0 + H(14), capped?.Until);
    }

    [Fact]
    public void Check_SendOutsideRollingWindow_DoesNotCount()
    {
        Assert.Null(new FrequencyCaps([Sms2PerDay]).Check(Channel.Sms, 100, T0, [Sms(H(1)), Sms(H(25))]));
    }

    [Fact]
    public void Check_SendExactlyOneWindowAgo_HasLeftTheWindow()
    {
        Assert.Null(new FrequencyCaps([Sms2PerDay]).Check(Channel.Sms, 100, T0, [Sms(H(1)), Sms(H(24))]));
    }

    [Fact]
    public void Check_AtUntil_Allows()
    {
        var caps = new FrequencyCaps([Sms2PerDay]);
        List<SendRecord> history = [Sms(H(1)), Sms(H(23))];
        var until = caps.Check(Channel.Sms, 100, T0, history)!.Value.Until;

        Assert.Null(caps.Check(Channel.Sms, 100, until, history));
        Assert.NotNull(caps.Check(Channel.Sms, 100, until - TimeSpan.FromSeconds(1), history));
    }

    [Fact]
    public void Check_TwoRulesDailyLater_ReportsDailyRule()
    {
        // 4/30d frees up in 30 min (the send 29d23h30m ago leaves); 1/24h frees up in 23 h: 23 h wins.
        var caps = new FrequencyCaps([Sms1PerDay, Sms4Per30Days]);

        var capped = caps.Check(Channel.Sms, 100, T0, [Sms(D(30) - TimeSpan.FromMinutes(30)), Sms(D(10)), Sms(D(5)), Sms(H(1))]);

        Assert.Equal(T0 + H(23), capped?.Until);
        Assert.Equal(Sms1PerDay, capped?.Rule);
    }

    [Fact]
    public void Check_TwoRulesMonthlyLater_ReportsMonthlyRule()
    {
        // 1/24h frees up in 22 h; 4/30d frees up when the send 29 days ago leaves, in 1 day: 1 day wins.
        var caps = new FrequencyCaps([Sms1PerDay, Sms4Per30Days]);

        var capped = caps.Check(Channel.Sms, 100, T0, [Sms(D(29)), Sms(D(20)), Sms(D(10)), Sms(H(2))]);

        Assert.Equal(T0 + D(1), capped?.Until);
        Assert.Equal(Sms4Per30Days, capped?.Rule);
    }

    [Fact]
    public void Check_MonthlyRuleOnly_BlocksWhenDailyWouldAllow()
    {
        var caps = new FrequencyCaps([Sms1PerDay, Sms4Per30Days]);

        var capped = caps.Check(Channel.Sms, 100, T0, [Sms(D(28)), Sms(D(20)), Sms(D(10)), Sms(D(2))]);

        Assert.Equal(T0 + D(2), capped?.Until);
        Assert.Equal(Sms4Per30Days, capped?.Rule);
    }

    [Theory]
    [InlineData(99, false)]
    [InlineData(100, true)]
    [InlineData(1000, true)]
    public void Check_PriorityOfPastSend_OnlyEqualOrHigherCounts(int pastPriority, bool blocked)
    {
        var capped = new FrequencyCaps([Sms1PerDay]).Check(Channel.Sms, 100, T0, [Sms(H(1), pastPriority)]);

        Assert.Equal(blocked, capped is not null);
    }

    [Fact]
    public void Check_TransactionalPastSend_DoesNotCount()
    {
        Assert.Null(new FrequencyCaps([Sms1PerDay]).Check(Channel.Sms, 100, T0, [Sms(H(1), 1000, transactional: true)]));
    }

    [Fact]
    public void Check_OtherChannelSends_DoNotCount()
    {
        var caps = new FrequencyCaps([Sms1PerDay]);

        Assert.Null(caps.Check(Channel.Sms, 100, T0, [new SendRecord(Channel.Push, T0 - H(1), 100, false), new SendRecord(Channel.Email, T0 - H(1), 100, false)]));
    }

    [Fact]
    public void Check_ChannelWithoutRules_Allows()
    {
        var caps = new FrequencyCaps([Sms1PerDay]);

        Assert.Null(caps.Check(Channel.Push, 100, T0, [new SendRecord(Channel.Push, T0 - H(1), 100, false), new SendRecord(Channel.Push, T0 - H(2), 100, false)]));
    }

    [Fact]
    public void Check_FutureSends_DoNotCount()
    {
        Assert.Null(new FrequencyCaps([Sms1PerDay]).Check(Channel.Sms, 100, T0, [Sms(-H(1))]));
    }

    [Fact]
    public void Horizon_LongestWindow()
    {
        Assert.Equal(D(30), new FrequencyCaps([Sms1PerDay, Sms4Per30Days]).Horizon);
        Assert.Equal(TimeSpan.Zero, new FrequencyCaps([]).Horizon);
    }
}
