using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Nudge.Core.Ingest;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;
using Nudge.Pipeline;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// The queue- and timer-triggered functions: thin adapters that read the trigger, run the same pipeline code as the
/// embedded workers (<see cref="EventProcessor"/>, <see cref="JourneyRuntime"/>, <see cref="SendStage"/>) and return
/// what they produced as output bindings. Queue messages are JSON objects: events carry an <see cref="IngestOp"/>,
/// steps <c>{"instanceId","profileKey"}</c>, sends <c>{"messageId"}</c>. Every stage is idempotent, so Service Bus
/// redeliveries and the sweep's repeats are harmless.
/// </summary>
public sealed class StageFunctions(
    IStore store, EventProcessor processor, JourneyRuntime runtime, SendStage sender, TimeProvider time,
    IOptions<NudgeOptions> options, ILogger<StageFunctions> log)
{
    /// <summary>Trigger binding names, as in the functions' function.json.</summary>
    public const string EventBinding = "event";
    public const string StepBinding = "step";
    public const string MessageBinding = "message";
    public const string TimerBinding = "timer";

    private int MaxDeliveryCount => options.Value.Functions.MaxDeliveryCount;

    /// <summary>process-event: applies one op in one session; emits <c>sends</c> for the messages it made ready to send.</summary>
    public async Task<IResult> ProcessEventAsync(Invocation inv, CancellationToken ct)
    {
        var op = ReadOp(inv.Object(EventBinding));
        var now = time.GetUtcNow();
        using var span = PipelineTelemetry.StartStage(PipelineTelemetry.ProcessEvent, 1, ActivityKind.Consumer);
        try
        {
            using var counts = PipelineTelemetry.Defer();
            var s = new CapturingSession(await store.OpenSessionAsync(ct));
            await using (s)
            {
                await processor.ProcessAsync(s, op);
                await s.CommitAsync();
            }

            counts.Complete();

            var sends = s.ReadyToSend(now);
            return new FunctionResult()
                .Messages(QueueNames.Sends, sends.Select(Send))
                .Log($"{op.Kind} {op.MessageId}: {sends.Count} message(s) to send")
                .ToResult();
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Nothing to record: the op itself is the record, and Service Bus keeps it in the dead-letter queue.
            log.LogError(e, "process-event {Kind} {OpId} failed (Service Bus message {SbId}, delivery {Delivery} of {Max})", op.Kind, op.MessageId, inv.MessageId, inv.DeliveryCount, MaxDeliveryCount);
            return FunctionResult.Failure(500, $"{op.Kind} {op.MessageId} failed: {e.Message}");
        }
    }

    /// <summary>run-step: fires one journey instance; emits <c>sends</c> for the messages it made ready to send.</summary>
    public async Task<IResult> RunStepAsync(Invocation inv, CancellationToken ct)
    {
        var step = inv.Object(StepBinding);
        var instanceId = Required(step, "instanceId", StepBinding);
        var now = time.GetUtcNow();
        try
        {
            using var counts = PipelineTelemetry.Defer();
            var s = new CapturingSession(await store.OpenSessionAsync(ct));
            await using (s)
            {
                await runtime.FireAsync(s, instanceId, now);
                await s.CommitAsync();
            }

            counts.Complete();

            var sends = s.ReadyToSend(now);
            return new FunctionResult()
                .Messages(QueueNames.Sends, sends.Select(Send))
                .Log($"instance {instanceId}: {sends.Count} message(s) to send")
                .ToResult();
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogError(e, "run-step {Instance} failed (Service Bus message {SbId}, delivery {Delivery} of {Max})", instanceId, inv.MessageId, inv.DeliveryCount, MaxDeliveryCount);
            if (inv.DeliveryCount >= MaxDeliveryCount)
            {
                // Left due, the sweep would send it here again every 10 s for ever: end it, with the reason on record.
                await DeadLetters.RecordAsync(log, "instance " + instanceId, () => DeadLetters.ExitInstanceAsync(store, instanceId, Error(e), now));
            }

            return FunctionResult.Failure(500, $"instance {instanceId} failed: {e.Message}");
        }
    }

    /// <summary>send: one message through the send stage. Retries it schedules stay in the store for the sweep.</summary>
    public async Task<IResult> SendAsync(Invocation inv, CancellationToken ct)
    {
        var messageId = Required(inv.Object(MessageBinding), "messageId", MessageBinding);
        var now = time.GetUtcNow();
        try
        {
            var attempted = await sender.RunOneAsync(messageId, now, ct);
            return new FunctionResult()
                .Log(attempted ? $"message {messageId} attempted" : $"message {messageId} is not due to send (sent, waiting to retry, or taken by another invocation)")
                .ToResult();
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogError(e, "send {Message} failed (Service Bus message {SbId}, delivery {Delivery} of {Max})", messageId, inv.MessageId, inv.DeliveryCount, MaxDeliveryCount);
            if (inv.DeliveryCount >= MaxDeliveryCount)
            {
                // Service Bus dead-letters the queue message after this answer; the message record must not stay drafted.
                await DeadLetters.RecordAsync(log, "message " + messageId, () => DeadLetters.FailMessageAsync(store, messageId, Error(e), now));
            }

            return FunctionResult.Failure(500, $"message {messageId} failed: {e.Message}");
        }
    }

    /// <summary>
    /// journey-timers: emits <c>steps</c> for the journey instances due now and <c>sends</c> for the messages due now
    /// (retries, deferred sends, and any whose send output was lost). Both are repeated until handled, so a lost
    /// message costs at most one timer period.
    /// </summary>
    public async Task<IResult> JourneyTimersAsync(Invocation inv, CancellationToken ct)
    {
        // The timer's own value (schedule, IsPastDue) changes nothing: what is due is read from the store.
        var timer = inv.Object(TimerBinding);
        var now = time.GetUtcNow();
        var limit = options.Value.Functions.SweepLimit;
        using var span = PipelineTelemetry.StartStage(PipelineTelemetry.JourneyTimers, 0);
        var due = await store.DueInstancesAsync(now, limit, ct);
        var ready = await store.ReadyMessagesAsync(now, limit, ct);
        var result = new FunctionResult()
            .Messages(QueueNames.Steps, due.Select(d => new JsonObject { ["instanceId"] = d.Id, ["profileKey"] = d.ProfileKey }))
            .Messages(QueueNames.Sends, ready.Select(m => Send(m.Id)))
            .Log($"{due.Count} instance(s) due, {ready.Count} message(s) ready");
        if (timer["IsPastDue"] is JsonValue late && late.GetValueKind() == JsonValueKind.True)
        {
            result.Log("the timer ran late (IsPastDue)");
        }

        if (due.Count == limit || ready.Count == limit)
        {
            log.LogWarning("journey-timers: the sweep limit ({Limit}) was reached; the rest fires on the next runs", limit);
        }

        return result.ToResult();
    }

    private static JsonObject Send(string messageId) => new() { ["messageId"] = messageId };

    private static string Error(Exception e) => $"{e.GetType().Name}: {e.Message}";

    private static string Required(JsonObject o, string field, string binding) =>
        HostValues.Text(o[field]) is { Length: > 0 } v ? v : throw new InvalidInvocationException($"Data.{binding}.{field} is missing");

    /// <summary>
    /// Reads an events message. Ops are validated at ingest; this only refuses bodies that are not ops at all, before
    /// anything is written, so a bad message fails the same way on every delivery and changes nothing.
    /// </summary>
    private static IngestOp ReadOp(JsonObject body)
    {
        IngestOp op;
        try
        {
            op = JsonSerializer.Deserialize<IngestOp>(body, StoreJson.Options) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new InvalidInvocationException($"Data.{EventBinding} is not an ingest op: {e.Message}");
        }

        var missing = op.Kind switch
        {
            _ when string.IsNullOrEmpty(op.MessageId) => "messageId",
            OpKind.Track when op.Event is null => "event",
            OpKind.Track => null,

            // Reports and SMS keywords name a message or a phone number, not a person.
            OpKind.MessageReport when op.Report is null => "report",
            OpKind.SmsKeyword when op.Phone is null || op.Attributes is null => "phone",
            OpKind.MessageReport or OpKind.SmsKeyword => null,
            _ when op.Target is null => "target",
            OpKind.UpsertDevice or OpKind.DeleteDevice when op.Device is null => "device",
            OpKind.Merge when op.Secondary is null => "secondary",
            _ => null,
        };
        return missing is null ? op : throw new InvalidInvocationException($"Data.{EventBinding} ({op.Kind}) has no {missing}");
    }
}
