using System.Collections.Concurrent;

namespace Nudge.Host.Workers;

/// <summary>Wakes a worker as soon as another stage produced work for it, instead of waiting for its next poll.</summary>
public sealed class WorkSignal
{
    public const string Timers = "timers";
    public const string Sends = "sends";

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _signals = new(StringComparer.Ordinal);

    public void Pulse(string name)
    {
        var s = _signals.GetOrAdd(name, _ => new SemaphoreSlim(0, 1));
        try
        {
            if (s.CurrentCount == 0)
            {
                s.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // already signalled
        }
    }

    public Task WaitAsync(string name, TimeSpan timeout, CancellationToken ct) =>
        _signals.GetOrAdd(name, _ => new SemaphoreSlim(0, 1)).WaitAsync(timeout, ct);
}
