using Nudge.Core.Messages;
using Nudge.Core.Storage;

namespace Nudge.Pipeline;

/// <summary>
/// The send stage while no provider is configured: the sandbox channel records each drafted message in the outbox
/// and marks it sent, so people can see exactly what would have gone out. Idempotent by message id.
/// </summary>
public sealed class SendStage(IStore store)
{
    /// <summary>Handles up to <paramref name="limit"/> ready messages; returns how many.</summary>
    public async Task<int> RunReadyAsync(DateTimeOffset now, int limit, CancellationToken ct)
    {
        var ready = await store.ReadyMessagesAsync(limit, ct);
        if (ready.Count == 0)
        {
            return 0;
        }

        await using var s = await store.OpenSessionAsync(ct);
        foreach (var m in ready)
        {
            var current = await s.GetMessageAsync(m.Id);
            if (current is not { Ready: true })
            {
                continue;
            }

            await s.RecordOutboxAsync(new OutboxEntry(current.Id, current.ProfileKey, current.Channel.ToString().ToLowerInvariant(), now, current.Content, current.Recipients));
            current.Ready = false;
            current.SentAt = now;
            if (current.Status == MessageStatus.Drafted)
            {
                current.Status = MessageStatus.Sent;
            }

            current.History.Add(new StatusChange(MessageStatus.Sent, now, "sandbox"));
            await s.PutMessageAsync(current);
        }

        await s.CommitAsync();
        return ready.Count;
    }
}
