using Microsoft.Extensions.Options;
using Nudge.Host.Hosting;
using Nudge.Host.Reports;

namespace Nudge.Host.Workers;

/// <summary>
/// The embedded reporting loop, beside the pipeline (never in its path): posts reporting webhooks about once a second
/// and evaluates delivery-rate alerts every Nudge:Alerts:CheckInterval. A failing receiver only delays its own posts.
/// </summary>
public sealed class ReportingWorker(ReportingWebhookSender webhooks, DeliveryAlerter alerts, IOptions<NudgeOptions> options, ILogger<ReportingWorker> log)
    : BackgroundService
{
    /// <summary>Longest one webhook pass runs before the loop checks alerts and stopping again: 30 s.</summary>
    private static readonly TimeSpan PassBudget = TimeSpan.FromSeconds(30);

    /// <summary>One round: a webhook pass, then the alert check if it is due.</summary>
    public async Task RunOnceAsync(CancellationToken ct = default)
    {
        try
        {
            await webhooks.RunOnceAsync(PassBudget, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogError(e, "reporting webhook pass failed; retrying");
        }

        try
        {
            await alerts.RunIfDueAsync(ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogError(e, "delivery alert check failed; retrying");
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (!o.ReportingWebhooks.Enabled && !o.Alerts.Enabled)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
        }
    }
}
