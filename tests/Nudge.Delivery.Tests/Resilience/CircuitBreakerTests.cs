using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Resilience;

namespace Nudge.Delivery.Tests.Resilience;

public class CircuitBreakerTests
{
    private static readonly SendOutcome Down = SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "503");
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private CircuitBreaker Breaker() => new("apns", _clock);

    private static void Fail(CircuitBreaker b, int times)
    {
        for (var i = 0; i < times; i++)
        {
            Assert.Null(b.Blocked());
            b.Record(Down);
        }
    }

    [Fact]
    public void FiveTransientFailuresInARow_OpenItFor30Seconds()
    {
        var b = Breaker();
        Fail(b, 4);
        Assert.Equal("closed", b.State);

        Fail(b, 1);

        Assert.Equal("open", b.State);
        Assert.Equal(TimeSpan.FromSeconds(30), b.Blocked());
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.FromSeconds(20), b.Blocked());
    }

    [Fact]
    public void ASuccessInBetween_StartsTheCountAgain()
    {
        var b = Breaker();
        Fail(b, 4);
        b.Record(SendOutcome.Sent("id"));
        Fail(b, 4);

        Assert.Equal("closed", b.State);
    }

    [Theory]
    [InlineData(OutcomeKind.InvalidToken)]
    [InlineData(OutcomeKind.Permanent)]
    public void AnswersAboutTheMessage_AreNotFailures(OutcomeKind kind)
    {
        var b = Breaker();
        for (var i = 0; i < 20; i++)
        {
            b.Record(new SendOutcome(kind, null, DeliveryReason.ProviderRejected, "BadDeviceToken", null));
        }

        Assert.Equal("closed", b.State);
    }

    [Fact]
    public void RateLimits_NeitherOpenNorClose()
    {
        var b = Breaker();
        Fail(b, 4);
        b.Record(SendOutcome.RateLimited(TimeSpan.FromSeconds(1), "429"));
        Fail(b, 1);

        Assert.Equal("open", b.State);
    }

    [Fact]
    public void HalfOpen_LetsOneTrialThrough_SuccessCloses()
    {
        var b = Breaker();
        Fail(b, 5);
        _clock.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal("half_open", b.State);
        Assert.Null(b.Blocked());                       // the trial
        Assert.Equal(TimeSpan.FromSeconds(1), b.Blocked()); // everyone else waits for it
        b.Record(SendOutcome.Sent("id"));

        Assert.Equal("closed", b.State);
        Assert.Null(b.Blocked());
    }

    [Fact]
    public void HalfOpen_TrialFails_OpensAgainForTwiceAsLong_UpToFiveMinutes()
    {
        var b = Breaker();
        Fail(b, 5);
        var expected = new[] { 60, 120, 240, 300, 300 };
        foreach (var seconds in expected)
        {
            _clock.Advance(b.Blocked()!.Value);
            Assert.Null(b.Blocked());
            b.Record(Down);
            Assert.Equal(TimeSpan.FromSeconds(seconds), b.Blocked());
        }
    }
}
