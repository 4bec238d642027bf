namespace Nudge.Core.Queues;

/// <summary>
/// A durable at-least-once work queue. <see cref="EnqueueAsync"/> returns only once the messages are durable, so an
/// API may answer 2xx after it. A received message is hidden for the lease time and comes back unless completed.
/// </summary>
public interface IWorkQueue
{
    /// <summary>Appends messages atomically: all of them are stored, or none.</summary>
    Task EnqueueAsync(string queue, IReadOnlyList<OutgoingMessage> messages, CancellationToken ct = default);

    /// <summary>Leases up to <paramref name="max"/> visible messages, oldest first.</summary>
    Task<IReadOnlyList<LeasedMessage>> ReceiveAsync(string queue, int max, TimeSpan lease, CancellationToken ct = default);

    /// <summary>Deletes completed messages; a message whose lease was lost is left alone.</summary>
    Task CompleteAsync(IReadOnlyList<LeasedMessage> messages, CancellationToken ct = default);

    /// <summary>Makes a message visible again after <paramref name="delay"/>.</summary>
    Task AbandonAsync(LeasedMessage message, TimeSpan delay, CancellationToken ct = default);

    /// <summary>Moves a message to <c>{queue}-poison</c> with the reason.</summary>
    Task DeadLetterAsync(LeasedMessage message, string reason, CancellationToken ct = default);

    /// <summary>Completes when a message may be visible in <paramref name="queue"/>, or after <paramref name="timeout"/>.</summary>
    Task WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken ct = default);

    Task<long> CountAsync(string queue, CancellationToken ct = default);
}

/// <summary>A message to enqueue; <see cref="VisibleAt"/> delays it.</summary>
public sealed record OutgoingMessage(string Body, DateTimeOffset? VisibleAt = null);

/// <summary>A received message. <see cref="DequeueCount"/> counts deliveries including this one.</summary>
public sealed record LeasedMessage(string Queue, long Id, string Body, int DequeueCount, DateTimeOffset EnqueuedAt, string LeaseToken);
