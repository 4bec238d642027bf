using System.Globalization;
using Microsoft.Extensions.Options;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;

namespace Nudge.Host.Workers;

/// <summary>
/// Deletes what is older than Nudge:Retention allows, about once an hour: the embedded <see cref="RetentionWorker"/> and
/// the Azure reporting function both call <see cref="RunIfDueAsync"/>. The time of the last run is a store checkpoint
/// written before the run, so processes sharing a store (Function instances) take turns instead of purging together;
/// a run cut short by its budget or a crash leaves the rest for the next one.
/// </summary>
public sealed class RetentionPurger(IStore store, TimeProvider time, IOptions<NudgeOptions> options, ILogger<RetentionPurger> log)
{
    public const string CheckpointName = "retention-purge";

    /// <summary>How often a purge runs: hourly.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    /// <summary>Most records of each kind one store call deletes: 500 (one SQLite transaction stays short).</summary>
    public const int BatchSize = 500;

    private RetentionOptions Options => options.Value.Retention;

    /// <summary>Messages, delivery events and outbox entries before this time are purged (reports starting earlier are incomplete).</summary>
    public DateTimeOffset MessagesHorizon() => time.GetUtcNow() - TimeSpan.FromDays(Options.MessagesDays);

    /// <summary>Events whose timestamp is before this time are purged.</summary>
    public DateTimeOffset EventsHorizon() => time.GetUtcNow() - TimeSpan.FromDays(Options.EventsDays);

    /// <summary>
    /// Purges, in batches until nothing old is left or <paramref name="budget"/> is spent, if no process has started a
    /// purge in the last <see cref="Interval"/>. Returns how many records it deleted (0 when it was not due).
    /// </summary>
    public async Task<long> RunIfDueAsync(TimeSpan budget, CancellationToken ct)
    {
        var started = time.GetUtcNow();
        var stored = await store.GetCheckpointAsync(CheckpointName, ct);
        if (stored is not null && DateTimeOffset.TryParse(stored.Value, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var last)
            && started - last < Interval)
        {
            return 0;
        }

        await using (var s = await store.OpenSessionAsync(ct))
        {
            var mine = await s.TryPutCheckpointAsync(new Checkpoint(CheckpointName, started.ToString("O", CultureInfo.InvariantCulture), stored?.Version ?? 0));
            await s.CommitAsync();
            if (!mine)
            {
                return 0; // another process took this turn
            }
        }

        var (events, messages) = (EventsHorizon(), MessagesHorizon());
        long total = 0;
        while (!ct.IsCancellationRequested)
        {
            var n = await store.PurgeAsync(events, messages, BatchSize, ct);
            total += n.Events + n.Messages + n.Outbox + n.DeliveryEvents;
            if (!n.More(BatchSize) || time.GetUtcNow() - started > budget)
            {
                break;
            }
        }

        if (total > 0)
        {
            log.LogInformation("retention purge deleted {Count} record(s): events before {Events:O}, messages before {Messages:O}", total, events, messages);
        }

        return total;
    }
}
