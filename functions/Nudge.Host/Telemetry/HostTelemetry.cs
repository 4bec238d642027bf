using System.Diagnostics;
using System.Diagnostics.Metrics;
using Nudge.Core.Ingest;
using Nudge.Core.Queues;
using Nudge.Pipeline;
using Nudge.Sqlite.Queue;

namespace Nudge.Host.Telemetry;

/// <summary>
/// Traces and metrics of the host's own stages on the BCL types: the ActivitySource and Meter named <see cref="Name"/>.
/// Span "ingest.enqueue" (the accepted ops put on the events queue); counter nudge.events.ingested (by nudge.api and
/// nudge.event.kind, counted once the ops are durable); histogram nudge.queue.lag (how long the oldest message of a
/// batch waited, by nudge.queue); gauge nudge.queue.depth (embedded queue, by nudge.queue).
/// </summary>
public static class HostTelemetry
{
    /// <summary>The ActivitySource and Meter name.</summary>
    public const string Name = "Nudge.Host";

    public const string IngestSpan = "ingest.enqueue";

    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Ops accepted by an API and durably queued, by nudge.api (track, segment, sdk, twilio, sendgrid, email_link, ...) and nudge.event.kind.</summary>
    public static readonly Counter<long> EventsIngested = Meter.CreateCounter<long>("nudge.events.ingested", "{event}",
        "Ingest ops accepted and durably queued");

    /// <summary>Seconds the oldest message of a batch waited in its queue before a worker took it, by nudge.queue.</summary>
    public static readonly Histogram<double> QueueLagSeconds = Meter.CreateHistogram(
        "nudge.queue.lag", "s", "How long the oldest message of a batch waited in its queue",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900] });

    /// <summary>The span of one enqueue of accepted ops; null when nothing listens.</summary>
    public static Activity? StartIngest(IReadOnlyList<IngestOp> ops)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var a = Source.StartActivity(IngestSpan, ActivityKind.Producer);
        if (a is { IsAllDataRequested: true })
        {
            a.SetTag("nudge.batch.size", ops.Count);
            a.SetTag("nudge.api", ops.Count > 0 ? Api(ops[0].Source) : null);
        }

        return a;
    }

    /// <summary>Counts ops that are now durably queued.</summary>
    public static void Ingested(IReadOnlyList<IngestOp> ops)
    {
        if (!EventsIngested.Enabled)
        {
            return;
        }

        foreach (var op in ops)
        {
            EventsIngested.Add(1, new("nudge.api", Api(op.Source)), new("nudge.event.kind", PipelineTelemetry.KindName(op.Kind)));
        }
    }

    /// <summary>Records how long the oldest message of <paramref name="batch"/> waited.</summary>
    public static void QueueLag(string queue, IReadOnlyList<LeasedMessage> batch, DateTimeOffset now)
    {
        if (!QueueLagSeconds.Enabled || batch.Count == 0)
        {
            return;
        }

        var oldest = batch.Min(m => m.EnqueuedAt);
        QueueLagSeconds.Record(Math.Max(0, (now - oldest).TotalSeconds), new KeyValuePair<string, object?>("nudge.queue", queue));
    }

    /// <summary>
    /// The embedded queue's depth as an observable gauge, read at each export (one COUNT per queue). The meter is this
    /// server's own: disposing it (at shutdown) removes the gauge, so servers in one process do not report each other's queues.
    /// </summary>
    public static Meter QueueDepth(SqliteWorkQueue queue)
    {
        var meter = new Meter(Name);
        string[] names = [QueueNames.Events, QueueNames.Events + "-poison"];
        meter.CreateObservableGauge("nudge.queue.depth", () => names.Select(n =>
            new Measurement<long>(queue.CountAsync(n).GetAwaiter().GetResult(), new KeyValuePair<string, object?>("nudge.queue", n))),
            "{message}", "Messages waiting in the embedded queue (events) and its dead-letter queue (events-poison)");
        return meter;
    }

    /// <summary>The API an op came through: its source up to the first colon ("twilio:STOP" is twilio).</summary>
    private static string Api(string source)
    {
        var colon = source.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? source : source[..colon];
    }
}
