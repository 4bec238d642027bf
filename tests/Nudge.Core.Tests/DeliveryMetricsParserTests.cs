using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Messages;

namespace Nudge.Core.Tests;

public sealed class DeliveryMetricsParserTests
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly DeliveryMetricsParser Parser = new(new IngestLimits());

    [Fact]
    public void PushEvent_Valid_IsAReportKeyedByMessageAndMetric()
    {
        var op = Parser.PushEvent(JsonNode.Parse("""{"delivery_id":"m-1","event":"opened","device_id":"tok","timestamp":1780315200}""")!.AsObject(), Now);

        Assert.Equal((OpKind.MessageReport, "sdk:m-1:opened", "sdk"), (op.Kind, op.MessageId, op.Source));
        Assert.Equal(new MetricReport("m-1", MessageStatus.Opened, Recipient: "tok"), op.Report);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1780315200), op.Timestamp);
    }

    [Fact]
    public void Metric_WithoutTimestamp_UsesArrivalTime()
    {
        var op = Parser.Metric(JsonNode.Parse("""{"delivery_id":"m-2","metric":"clicked"}""")!.AsObject(), Now);

        Assert.Equal((MessageStatus.Clicked, Now), (op.Report!.Metric, op.Timestamp));
    }

    [Theory]
    [InlineData("""{"event":"opened"}""", "delivery_id")]
    [InlineData("""{"delivery_id":"m","event":"clicked"}""", "event")]
    [InlineData("""{"delivery_id":"m","event":"opened","timestamp":1780315200000}""", "timestamp")]
    [InlineData("""{"delivery_id":7.5e300,"event":"opened","device_id":{}}""", "device_id")]
    public void PushEvent_Invalid_NamesTheField(string body, string field)
    {
        var e = Assert.Throws<ValidationException>(() => Parser.PushEvent(JsonNode.Parse(body)!.AsObject(), Now));

        Assert.Contains(e.Errors, x => x.Field == field);
    }
}
