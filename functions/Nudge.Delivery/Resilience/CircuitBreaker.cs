namespace Nudge.Delivery.Resilience;

/// <summary>
/// Stops calling a provider that keeps failing. After <see cref="Threshold"/> transient failures in a row (5xx,
/// timeouts, connection errors) the circuit opens for 30 s; then one trial call goes through: success closes it, failure
/// opens it again for twice as long (at most 5 min). Invalid tokens, rejections and rate limits are answers, not
/// failures: they never open it. Thread-safe.
/// </summary>
public sealed class CircuitBreaker(string name, TimeProvider time, int threshold = 5, TimeSpan? openFor = null, TimeSpan? maxOpen = null)
{
    private readonly Lock _gate = new();
    private readonly TimeSpan _firstOpen = openFor ?? TimeSpan.FromSeconds(30);
    private readonly TimeSpan _maxOpen = maxOpen ?? TimeSpan.FromMinutes(5);
    private int _failures;
    private DateTimeOffset? _openUntil;
    private TimeSpan _open;
    private bool _trial;

    public string Name { get; } = name;

    public int Threshold { get; } = threshold;

    /// <summary>closed, open or half_open.</summary>
    public string State
    {
        get
        {
            lock (_gate)
            {
                return _openUntil is null ? "closed" : time.GetUtcNow() < _openUntil ? "open" : "half_open";
            }
        }
    }

    /// <summary>
    /// Null when a call may go ahead (closed, or the one trial call of a half-open circuit); otherwise how long until
    /// the circuit lets a call through again.
    /// </summary>
    public TimeSpan? Blocked()
    {
        lock (_gate)
        {
            if (_openUntil is not { } until)
            {
                return null;
            }

            var now = time.GetUtcNow();
            if (now < until)
            {
                return until - now;
            }

            if (_trial)
            {
                return TimeSpan.FromSeconds(1);
            }

            _trial = true;
            return null;
        }
    }

    /// <summary>Records what a call that went ahead came to.</summary>
    public void Record(SendOutcome outcome)
    {
        lock (_gate)
        {
            var failure = outcome.Kind == OutcomeKind.Transient && outcome.Reason is not DeliveryReason.CircuitOpen;
            if (outcome.Kind == OutcomeKind.RateLimited)
            {
                _trial = false;
                return;
            }

            if (!failure)
            {
                _failures = 0;
                _openUntil = null;
                _open = TimeSpan.Zero;
                _trial = false;
                return;
            }

            _failures++;
            if (_trial || (_openUntil is null && _failures >= Threshold))
            {
                _open = _open == TimeSpan.Zero ? _firstOpen : TimeSpan.FromTicks(Math.Min(_open.Ticks * 2, _maxOpen.Ticks));
                _openUntil = time.GetUtcNow() + _open;
                _trial = false;
            }
        }
    }
}
