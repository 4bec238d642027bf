using System.Threading.Channels;

using Nudge.Core.Messages;
using Nudge.Core.Storage;

namespace Nudge.Pipeline;

/// <summary>
/// The claims one send run holds, from claiming a message to recording its outcome, so that a live process never sends a
/// message twice:
/// <list type="bullet">
/// <item>a claim is renewed while its message waits (for the backlog, its lane or a call slot) and while its call is out,
/// once less than half of it is left, so it does not run out under a send stage that is merely slow;</item>
/// <item>right before a provider call the claim is checked in the store as a fence (<see cref="FenceAsync"/>): only a run
/// whose claim still holds there calls the provider, so a stale holder whose claim ran out and was taken by another run
/// never does (nor one whose message was erased meanwhile). A claim with at least half its time left is read (no other
/// stage can take a claim before it runs out, so one that holds now still holds when the call starts); one with less is
/// renewed, a compare-and-set write.</item>
/// </list>
/// Each renewal changes the claim's value in the store, which the next renewal and the outcome's record compare against:
/// renewals, fences and records therefore run one at a time (<see cref="RecordAsync{T}"/>). Fences that arrive together
/// share one store session (one commit), as outcomes do.
/// </summary>
/// <remarks>
/// A store failure while renewing fails that round's fences (nothing is sent; the message is due again when its claim runs
/// out); a failed heartbeat is tried again at the next one.
/// </remarks>
internal sealed class SendClaims : IAsyncDisposable
{
    /// <summary>Longest time between two looks at the held claims' time left: 1 s (a quarter of a claim, if shorter).</summary>
    private static readonly TimeSpan MaxHeartbeat = TimeSpan.FromSeconds(1);

    private readonly IStore _store;
    private readonly TimeSpan _claimFor;
    private readonly Func<DateTimeOffset> _clock;
    private readonly TimeSpan _heartbeat;
    private readonly Dictionary<string, Held> _held = new(StringComparer.Ordinal);

    /// <summary>When (by the clock) the earliest held claim is down to half its time: the next look at all of them (under the lock of _held).</summary>
    private DateTimeOffset _lookAt = DateTimeOffset.MaxValue;
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly Channel<Fence> _fences = Channel.CreateUnbounded<Fence>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _keeping;

    public SendClaims(IStore store, TimeSpan claimFor, Func<DateTimeOffset> clock)
    {
        (_store, _claimFor, _clock) = (store, claimFor, clock);
        _heartbeat = TimeSpan.FromTicks(Math.Clamp(claimFor.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, MaxHeartbeat.Ticks));
        _keeping = Task.Run(KeepAsync, CancellationToken.None);
    }

    /// <summary>Starts holding <paramref name="messages"/>, claimed until <paramref name="claim"/>.</summary>
    public void Hold(IEnumerable<Message> messages, DateTimeOffset claim)
    {
        lock (_held)
        {
            foreach (var m in messages)
            {
                _held[m.Id] = new Held(m.Id, m.ProfileKey, claim);
            }

            _lookAt = claim - (_claimFor / 2) < _lookAt ? claim - (_claimFor / 2) : _lookAt;
        }
    }

    /// <summary>Stops holding a message (its outcome was recorded, or its claim was lost).</summary>
    public void Release(string id)
    {
        lock (_held)
        {
            _held.Remove(id);
        }
    }

    /// <summary>
    /// Renews the claim of <paramref name="m"/> right before its provider call: true when this run still holds it in the
    /// store (and does for at least another claim's length); false when it does not, and the call must not be made.
    /// </summary>
    public async Task<bool> FenceAsync(Message m)
    {
        lock (_held)
        {
            if (!_held.ContainsKey(m.Id))
            {
                return false;
            }
        }

        var fence = new Fence(m.Id, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_fences.Writer.TryWrite(fence))
        {
            return false;
        }

        return await fence.Held.Task;
    }

    /// <summary>
    /// Runs <paramref name="record"/> (the outcomes' store session) with no renewal in between, giving it each held
    /// message's current claim: one value, or two after a renewal whose outcome is unknown (either may be the stored one);
    /// none when no longer held.
    /// </summary>
    public async Task<T> RecordAsync<T>(Func<Func<string, IReadOnlyList<DateTimeOffset>>, Task<T>> record)
    {
        await _writing.WaitAsync(CancellationToken.None);
        try
        {
            return await record(Current);
        }
        finally
        {
            _writing.Release();
        }
    }

    private IReadOnlyList<DateTimeOffset> Current(string id)
    {
        lock (_held)
        {
            return !_held.TryGetValue(id, out var h) ? [] : h.Maybe is { } maybe ? [h.Claim, maybe] : [h.Claim];
        }
    }

    private async Task KeepAsync()
    {
        var beating = BeatAsync();
        var fences = new List<Fence>();
        try
        {
            while (await _fences.Reader.WaitToReadAsync(_stop.Token))
            {
                fences.Clear();
                var beat = false;
                while (_fences.Reader.TryRead(out var f))
                {
                    if (ReferenceEquals(f, Beat))
                    {
                        beat = true;
                    }
                    else
                    {
                        fences.Add(f);
                    }
                }

                await RenewAsync(fences, beat);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopping.
        }

        // A fence still waiting finds nothing to renew for.
        while (_fences.Reader.TryRead(out var f))
        {
            f.Held.TrySetResult(false);
        }

        await beating;
    }

    /// <summary>The heartbeat: every so often, a look at all the held claims' time left (renewing those under half).</summary>
    private async Task BeatAsync()
    {
        try
        {
            while (true)
            {
                await Task.Delay(_heartbeat, _stop.Token);
                _fences.Writer.TryWrite(Beat);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <remarks><paramref name="beat"/>: look at every held claim; otherwise only at the fenced ones.</remarks>
    private async Task RenewAsync(List<Fence> fences, bool beat)
    {
        await _writing.WaitAsync(CancellationToken.None);
        try
        {
            var now = _clock();
            var until = now + _claimFor;
            var half = _claimFor / 2;
            var renew = new List<Held>();
            var check = new List<Held>();
            lock (_held)
            {
                // Renewed: those with less than half their time left (and fenced ones whose last renewal's outcome is
                // unknown). Read: fenced claims with more.
                foreach (var f in fences)
                {
                    if (_held.TryGetValue(f.Id, out var h))
                    {
                        (h.Claim - now < half || h.Maybe is not null ? renew : check).Add(h);
                    }
                }

                // Every held claim is looked at on the heartbeat, and whenever the clock says one may be down to half (a
                // clock that jumps, or a process that stalled, does not wait for the next heartbeat).
                if (beat || now >= _lookAt)
                {
                    var fenced = fences.Select(f => f.Id).ToHashSet(StringComparer.Ordinal);
                    renew.AddRange(_held.Values.Where(h => h.Claim - now < half && !fenced.Contains(h.Id)));

                    // Those renewed move to a claim's length from now; the rest keep theirs.
                    _lookAt = _held.Values.Select(h => h.Claim - now < half ? until - half : h.Claim - half).DefaultIfEmpty(DateTimeOffset.MaxValue).Min();
                }
            }

            var held = new HashSet<string>(StringComparer.Ordinal);
            if (check.Count > 0)
            {
                IReadOnlySet<string> stillHeld;
                try
                {
                    stillHeld = await _store.GetHeldClaimsAsync([.. check.Select(h => new HeldClaim(h.Id, h.ProfileKey, h.Claim))]);
                }
                catch (Exception)
                {
                    stillHeld = new HashSet<string>(); // unknown: those calls are not made; the claims run out and are retried
                }

                lock (_held)
                {
                    foreach (var h in check)
                    {
                        if (stillHeld.Contains(h.Id))
                        {
                            held.Add(h.Id);
                        }
                        else
                        {
                            _held.Remove(h.Id); // lost to another run, or the message is gone
                        }
                    }
                }
            }

            if (renew.Count > 0)
            {
                try
                {
                    // A renewal lost to a power cut leaves the claim this run had before, which only lets a call that
                    // was in flight be made again: no fsync needed.
                    await using var s = await _store.OpenUnsyncedSessionAsync();
                    foreach (var h in renew)
                    {
                        // A claim never moves back: one taken (or renewed) at a later clock reading keeps its value.
                        var next = h.Claim > until ? h.Claim : until;
                        if (await s.TryRenewClaimAsync(h.Id, h.ProfileKey, h.Claim, next)
                            || (h.Maybe is { } maybe && await s.TryRenewClaimAsync(h.Id, h.ProfileKey, maybe, maybe > next ? maybe : next)))
                        {
                            held.Add(h.Id);
                        }
                    }

                    await s.CommitAsync();
                }
                catch (Exception)
                {
                    // Whether the renewals took is unknown (SQLite rolled them back, Cosmos kept those before the failure):
                    // each claim is either value until the next renewal or record settles it.
                    lock (_held)
                    {
                        foreach (var h in renew.Where(h => _held.ContainsKey(h.Id)))
                        {
                            _held[h.Id] = h with { Maybe = h.Claim > until ? h.Claim : until };
                        }
                    }

                    // Fences the read proved go ahead; the others fail (no call).
                    foreach (var f in fences)
                    {
                        f.Held.TrySetResult(held.Contains(f.Id) && !renew.Any(h => h.Id == f.Id));
                    }

                    return;
                }

                lock (_held)
                {
                    foreach (var h in renew)
                    {
                        if (held.Contains(h.Id))
                        {
                            var claim = new[] { h.Claim, h.Maybe ?? h.Claim, until }.Max();
                            _held[h.Id] = h with { Claim = claim, Maybe = null };
                        }
                        else
                        {
                            _held.Remove(h.Id); // lost to another run, or the message is gone
                        }
                    }
                }
            }

            foreach (var f in fences)
            {
                f.Held.TrySetResult(held.Contains(f.Id));
            }
        }
        finally
        {
            _writing.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _fences.Writer.TryComplete();
        await _keeping;
        _stop.Dispose();
        _writing.Dispose();
    }

    /// <summary>A claim held until <paramref name="Claim"/>, or until <paramref name="Maybe"/> if a renewal whose outcome is unknown took.</summary>
    private sealed record Held(string Id, string ProfileKey, DateTimeOffset Claim, DateTimeOffset? Maybe = null);

    private sealed record Fence(string Id, TaskCompletionSource<bool> Held);

    /// <summary>The heartbeat's mark in the fence channel.</summary>
    private static readonly Fence Beat = new("", new TaskCompletionSource<bool>());
}
