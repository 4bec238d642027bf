namespace Nudge.Host.Workers;

/// <summary>The embedded retention loop: asks <see cref="RetentionPurger"/> every minute (on the injected clock) whether a purge is due.</summary>
public sealed class RetentionWorker(RetentionPurger purger, TimeProvider time, ILogger<RetentionWorker> log) : BackgroundService
{
    /// <summary>Longest one purge runs before the loop lets the host stop: 30 s (the next turn finishes the rest).</summary>
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Poll = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await purger.RunIfDueAsync(Budget, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                log.LogError(e, "retention purge failed; retrying at the next turn");
            }

            try
            {
                await Task.Delay(Poll, time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
        }
    }
}
