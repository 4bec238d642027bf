using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Host.Reports;
using Nudge.Host.Workers;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// The reporting function (timer, every 30 s): a reporting-webhook pass, then the delivery-rate alert check when one is
/// due, then the retention purge when one is due (hourly: <see cref="RetentionPurger"/>). It has no output bindings and stays off the pipeline's queues, so a slow or failing receiver never delays a
/// step or a send; the store checkpoints carry its position and alert states from one invocation (and instance) to the next.
/// </summary>
public sealed class ReportingFunction(ReportingWebhookSender webhooks, DeliveryAlerter alerts, RetentionPurger retention, ILogger<ReportingFunction> log)
{
    /// <summary>Longest one invocation posts webhooks, well inside the 30 s schedule: 20 s.</summary>
    public static readonly TimeSpan WebhookBudget = TimeSpan.FromSeconds(20);

    /// <summary>Longest one invocation purges (webhooks and purge together stay inside the 30 s schedule): 5 s; the next turn finishes.</summary>
    public static readonly TimeSpan PurgeBudget = TimeSpan.FromSeconds(5);

    public async Task<IResult> RunAsync(Invocation inv, CancellationToken ct)
    {
        var timer = inv.Object(StageFunctions.TimerBinding);
        var result = new FunctionResult();
        try
        {
            var sent = await webhooks.RunOnceAsync(WebhookBudget, ct);
            var alerted = await alerts.RunIfDueAsync(ct);
            var purged = await retention.RunIfDueAsync(PurgeBudget, ct);
            result.Log($"{sent} reporting webhook(s) delivered, {alerted} alert(s) posted, {purged} record(s) past retention deleted");
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Nothing is lost: the checkpoints did not move past what failed, and the next run retries.
            log.LogError(e, "reporting run failed");
            return FunctionResult.Failure(500, $"reporting failed: {e.GetType().Name}: {e.Message}");
        }

        if (timer["IsPastDue"] is JsonValue late && late.GetValueKind() == JsonValueKind.True)
        {
            result.Log("the timer ran late (IsPastDue)");
        }

        return result.ToResult();
    }
}
