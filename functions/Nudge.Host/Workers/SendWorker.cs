using Nudge.Core.Queues;
using Nudge.Pipeline;

namespace Nudge.Host.Workers;

/// <summary>The embedded send stage: hands drafted messages to the channel (the sandbox until providers are configured).</summary>
public sealed class SendWorker(SendStage stage, TimeProvider time, WorkSignal signal, ILogger<SendWorker> log) : BackgroundService
{
    /// <summary>
    /// Messages claimed per round: 256. Rounds overlap, so small rounds keep calls in flight without holding thousands
    /// of claimed messages in memory (the delivery benchmark's sweep found them fastest).
    /// </summary>
    private const int Batch = 256;

    public Task<int> RunOnceAsync(CancellationToken ct = default) => stage.RunUntilIdleAsync(time.GetUtcNow, Batch, ct);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await RunOnceAsync(stoppingToken) == 0)
                {
                    await signal.WaitAsync(WorkSignal.Sends, TimeSpan.FromSeconds(1), stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                log.LogError(e, "send loop failed; retrying in 1 s");
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }
}
