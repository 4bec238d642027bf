using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Reports;
using Nudge.Core.Storage;

namespace Nudge.Pipeline;

/// <summary>
/// The run-step and journey-timers stages: connects the pure <see cref="JourneyEngine"/> to the store. It starts
/// journeys from events and attribute dates, delivers events to running instances, fires due timers, and stores
/// instances, messages and attribute updates in the caller's session (so one transaction covers them on SQLite).
/// </summary>
/// <param name="journeys">The loaded journeys.</param>
/// <param name="engine">The engine.</param>
/// <param name="limits">Ingest limits (attribute count for update steps).</param>
/// <param name="eventsAlwaysDelivered">
/// True when every stored event has already been delivered to the person's active instances in the same transaction
/// (the embedded server: one writer runs process-event and the timers). Timers then skip re-reading the events since
/// the instance started. False where process-event and run-step race (Functions): timers re-check those events for exits.
/// </param>
public sealed class JourneyRuntime(IReadOnlyList<JourneyDefinition> journeys, JourneyEngine engine, IngestLimits limits, bool eventsAlwaysDelivered = false)
{
    /// <summary>Most events since an instance started that a timer run reads to look for exits: 500.</summary>
    private const int MaxEventsPerRun = 500;

    /// <summary>
    /// Every event name a journey reacts to: triggers, inactivity resets, exits, goals and wait-for steps. An event with
    /// any other name (most page and product views) cannot start, move, end or convert anything, so it is not matched
    /// against the person's instances at all.
    /// </summary>
    private readonly HashSet<string> _eventNames = new(journeys.SelectMany(j => j.EventNames()), StringComparer.Ordinal);

    public IReadOnlyList<JourneyDefinition> Journeys { get; } = journeys;

    /// <summary>Which messages a conversion is credited to (reached before the goal, within its window).</summary>
    public AttributionRule Attribution { get; init; } = AttributionRule.Default;

    public JourneyDefinition? Find(string id) => Journeys.FirstOrDefault(j => j.Id == id);

    /// <summary>Whether some journey reacts to events named <paramref name="eventName"/> (see <see cref="JourneyDefinition.EventNames"/>).</summary>
    public bool ReactsTo(string eventName) => _eventNames.Contains(eventName);

    /// <summary>An event was stored for <paramref name="p"/>: deliver it to running instances, then start journeys it triggers.</summary>
    public async Task OnEventAsync(IStoreSession s, Profile p, StoredEvent e, DateTimeOffset now)
    {
        if (!ReactsTo(e.Name))
        {
            return;
        }

        var snapshot = new EventSnapshot(e.Name, e.EventId, e.Timestamp, e.Data);
        var instances = (await s.GetInstancesAsync(p.Key)).ToList();
        foreach (var i in instances.Where(i => i.Status is not InstanceStatus.Pending and not InstanceStatus.Converted))
        {
            if (Find(i.JourneyId) is { } j && (i.Status == InstanceStatus.Active || JourneyEngine.CanStillConvert(j, i, e.Timestamp)))
            {
                await RunAsync(s, j, i, p, new EventInput(snapshot), now);
            }
        }

        foreach (var j in Journeys)
        {
            switch (j.Trigger)
            {
                case EventTrigger t when t.Names.Contains(e.Name)
                    && Conditions.All(t.Where, new ConditionScope(e.Data, e.Data, p, null)):
                    {
                        var previous = instances.Where(i => i.JourneyId == j.Id).ToList();
                        if (JourneyEngine.CannotStart(j, p, previous, e.Timestamp, now) is null)
                        {
                            var trigger = new TriggerSnapshot(e.Name, e.EventId, e.Timestamp, (JsonObject)e.Data.DeepClone());
                            var i = JourneyEngine.NewInstance(j, p.Key, previous, trigger, now);
                            instances.Add(i);
                            await RunAsync(s, j, i, p, EngineInput.Start, now);
                        }

                        break;
                    }

                case InactivityTrigger t when t.Event == e.Name:
                    await ScheduleAsync(s, j, p, instances, e.Timestamp + t.Period,
                        new TriggerSnapshot("inactive:" + t.Event, e.EventId, e.Timestamp, new JsonObject { ["last_event_at"] = e.Timestamp }));
                    break;
            }
        }
    }

    /// <summary>The person's attributes changed: (re)schedule journeys triggered by a date attribute.</summary>
    public async Task OnProfileChangedAsync(IStoreSession s, Profile p, DateTimeOffset now)
    {
        var dated = Journeys.Where(j => j.Trigger is DateTrigger).ToList();
        if (dated.Count == 0)
        {
            return;
        }

        var instances = (await s.GetInstancesAsync(p.Key)).ToList();
        foreach (var j in dated)
        {
            var t = (DateTrigger)j.Trigger;
            var pending = instances.FirstOrDefault(i => i.JourneyId == j.Id && i.Status == InstanceStatus.Pending);
            if (ReadDate(p.Get(t.Attribute)) is not { } date)
            {
                if (pending is not null)
                {
                    Cancel(pending, now, "trigger_attribute_removed");
                    await s.PutInstanceAsync(pending);
                }

                continue;
            }

            var due = date + t.Offset;
            if (due < now - j.MaxEventAge)
            {
                continue; // long past: like an old event, it does not start the journey
            }

            await ScheduleAsync(s, j, p, instances, due, new TriggerSnapshot(
                "attribute:" + t.Attribute, $"{t.Attribute}@{date.ToUnixTimeSeconds()}", due, new JsonObject { [t.Attribute] = p.Get(t.Attribute)?.DeepClone() }));
        }
    }

    /// <summary>Fires one due instance (a timer, or a pending start). Idempotent: an instance not due is left alone.</summary>
    public async Task FireAsync(IStoreSession s, string instanceId, DateTimeOffset now)
    {
        using var span = PipelineTelemetry.StartStage(PipelineTelemetry.RunStep, 1);
        var i = await s.GetInstanceAsync(instanceId);
        span?.SetTag("nudge.journey", i?.JourneyId);
        if (i?.WakeAt is not { } wake || wake > now || Find(i.JourneyId) is not { } j)
        {
            if (i is { WakeAt: not null } && Find(i.JourneyId) is null)
            {
                Cancel(i, now, "journey_removed");
                await s.PutInstanceAsync(i);
            }

            return;
        }

        var p = await s.GetProfileAsync(i.ProfileKey);
        if (p is null)
        {
            Cancel(i, now, "person_deleted");
            await s.PutInstanceAsync(i);
            return;
        }

        if (i.Status == InstanceStatus.Pending)
        {
            var previous = (await s.GetInstancesAsync(p.Key)).Where(x => x.JourneyId == j.Id && x.Id != i.Id).ToList();
            if (JourneyEngine.CannotStart(j, p, previous, wake, wake) is { } reason)
            {
                Cancel(i, now, reason);
                await s.PutInstanceAsync(i);
                return;
            }

            i.Status = InstanceStatus.Active;
            i.StartedAt = wake;
            i.WakeAt = null;
            await RunAsync(s, j, i, p, EngineInput.Start, now);
            return;
        }

        await RunAsync(s, j, i, p, EngineInput.Timer, now);
    }

    private static async Task ScheduleAsync(IStoreSession s, JourneyDefinition j, Profile p, List<JourneyInstance> instances, DateTimeOffset due, TriggerSnapshot trigger)
    {
        var pending = instances.FirstOrDefault(i => i.JourneyId == j.Id && i.Status == InstanceStatus.Pending);
        if (pending is not null)
        {
            if (pending.WakeAt != due)
            {
                pending.WakeAt = due;
                pending.StepEnteredAt = due;
                await s.PutInstanceAsync(pending);
            }

            return;
        }

        var previous = instances.Where(i => i.JourneyId == j.Id).ToList();
        var i = JourneyEngine.NewInstance(j, p.Key, previous, trigger, due, InstanceStatus.Pending);
        instances.Add(i);
        await s.PutInstanceAsync(i);
    }

    private async Task RunAsync(IStoreSession s, JourneyDefinition j, JourneyInstance i, Profile p, EngineInput input, DateTimeOffset now)
    {
        var devices = await s.GetDevicesAsync(p.Key);
        var horizon = j.Caps.Count == 0 ? engine.Options.Caps.Horizon : new FrequencyCaps([.. engine.Options.Caps.Rules, .. j.Caps]).Horizon;
        var history = horizon == TimeSpan.Zero ? [] : (await s.GetMessagesSinceAsync(p.Key, now - horizon))
            .Where(m => m.CountsTowardCaps)
            .Select(m => new SendRecord(m.Channel, m.CreatedAt, m.Priority, m.Transactional, m.JourneyId)).ToList();
        var events = input == EngineInput.Timer && !eventsAlwaysDelivered && (j.Exits.Count > 0 || j.Goal is not null)
            ? (await s.GetEventsSinceAsync(p.Key, JourneyEngine.EventsCountFrom(j, i), MaxEventsPerRun)).Select(e => new EventSnapshot(e.Name, e.EventId, e.Timestamp, e.Data)).ToList()
            : [];
        var result = engine.Run(j, i, new EngineContext(p, devices, history, events, now), input);
        if (!result.Changed && i.Version > 0)
        {
            PipelineTelemetry.StepRun(j.Id, input, null);
            return;
        }

        PipelineTelemetry.StepRun(j.Id, input, i.Status);

        await s.PutInstanceAsync(i);
        foreach (var m in result.Messages)
        {
            // The status it was created with (drafted, or undeliverable / failed with its reason) is its first delivery event;
            // a retried step finds the message stored and records nothing again.
            if (await s.TryAddMessageAsync(m))
            {
                var first = DeliveryEvent.For(m, m.Status, m.CreatedAt, m.Reason) with { RecordedAt = now };
                await s.AppendDeliveryEventAsync(first);
                PipelineTelemetry.MessageStatus(first);
            }
        }

        if (result.ConvertedAt is { } at && j.Goal is { } goal)
        {
            // The instance converted (holdout or not: lift compares the two). Its messages are credited only if they
            // reached the person before the goal, within the goal's window (Attribution): sent is not reach.
            foreach (var m in (await s.GetMessagesSinceAsync(p.Key, i.StartedAt)).Where(m => m.InstanceId == i.Id && Attribution.Converts(m, at, goal.Within)))
            {
                if (StatusTransitions.Apply(m, MessageStatus.Converted, at, null, "goal", key: "goal:" + i.Id) is { } e)
                {
                    await s.PutMessageAsync(m);
                    await s.AppendDeliveryEventAsync(e with { RecordedAt = now });
                    PipelineTelemetry.MessageStatus(e);
                }
            }
        }

        if (result.AttributeUpdates.Count > 0)
        {
            ProfileRules.ApplyAttributes(p, result.AttributeUpdates, now, "journey:" + j.Id, null, limits.MaxAttributes);
            p.UpdatedAt = now;
            await s.PutProfileAsync(p);
        }
    }

    private static void Cancel(JourneyInstance i, DateTimeOffset now, string reason)
    {
        i.Status = InstanceStatus.Exited;
        i.EndReason = reason;
        i.EndedAt = now;
        i.WakeAt = null;
    }

    /// <summary>A date attribute as Customer.io accepts it: Unix seconds, or ISO-8601 text.</summary>
    public static DateTimeOffset? ReadDate(JsonNode? n)
    {
        if (n is null)
        {
            return null;
        }

        if (n.GetValueKind() == JsonValueKind.Number && double.TryParse(n.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var secs) && secs is > 0 and < 1e11)
        {
            return DateTimeOffset.FromUnixTimeMilliseconds((long)(secs * 1000));
        }

        return n.GetValueKind() == JsonValueKind.String && DateTimeOffset.TryParse(n.GetValue<string>(), CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t) ? t : null;
    }
}
