using System.Text.Json.Nodes;
using Nudge.Core.Messages;

namespace Nudge.Core.Ingest;

/// <summary>
/// Validates the app SDKs' delivery metrics calls of the Track API (<c>POST /push/events</c>, the legacy push call, and
/// <c>POST /metrics</c>) and turns each into one <see cref="OpKind.MessageReport"/> op. Throws
/// <see cref="ValidationException"/> naming every bad field; no side effects.
/// </summary>
public sealed class DeliveryMetricsParser(IngestLimits limits)
{
    /// <summary>Source recorded on the message history and delivery event.</summary>
    public const string Source = "sdk";

    /// <summary>Events of <c>/push/events</c>.</summary>
    public static readonly IReadOnlySet<string> PushEvents = new HashSet<string>(StringComparer.Ordinal)
    {
        MessageStatus.Delivered, MessageStatus.Opened, MessageStatus.Converted,
    };

    /// <summary>Metrics of <c>/metrics</c> that an app or backend may report for a message.</summary>
    public static readonly IReadOnlySet<string> Metrics = new HashSet<string>(StringComparer.Ordinal)
    {
        MessageStatus.Delivered, MessageStatus.Opened, MessageStatus.Clicked, MessageStatus.Converted,
    };

    /// <summary><c>{delivery_id, event: delivered|opened|converted, device_id, timestamp}</c>.</summary>
    public IngestOp PushEvent(JsonObject body, DateTimeOffset now) => Parse(body, "event", PushEvents, "device_id", now);

    /// <summary><c>{delivery_id, metric, recipient, timestamp}</c>.</summary>
    public IngestOp Metric(JsonObject body, DateTimeOffset now) => Parse(body, "metric", Metrics, "recipient", now);

    private IngestOp Parse(JsonObject body, string metricField, IReadOnlySet<string> allowed, string recipientField, DateTimeOffset now)
    {
        var f = new JsonFields([]);
        var deliveryId = f.IdString(body, "delivery_id", "delivery_id", limits.MaxIdentifierBytes * 4, required: true);
        var metric = f.String(body, metricField, metricField, required: true);
        if (metric is not null && !allowed.Contains(metric))
        {
            f.Add(metricField, $"must be one of {string.Join(", ", allowed)}, got '{JsonFields.Truncate(metric)}'");
        }

        var recipient = f.IdString(body, recipientField, recipientField, limits.MaxIdentifierBytes * 4, required: false);
        var ts = f.UnixSeconds(body, "timestamp", "timestamp");
        IngestValidator.ThrowIfAny(f);
        return new IngestOp
        {
            Kind = OpKind.MessageReport,

            // One op per (message, metric): a repeated report is dropped at the door (the status model would ignore it too).
            MessageId = $"sdk:{deliveryId}:{metric}",
            Source = Source,
            Timestamp = ts ?? now,
            ReceivedAt = now,
            Report = new MetricReport(deliveryId!, metric!, Recipient: recipient),
        };
    }
}
