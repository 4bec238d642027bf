using Nudge.Core.Ingest;
using Nudge.Core.Queues;
using Nudge.Host.Telemetry;
using Nudge.Pipeline;

namespace Nudge.Host.Ingest;

/// <summary>
/// The ingest stage's output: puts accepted ops on the events queue and returns once they are durable. Every API that
/// accepts input (Track, Segment, webhooks, SDK metrics) writes through here, so this is where ingest is measured.
/// </summary>
public sealed class IngestWriter(IWorkQueue queue)
{
    public async Task WriteAsync(IReadOnlyList<IngestOp> ops, CancellationToken ct)
    {
        using var span = HostTelemetry.StartIngest(ops);
        await queue.EnqueueAsync(QueueNames.Events, ops.Select(op => new OutgoingMessage(IngestOpJson.Serialize(op))).ToList(), ct);
        HostTelemetry.Ingested(ops);
    }
}
