using System.Diagnostics;
using System.Diagnostics.Metrics;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;

namespace Nudge.Pipeline;

/// <summary>
/// Traces and metrics of the pipeline stages on the BCL types (no OpenTelemetry dependency): the ActivitySource and
/// Meter named <see cref="Name"/>. Spans: one per stage batch (<see cref="ProcessEvent"/>, <see cref="JourneyTimers"/>,
/// <see cref="RunStep"/>, <see cref="Send"/>, <see cref="SendRecord"/>). Counters: nudge.events.processed,
/// nudge.steps.run, nudge.messages. Attributes never carry personal data (ids of people, addresses, tokens, content).
/// </summary>
/// <remarks>
/// Counts made while a <see cref="Defer"/> scope is open are held until <see cref="CountScope.Complete"/>, which callers
/// call once the store transaction committed: a batch that rolls back and is retried op by op is counted once.
/// Without a listener every call here is a flag check and allocates nothing.
/// </remarks>
public static class PipelineTelemetry
{
    /// <summary>The ActivitySource and Meter name.</summary>
    public const string Name = "Nudge.Pipeline";

    public const string ProcessEvent = "process-event";
    public const string JourneyTimers = "journey-timers";
    public const string RunStep = "run-step";
    public const string Send = "send";
    public const string SendRecord = "send.record";

    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Ingest ops applied by process-event, by nudge.event.kind and nudge.outcome (applied, duplicate).</summary>
    public static readonly Counter<long> EventsProcessed = Meter.CreateCounter<long>("nudge.events.processed", "{event}",
        "Ingest ops handled by process-event");

    /// <summary>Journey steps evaluated, by nudge.journey, nudge.step.trigger (start, event, timer) and nudge.outcome (the instance's status after, or unchanged).</summary>
    public static readonly Counter<long> StepsRun = Meter.CreateCounter<long>("nudge.steps.run", "{step}",
        "Journey instance evaluations");

    /// <summary>Statuses messages reached (one per delivery event recorded), by nudge.channel and nudge.status.</summary>
    public static readonly Counter<long> Messages = Meter.CreateCounter<long>("nudge.messages", "{message}",
        "Message statuses reached (drafted, attempted, sent, delivered, opened, failed, ...)");

    private static readonly AsyncLocal<CountScope?> Current = new();

    /// <summary>Starts a stage span of <paramref name="items"/> inputs; null when nothing listens.</summary>
    public static Activity? StartStage(string name, int items, ActivityKind kind = ActivityKind.Internal)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var a = Source.StartActivity(name, kind);
        a?.SetTag("nudge.batch.size", items);
        return a;
    }

    /// <summary>Holds the counts made in this async flow until <see cref="CountScope.Complete"/>; disposing without it drops them.</summary>
    public static CountScope Defer()
    {
        var scope = new CountScope(Current.Value);
        Current.Value = scope;
        return scope;
    }

    /// <summary>One ingest op handled by process-event.</summary>
    public static void EventProcessed(OpKind kind, bool duplicate)
    {
        if (EventsProcessed.Enabled)
        {
            Count(EventsProcessed, new("nudge.event.kind", KindName(kind)), new("nudge.outcome", duplicate ? "duplicate" : "applied"), default);
        }
    }

    /// <summary>One evaluation of an instance of <paramref name="journeyId"/>.</summary>
    public static void StepRun(string journeyId, EngineInput input, InstanceStatus? after)
    {
        if (StepsRun.Enabled)
        {
            var trigger = input == EngineInput.Start ? "start" : input == EngineInput.Timer ? "timer" : "event";
            Count(StepsRun, new("nudge.journey", journeyId), new("nudge.step.trigger", trigger), new("nudge.outcome", after is { } s ? StatusName(s) : "unchanged"));
        }
    }

    /// <summary>A message reached the status of <paramref name="e"/> (called where the delivery event is stored).</summary>
    public static void MessageStatus(DeliveryEvent e)
    {
        if (Messages.Enabled)
        {
            Count(Messages, new("nudge.channel", e.Channel), new("nudge.status", e.Metric), default);
        }
    }

    private static void Count(Counter<long> c, KeyValuePair<string, object?> a, KeyValuePair<string, object?> b, KeyValuePair<string, object?> d)
    {
        if (Current.Value is { } scope)
        {
            scope.Add(c, a, b, d);
        }
        else
        {
            Add(c, a, b, d);
        }
    }

    private static void Add(Counter<long> c, KeyValuePair<string, object?> a, KeyValuePair<string, object?> b, KeyValuePair<string, object?> d)
    {
        if (d.Key is null)
        {
            c.Add(1, a, b);
        }
        else
        {
            c.Add(1, a, b, d);
        }
    }

    /// <summary>Snake-case op kind (identify, track, upsert_device, ...), the attribute value of nudge.event.kind.</summary>
    public static string KindName(OpKind kind) => kind switch
    {
        OpKind.Identify => "identify",
        OpKind.Track => "track",
        OpKind.DeleteProfile => "delete_profile",
        OpKind.UpsertDevice => "upsert_device",
        OpKind.DeleteDevice => "delete_device",
        OpKind.Suppress => "suppress",
        OpKind.Unsuppress => "unsuppress",
        OpKind.Merge => "merge",
        OpKind.MessageReport => "message_report",
        OpKind.SmsKeyword => "sms_keyword",
        _ => "other",
    };

    private static string StatusName(InstanceStatus s) => s switch
    {
        InstanceStatus.Pending => "pending",
        InstanceStatus.Active => "active",
        InstanceStatus.Completed => "completed",
        InstanceStatus.Exited => "exited",
        _ => "converted",
    };

    /// <summary>Counts held until the work they describe is committed; see <see cref="Defer"/>.</summary>
    public sealed class CountScope : IDisposable
    {
        private readonly CountScope? _outer;
        private readonly Lock _gate = new();
        private List<(Counter<long> C, KeyValuePair<string, object?> A, KeyValuePair<string, object?> B, KeyValuePair<string, object?> D)>? _held;

        internal CountScope(CountScope? outer) => _outer = outer;

        internal void Add(Counter<long> c, KeyValuePair<string, object?> a, KeyValuePair<string, object?> b, KeyValuePair<string, object?> d)
        {
            lock (_gate)
            {
                (_held ??= []).Add((c, a, b, d));
            }
        }

        /// <summary>The work committed: records the held counts (into the enclosing scope, if any).</summary>
        public void Complete()
        {
            lock (_gate)
            {
                foreach (var (c, a, b, d) in _held ?? [])
                {
                    if (_outer is not null)
                    {
                        _outer.Add(c, a, b, d);
                    }
                    else
                    {
                        PipelineTelemetry.Add(c, a, b, d);
                    }
                }

                _held = null;
            }
        }

        public void Dispose()
        {
            _held = null;
            if (Current.Value == this)
            {
                Current.Value = _outer;
            }
        }
    }
}
