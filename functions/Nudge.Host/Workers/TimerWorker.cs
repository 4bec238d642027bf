using Microsoft.Extensions.Options;
using Nudge.Core.Queues;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;
using Nudge.Pipeline;

namespace Nudge.Host.Workers;

/// <summary>
/// The embedded journey-timers stage: fires due instances as soon as they are due. It sleeps until the earliest
/// wake-up (at most 1 s, and is woken early when new work arrives), so timers fire well under a second late.
/// </summary>
public sealed class TimerWorker(
    IStore store, JourneyRuntime runtime, TimeProvider time, WorkSignal signal, IOptions<NudgeOptions> options, ILogger<TimerWorker> log)
    : BackgroundService
{
    /// <summary>Fires what is due now; returns how many instances were due.</summary>
    public async Task<int> RunDueOnceAsync(CancellationToken ct = default)
    {
        var now = time.GetUtcNow();
        var due = await store.DueInstancesAsync(now, options.Value.Journeys.TimerBatchSize, ct);
        if (due.Count == 0)
        {
            return 0;
        }

        // Only sweeps that found work get a span: the loop looks every few milliseconds to a second.
        using var span = PipelineTelemetry.StartStage(PipelineTelemetry.JourneyTimers, due.Count);
        try
        {
            using var counts = PipelineTelemetry.Defer();
            await using (var s = await store.OpenSessionAsync(ct))
            {
                foreach (var (id, _) in due)
                {
                    await runtime.FireAsync(s, id, now);
                }

                await s.CommitAsync();
            }

            counts.Complete();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning("timer batch of {Count} failed ({Error}); firing one by one", due.Count, e.GetType().Name);
            foreach (var (id, _) in due)
            {
                try
                {
                    using var counts = PipelineTelemetry.Defer();
                    await using (var s = await store.OpenSessionAsync(ct))
                    {
                        await runtime.FireAsync(s, id, now);
                        await s.CommitAsync();
                    }

                    counts.Complete();
                }
                catch (Exception one) when (one is not OperationCanceledException)
                {
                    log.LogError(one, "journey instance {Id} failed to advance; it stays due and is retried", id);
                }
            }
        }

        signal.Pulse(WorkSignal.Sends);
        return due.Count;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await RunDueOnceAsync(stoppingToken) > 0)
                {
                    continue;
                }

                var next = await store.NextWakeAsync(stoppingToken);
                var wait = next is { } n ? n - time.GetUtcNow() : TimeSpan.FromSeconds(1);
                wait = wait < TimeSpan.FromMilliseconds(5) ? TimeSpan.FromMilliseconds(5) : wait > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : wait;
                await signal.WaitAsync(WorkSignal.Timers, wait, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                log.LogError(e, "timer loop failed; retrying in 1 s");
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }
}
