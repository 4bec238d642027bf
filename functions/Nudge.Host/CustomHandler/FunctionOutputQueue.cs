using System.Text.Json.Nodes;
using Nudge.Core.Queues;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// The work queue of Functions mode, one per invocation (scoped): what an endpoint enqueues becomes the invocation's
/// Service Bus output binding of the same name. The Functions host writes output bindings before it sends the HTTP
/// response, and fails the invocation if it cannot, so "answer 2xx only once the input is durably queued" holds as it
/// does for the embedded queue. Receiving is the host's job (queue triggers), so only enqueueing is supported.
/// </summary>
public sealed class FunctionOutputQueue : IWorkQueue
{
    private readonly List<(string Queue, JsonObject Body)> _messages = [];

    /// <summary>The messages enqueued on <paramref name="queue"/> so far, as the JSON objects the output binding sends.</summary>
    public IReadOnlyList<JsonObject> Messages(string queue)
    {
        lock (_messages)
        {
            return [.. _messages.Where(m => m.Queue == queue).Select(m => m.Body)];
        }
    }

    /// <summary>Queue names that have messages.</summary>
    public IReadOnlyList<string> Queues()
    {
        lock (_messages)
        {
            return [.. _messages.Select(m => m.Queue).Distinct(StringComparer.Ordinal)];
        }
    }

    /// <exception cref="NotSupportedException">A message asks for a delay (output bindings cannot delay).</exception>
    /// <exception cref="InvalidOperationException">A body is not a JSON object (it would reach the host as a bare string).</exception>
    public Task EnqueueAsync(string queue, IReadOnlyList<OutgoingMessage> messages, CancellationToken ct = default)
    {
        var parsed = new List<JsonObject>(messages.Count);
        foreach (var m in messages)
        {
            if (m.VisibleAt is not null)
            {
                throw new NotSupportedException("Functions output bindings cannot delay a message; keep the due time in the store for the timers sweep");
            }

            parsed.Add(JsonNode.Parse(m.Body) as JsonObject ?? throw new InvalidOperationException($"a {queue} message must be a JSON object"));
        }

        lock (_messages)
        {
            _messages.AddRange(parsed.Select(p => (queue, p)));
        }

        return Task.CompletedTask;
    }

    /// <summary>Service Bus holds the queues in Functions mode; their lengths are in Azure Monitor, not here: always 0.</summary>
    public Task<long> CountAsync(string queue, CancellationToken ct = default) => Task.FromResult(0L);

    public Task<IReadOnlyList<LeasedMessage>> ReceiveAsync(string queue, int max, TimeSpan lease, CancellationToken ct = default) => throw NotHere();

    public Task CompleteAsync(IReadOnlyList<LeasedMessage> messages, CancellationToken ct = default) => throw NotHere();

    public Task AbandonAsync(LeasedMessage message, TimeSpan delay, CancellationToken ct = default) => throw NotHere();

    public Task DeadLetterAsync(LeasedMessage message, string reason, CancellationToken ct = default) => throw NotHere();

    public Task WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken ct = default) => throw NotHere();

    private static NotSupportedException NotHere() =>
        new("in Functions mode the Functions host receives queue messages and triggers the stages; nothing here receives");
}
