namespace Nudge.Delivery.Resilience;

/// <summary>
/// When to try a failed recipient again: exponential backoff from <see cref="BaseDelay"/> (doubling, at most
/// <see cref="MaxDelay"/>) with jitter (50-100 % of the step, so retries of one outage spread out), never sooner than
/// the provider's Retry-After, and no more than <see cref="MaxAttempts"/> attempts in all.
/// </summary>
public sealed record RetryPolicy(int MaxAttempts = 6, TimeSpan? Base = null, TimeSpan? Max = null)
{
    /// <summary>Longest Retry-After honoured: 6 h. A provider asking for longer gets the message failed instead.</summary>
    public static readonly TimeSpan LongestRetryAfter = TimeSpan.FromHours(6);

    public TimeSpan BaseDelay => Base ?? TimeSpan.FromSeconds(30);

    public TimeSpan MaxDelay => Max ?? TimeSpan.FromHours(1);

    /// <summary>The wait before the next attempt, or null when <paramref name="attempts"/> used them all up.</summary>
    public TimeSpan? Next(int attempts, TimeSpan? retryAfter, Random random)
    {
        if (attempts >= MaxAttempts || retryAfter > LongestRetryAfter)
        {
            return null;
        }

        var step = BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Max(0, attempts - 1));
        step = Math.Min(step, MaxDelay.TotalMilliseconds);
        var jittered = TimeSpan.FromMilliseconds(step * (0.5 + (random.NextDouble() * 0.5)));
        return retryAfter is { } after && after > jittered ? after : jittered;
    }
}
