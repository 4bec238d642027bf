using Microsoft.DurableTask;
using Nudge.Core.Journeys;
using Nudge.Core.Storage;
using Nudge.Pipeline;

namespace Nudge.Durable;

/// <summary>
/// A journey entry as a Durable orchestration, for the Azure runtime (the embedded server keeps its own timer loop).
/// The orchestrator holds no journey logic, so editing a journey file never breaks a replay: it asks
/// <see cref="JourneyStepActivity"/> to run the shared engine against the store, then sleeps until the instance's
/// wake-up or until an event of the person arrives (<see cref="EventName"/>, raised by process-event), whichever comes
/// first, and starts over with <c>ContinueAsNew</c> so its history stays a few events long. The store stays the system
/// of record: process-event applies exits, goals and wait-for matches there as it does today, and the activity reads
/// the result.
/// </summary>
public static class JourneyOrchestration
{
    /// <summary>The orchestrator's name.</summary>
    public const string Name = "journey";

    /// <summary>The activity's name.</summary>
    public const string StepActivity = "journey-step";

    /// <summary>The external event process-event raises when an event of the person may concern the instance.</summary>
    public const string EventName = "event";

    /// <summary>
    /// The orchestration instance id of a journey instance: its own id (<c>{journey}:{profile key}:{entry}</c>), so
    /// starting it twice is harmless and process-event can raise events to it without a lookup.
    /// </summary>
    public static string InstanceIdOf(string journeyInstanceId) => "journey:" + journeyInstanceId;

    /// <summary>The orchestrator: one turn of the journey instance <paramref name="journeyInstanceId"/>.</summary>
    public static async Task RunAsync(TaskOrchestrationContext context, string journeyInstanceId)
    {
        ArgumentNullException.ThrowIfNull(context);
        var state = await context.CallActivityAsync<JourneyStepResult>(StepActivity, journeyInstanceId);
        if (!state.Running)
        {
            return;
        }

        using var cancel = new CancellationTokenSource();
        var nudged = context.WaitForExternalEvent<string>(EventName, cancel.Token);
        if (state.WakeAt is { } wake)
        {
            var timer = context.CreateTimer(wake.UtcDateTime, cancel.Token);
            await Task.WhenAny(timer, nudged);
        }
        else
        {
            // Waiting for an event with no time limit (or a goal window only the person's events can end).
            await nudged;
        }

        // Only one of the two completed: the other is cancelled, or it would keep the orchestration from finishing.
        // Synchronously: CancelAsync would continue on the thread pool, outside the orchestration's turn, and the
        // ContinueAsNew below would then come after the turn had already ended (the orchestration stalls, Running).
#pragma warning disable CA1849 // Cancel, not CancelAsync: orchestrator code must stay on the orchestration's own turn.
        cancel.Cancel();
#pragma warning restore CA1849

        // Events raised while the activity ran are kept for the next turn: none is lost between two waits.
        context.ContinueAsNew(journeyInstanceId, preserveUnprocessedEvents: true);
    }
}

/// <summary>What a turn left: whether the instance still runs, and when it next wakes (null: only an event moves it).</summary>
public sealed record JourneyStepResult(bool Running, DateTimeOffset? WakeAt);

/// <summary>
/// The activity: runs whatever of the journey instance is due now through <see cref="JourneyRuntime.FireAsync"/> in
/// one store transaction (the same code the embedded timer loop runs), and reports the instance's state after it.
/// Idempotent: run again, it finds nothing due and reports the same state.
/// </summary>
public sealed class JourneyStepActivity(IStore store, JourneyRuntime runtime, TimeProvider time)
{
    public async Task<JourneyStepResult> RunAsync(string journeyInstanceId)
    {
        await using (var s = await store.OpenSessionAsync())
        {
            await runtime.FireAsync(s, journeyInstanceId, time.GetUtcNow());
            await s.CommitAsync();
        }

        await using var read = await store.OpenSessionAsync();
        var i = await read.GetInstanceAsync(journeyInstanceId);
        return i is { Status: InstanceStatus.Active or InstanceStatus.Pending }
            ? new JourneyStepResult(true, i.WakeAt)
            : new JourneyStepResult(false, null);
    }
}
