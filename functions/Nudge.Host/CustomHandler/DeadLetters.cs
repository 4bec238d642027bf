using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Storage;
using Nudge.Pipeline;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// What Functions mode records when Service Bus is about to dead-letter a queue message (its last delivery failed), so
/// the store tells the same story as the dead-letter queue: the message or journey instance ends with reason
/// <see cref="Reason"/> instead of waiting for ever.
/// </summary>
public static class DeadLetters
{
    /// <summary>The machine-readable reason on the message (and its history, with the error) or the instance.</summary>
    public const string Reason = "dead_lettered";

    /// <summary>Most characters of the error kept on the record.</summary>
    private const int MaxError = 500;

    /// <summary>
    /// Marks a message that is still waiting to be sent as failed (reason dead_lettered; its pending recipients too).
    /// A message already handled keeps its record. Returns true when it changed the record.
    /// </summary>
    public static async Task<bool> FailMessageAsync(IStore store, string messageId, string error, DateTimeOffset now)
    {
        await using var s = await store.OpenSessionAsync();
        var m = await s.GetMessageAsync(messageId);
        if (m is null || !m.Ready)
        {
            return false;
        }

        error = Trim(error);
        m.Ready = false;
        m.NextAttemptAt = null;
        m.Status = MessageStatus.Failed;
        m.Reason = Reason;
        foreach (var d in m.Deliveries.Where(d => d.Status == DeliveryStatus.Pending))
        {
            (d.Status, d.Reason, d.Detail, d.At) = (DeliveryStatus.Failed, Reason, error, now);
        }

        m.History.Add(new StatusChange(MessageStatus.Failed, now, $"{Reason}: {error}"));
        await s.PutMessageAsync(m);
        var e = DeliveryEvent.For(m, MessageStatus.Failed, now, Reason) with { RecordedAt = now };
        await s.AppendDeliveryEventAsync(e);
        await s.CommitAsync();
        PipelineTelemetry.MessageStatus(e);
        return true;
    }

    /// <summary>Ends a journey instance that is still open and due (reason dead_lettered; the error in its step results).</summary>
    public static async Task<bool> ExitInstanceAsync(IStore store, string instanceId, string error, DateTimeOffset now)
    {
        await using var s = await store.OpenSessionAsync();
        var i = await s.GetInstanceAsync(instanceId);
        if (i is null || !i.IsOpen || i.WakeAt is null)
        {
            return false;
        }

        i.Status = InstanceStatus.Exited;
        i.EndReason = Reason;
        i.EndedAt = now;
        i.WakeAt = null;
        i.StepResults[i.CurrentStep ?? "start"] = new() { ["status"] = Reason, ["error"] = Trim(error), ["at"] = now };
        await s.PutInstanceAsync(i);
        await s.CommitAsync();
        return true;
    }

    /// <summary>Runs a recording; its own failure is logged, never thrown, so the invocation still answers with the original failure.</summary>
    public static async Task RecordAsync(ILogger log, string what, Func<Task<bool>> record)
    {
        try
        {
            if (await record())
            {
                log.LogWarning("{What} recorded as {Reason} (last delivery)", what, Reason);
            }
        }
        catch (Exception e)
        {
            log.LogError(e, "{What}: recording it as {Reason} failed too", what, Reason);
        }
    }

    private static string Trim(string error) => error.Length <= MaxError ? error : error[..MaxError];
}
