using Nudge.Core.Ingest;
using Nudge.Core.Queues;
using Nudge.Pipeline;

namespace Nudge.Host.Ingest;

/// <summary>The ingest stage's output: puts accepted ops on the events queue and returns once they are durable.</summary>
public sealed class IngestWriter(IWorkQueue queue)
{
    public Task WriteAsync(IReadOnlyList<IngestOp> ops, CancellationToken ct) =>
        queue.EnqueueAsync(QueueNames.Events, ops.Select(op => new OutgoingMessage(IngestOpJson.Serialize(op))).ToList(), ct);
}
