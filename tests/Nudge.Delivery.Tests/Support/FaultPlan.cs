using System.Collections.Concurrent;
using System.Text;

namespace Nudge.Delivery.Tests.Support;

/// <summary>A failure a loopback peer answers instead of handling a request.</summary>
public enum PlannedFault
{
    /// <summary>Handled as usual.</summary>
    None,

    /// <summary>500 (FCM INTERNAL, APNs InternalServerError).</summary>
    InternalError,

    /// <summary>503 with Retry-After (FCM UNAVAILABLE, APNs ServiceUnavailable).</summary>
    Unavailable,

    /// <summary>429 with Retry-After (FCM QUOTA_EXCEEDED, APNs TooManyRequests).</summary>
    TooManyRequests,

    /// <summary>No answer until the client gives up (its timeout).</summary>
    Hang,

    /// <summary>The request is cut off without an answer: the HTTP/1.1 connection aborted, the HTTP/2 stream reset.</summary>
    Reset,
}

/// <summary>One request a peer under a <see cref="FaultPlan"/> received: the message it was for and what it was answered.</summary>
/// <param name="Key">The message id the request carried (delivery_id).</param>
/// <param name="Attempt">1 for the first request the peer saw for the key, 2 for the next, ...</param>
/// <param name="Fault">What the plan chose for it.</param>
/// <param name="RetryAfterSeconds">Retry-After sent with the answer, if any.</param>
/// <param name="At">Arrival, by the plan's clock.</param>
public sealed record PlannedRequest(string Key, int Attempt, PlannedFault Fault, int? RetryAfterSeconds, DateTimeOffset At)
{
    private string _answer = "";

    /// <summary>What the peer answered: "accepted", the planned fault, or the peer's own answer (e.g. "410 Unregistered").</summary>
    public string Answer
    {
        get => Volatile.Read(ref _answer);
        set => Volatile.Write(ref _answer, value);
    }
}

/// <summary>
/// A seeded, per-request fault plan for the loopback peers: the n-th request for a message fails with probability
/// <see cref="Share"/>, independently of its other requests, so a retry of the same message can succeed; which failure
/// and which Retry-After are drawn from the same hash of (seed, message id, n). The plan does not depend on arrival
/// order or timing, so a seed replays the same faults for the same requests. Every request is logged with its arrival
/// time by <see cref="Clock"/>. Thread-safe.
/// </summary>
public sealed class FaultPlan(int seed, TimeProvider clock)
{
    private readonly ConcurrentDictionary<string, int> _attempts = new(StringComparer.Ordinal);

    public int Seed { get; } = seed;

    public TimeProvider Clock { get; } = clock;

    /// <summary>Share of requests that fail: 0.2.</summary>
    public double Share { get; init; } = 0.2;

    /// <summary>The failures drawn from, equally likely: all but <see cref="PlannedFault.None"/>.</summary>
    public IReadOnlyList<PlannedFault> Kinds { get; init; } =
        [PlannedFault.InternalError, PlannedFault.Unavailable, PlannedFault.TooManyRequests, PlannedFault.Hang, PlannedFault.Reset];

    /// <summary>Retry-After values are drawn from 1 to this, in seconds: 90.</summary>
    public int MaxRetryAfterSeconds { get; init; } = 90;

    /// <summary>How long a <see cref="PlannedFault.Hang"/> waits for the client to give up before answering 503: 60 s.</summary>
    public TimeSpan HangFor { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Every request, in arrival order.</summary>
    public ConcurrentQueue<PlannedRequest> Log { get; } = new();

    /// <summary>Things the peer saw that no client should cause (a hang never abandoned).</summary>
    public ConcurrentQueue<string> Problems { get; } = new();

    /// <summary>Numbers this request for <paramref name="key"/>, draws its fault and logs it.</summary>
    public PlannedRequest Next(string key)
    {
        var n = _attempts.AddOrUpdate(key, 1, (_, v) => v + 1);
        var h = Mix(Mix((ulong)(uint)Seed ^ Fnv(key)) ^ (ulong)n);
        var fault = PlannedFault.None;
        int? retryAfter = null;
        if (Unit(h) < Share)
        {
            var h2 = Mix(h);
            fault = Kinds[(int)(h2 % (ulong)Kinds.Count)];
            if (fault is PlannedFault.Unavailable or PlannedFault.TooManyRequests)
            {
                retryAfter = 1 + (int)(Mix(h2) % (ulong)MaxRetryAfterSeconds);
            }
        }

        var r = new PlannedRequest(key, n, fault, retryAfter, Clock.GetUtcNow()) { Answer = fault == PlannedFault.None ? "" : fault.ToString() };
        Log.Enqueue(r);
        return r;
    }

    /// <summary>
    /// Holds a <see cref="PlannedFault.Hang"/> request until the client gives up; true when it did. False (and a problem
    /// noted) when <see cref="HangFor"/> ran out first: the client has no working timeout.
    /// </summary>
    public async Task<bool> HangAsync(CancellationToken requestAborted)
    {
        try
        {
            await Task.Delay(HangFor, requestAborted);
        }
        catch (OperationCanceledException)
        {
            return true;
        }

        Problems.Enqueue($"a request hung for {HangFor.TotalSeconds:0} s and the client never gave up");
        return false;
    }

    private static ulong Fnv(string s)
    {
        var h = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            h = (h ^ b) * 1099511628211UL;
        }

        return h;
    }

    /// <summary>SplitMix64's finaliser: every input bit affects every output bit.</summary>
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static double Unit(ulong h) => (h >> 11) * (1.0 / (1UL << 53));
}
