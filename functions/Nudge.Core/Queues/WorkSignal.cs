using System.Collections.Concurrent;

namespace Nudge.Core.Queues;

/// <summary>
/// Named wake-ups: a producer pulses a name, a consumer waiting on it returns at once instead of at its next poll.
/// Pulses do not accumulate (one pending wake-up per name), so consumers must look for work before waiting again.
/// </summary>
public sealed class WorkSignal
{
    /// <summary>The embedded journey-timers stage.</summary>
    public const string Timers = "timers";

    /// <summary>The embedded send stage.</summary>
    public const string Sends = "sends";

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _signals = new(StringComparer.Ordinal);

    public void Pulse(string name)
    {
        var s = Get(name);
        try
        {
            if (s.CurrentCount == 0)
            {
                s.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Already signalled by a concurrent pulse.
        }
    }

    /// <summary>Completes on the next pulse of <paramref name="name"/>, or after <paramref name="timeout"/>.</summary>
    public Task WaitAsync(string name, TimeSpan timeout, CancellationToken ct) => Get(name).WaitAsync(timeout, ct);

    private SemaphoreSlim Get(string name) => _signals.GetOrAdd(name, _ => new SemaphoreSlim(0, 1));
}
