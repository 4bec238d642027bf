using Nudge.Delivery.Resilience;

namespace Nudge.Delivery.Tests.Resilience;

public class RetryPolicyTests
{
    private readonly RetryPolicy _policy = new();

    [Theory]
    [InlineData(1, 30)]
    [InlineData(2, 60)]
    [InlineData(3, 120)]
    [InlineData(5, 480)]
    public void Backoff_DoublesFrom30Seconds_WithJitterBetweenHalfAndAll(int attempts, int stepSeconds)
    {
        var random = new Random(1);
        for (var i = 0; i < 200; i++)
        {
            var wait = _policy.Next(attempts, null, random)!.Value;
            Assert.InRange(wait.TotalSeconds, stepSeconds / 2.0, stepSeconds);
        }
    }

    [Fact]
    public void Jitter_SpreadsRetriesOfOneOutage()
    {
        var random = new Random(2);
        var waits = Enumerable.Range(0, 100).Select(_ => _policy.Next(1, null, random)!.Value).ToHashSet();

        Assert.True(waits.Count > 90);
    }

    [Fact]
    public void Backoff_IsCappedAtOneHour()
    {
        var policy = new RetryPolicy(MaxAttempts: 20);

        Assert.InRange(policy.Next(15, null, new Random(3))!.Value, TimeSpan.FromMinutes(30), TimeSpan.FromHours(1));
    }

    [Fact]
    public void RetryAfter_IsNeverUndercut()
    {
        Assert.Equal(TimeSpan.FromMinutes(10), _policy.Next(1, TimeSpan.FromMinutes(10), new Random(4)));
    }

    [Fact]
    public void AfterTheLastAttempt_OrARetryAfterOverSixHours_GivesUp()
    {
        Assert.Null(_policy.Next(6, null, new Random(5)));
        Assert.NotNull(_policy.Next(5, null, new Random(5)));
        Assert.Null(_policy.Next(1, TimeSpan.FromHours(7), new Random(5)));
    }
}
