using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Nudge.Core.Ingest;
using Nudge.Core.Queues;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;
using Nudge.Host.Telemetry;
using Nudge.Pipeline;

namespace Nudge.Host.Workers;

/// <summary>
/// Embedded adapter of the process-event stage: leases batches from the events queue, applies them in one store
/// transaction and completes them. A batch that fails is retried op by op, so one bad op only delays itself
/// (backoff, then the poison queue after the queue's delivery limit).
/// </summary>
public sealed class EventWorker(
    IWorkQueue queue, IStore store, EventProcessor processor, WorkSignal signal, TimeProvider time, IOptions<NudgeOptions> options, ILogger<EventWorker> log)
    : BackgroundService
{
    /// <summary>Processes one batch of the events queue, if any is visible; returns how many messages it took.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct = default)
    {
        var o = options.Value.Workers;
        var batch = await queue.ReceiveAsync(QueueNames.Events, o.BatchSize, TimeSpan.FromSeconds(o.LeaseSeconds), ct);
        if (batch.Count > 0)
        {
            await ProcessAsync(batch, ct);
        }

        return batch.Count;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await RunOnceAsync(stoppingToken) == 0)
                {
                    await queue.WaitForWorkAsync(QueueNames.Events, TimeSpan.FromSeconds(1), stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                log.LogError(e, "event worker loop failed; retrying in 1 s");
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    private async Task ProcessAsync(IReadOnlyList<LeasedMessage> batch, CancellationToken ct)
    {
        using var span = PipelineTelemetry.StartStage(PipelineTelemetry.ProcessEvent, batch.Count, ActivityKind.Consumer);
        HostTelemetry.QueueLag(QueueNames.Events, batch, time.GetUtcNow());
        var parsed = new List<(LeasedMessage Msg, IngestOp Op)>(batch.Count);
        foreach (var m in batch)
        {
            try
            {
                parsed.Add((m, IngestOpJson.Deserialize(m.Body)));
            }
            catch (JsonException e)
            {
                log.LogError("events message {Id} is not an ingest op ({Error}); dead-lettered", m.Id, e.Message);
                await queue.DeadLetterAsync(m, "not an ingest op: " + e.Message, ct);
            }
        }

        try
        {
            using var counts = PipelineTelemetry.Defer();
            await using (var s = await store.OpenSessionAsync(ct))
            {
                foreach (var (_, op) in parsed)
                {
                    await processor.ProcessAsync(s, op);
                }

                await s.CommitAsync();
            }

            counts.Complete();

            await queue.CompleteAsync(parsed.Select(p => p.Msg).ToList(), ct);
            signal.Pulse(WorkSignal.Timers);
            signal.Pulse(WorkSignal.Sends);
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning("batch of {Count} events failed ({Error}); retrying one by one", parsed.Count, e.GetType().Name);
        }

        foreach (var (msg, op) in parsed)
        {
            try
            {
                using var counts = PipelineTelemetry.Defer();
                await using (var s = await store.OpenSessionAsync(ct))
                {
                    await processor.ProcessAsync(s, op);
                    await s.CommitAsync();
                }

                counts.Complete();

                await queue.CompleteAsync([msg], ct);
                signal.Pulse(WorkSignal.Timers);
                signal.Pulse(WorkSignal.Sends);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                var delay = TimeSpan.FromSeconds(Math.Min(300, Math.Pow(2, msg.DequeueCount)));
                log.LogError("event op {Kind} {MessageId} failed (delivery {Count}): {Error}; retry in {Delay}",
                    op.Kind, op.MessageId, msg.DequeueCount, e.Message, delay);
                await queue.AbandonAsync(msg, delay, ct);
            }
        }
    }
}
