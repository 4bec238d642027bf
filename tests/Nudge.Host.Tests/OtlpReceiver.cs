using System.Collections.Concurrent;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Nudge.Host.Hosting;

namespace Nudge.Host.Tests;

/// <summary>
/// An OTLP/HTTP receiver on 127.0.0.1 (a free port): keeps every POST /v1/traces and /v1/metrics body and decodes the
/// protobuf fields the tests read (opentelemetry-proto trace/v1, metrics/v1, common/v1) with a minimal wire-format reader.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OtlpReceiver(WebApplication app) => _app = app;

    public Uri Endpoint => NudgeServer.BaseAddress(_app);

    public ConcurrentQueue<byte[]> Traces { get; } = new();

    public ConcurrentQueue<byte[]> Metrics { get; } = new();

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        async Task<IResult> Keep(HttpContext c, ConcurrentQueue<byte[]> into)
        {
            using var ms = new MemoryStream();
            await c.Request.Body.CopyToAsync(ms);
            into.Enqueue(ms.ToArray());

            // An empty Export*ServiceResponse: full success.
            return Results.Bytes([], "application/x-protobuf");
        }

        app.MapPost("/v1/traces", (Delegate)((HttpContext c) => Keep(c, receiver.Traces)));
        app.MapPost("/v1/metrics", (Delegate)((HttpContext c) => Keep(c, receiver.Metrics)));
        await app.StartAsync();
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>One span: name, kind (1 internal, 2 server, 3 client, 4 producer, 5 consumer), ids, attributes.</summary>
    public sealed record Span(string Scope, string Name, long Kind, string SpanId, string ParentSpanId, IReadOnlyDictionary<string, string> Attributes);

    /// <summary>One data point: a sum or gauge value, or a histogram's count and sum.</summary>
    public sealed record Point(string Metric, string Unit, string Type, IReadOnlyDictionary<string, string> Attributes, double Value, double Sum);

    /// <summary>Every span received so far (ExportTraceServiceRequest.resource_spans=1 / ResourceSpans.scope_spans=2 / ScopeSpans.spans=2).</summary>
    public List<Span> Spans()
    {
        var spans = new List<Span>();
        foreach (var body in Traces)
        {
            foreach (var rs in Messages(body, 1))
            {
                foreach (var ss in Messages(rs, 2))
                {
                    var scope = Messages(ss, 1).Select(s => Text(s, 1)).FirstOrDefault() ?? "";
                    foreach (var s in Messages(ss, 2))
                    {
                        var f = Fields(s);
                        spans.Add(new Span(scope, Text(s, 5) ?? "", Varint(f, 6), Hex(f, 2), Hex(f, 4), Attributes(s, 9)));
                    }
                }
            }
        }

        return spans;
    }

    /// <summary>Every data point received so far (resource_metrics=1 / scope_metrics=2 / metrics=2; gauge=5, sum=7, histogram=9).</summary>
    public List<Point> Points()
    {
        var points = new List<Point>();
        foreach (var body in Metrics)
        {
            foreach (var rm in Messages(body, 1))
            {
                foreach (var sm in Messages(rm, 2))
                {
                    foreach (var m in Messages(sm, 2))
                    {
                        var name = Text(m, 1) ?? "";
                        var unit = Text(m, 3) ?? "";
                        foreach (var (field, type) in new[] { (5, "gauge"), (7, "sum") })
                        {
                            foreach (var dp in Messages(m, field).SelectMany(d => Messages(d, 1)))
                            {
                                // NumberDataPoint: attributes=7, as_double=4 (double), as_int=6 (sfixed64).
                                var f = Fields(dp);
                                var value = f.FirstOrDefault(x => x.Field == 4) is { Bits: not null } d ? BitConverter.Int64BitsToDouble((long)d.Bits.Value)
                                    : f.FirstOrDefault(x => x.Field == 6) is { Bits: not null } i ? (long)i.Bits.Value : double.NaN;
                                points.Add(new Point(name, unit, type, Attributes(dp, 7), value, 0));
                            }
                        }

                        foreach (var dp in Messages(m, 9).SelectMany(h => Messages(h, 1)))
                        {
                            // HistogramDataPoint: attributes=9, count=4 (fixed64), sum=5 (double).
                            var f = Fields(dp);
                            var count = f.FirstOrDefault(x => x.Field == 4)?.Bits ?? 0;
                            var sum = f.FirstOrDefault(x => x.Field == 5) is { Bits: not null } s ? BitConverter.Int64BitsToDouble((long)s.Bits.Value) : 0;
                            points.Add(new Point(name, unit, "histogram", Attributes(dp, 9), count, sum));
                        }
                    }
                }
            }
        }

        return points;
    }

    /// <summary>One field of a message: its number, and its payload (length-delimited bytes, or the varint / fixed value).</summary>
    private sealed record WireField(int Field, byte[]? Bytes, ulong? Bits);

    private static List<WireField> Fields(byte[] message)
    {
        var fields = new List<WireField>();
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var number = WireFormat.GetTagFieldNumber(tag);
            switch (WireFormat.GetTagWireType(tag))
            {
                case WireFormat.WireType.LengthDelimited: fields.Add(new WireField(number, input.ReadBytes().ToByteArray(), null)); break;
                case WireFormat.WireType.Varint: fields.Add(new WireField(number, null, input.ReadUInt64())); break;
                case WireFormat.WireType.Fixed64: fields.Add(new WireField(number, null, input.ReadFixed64())); break;
                case WireFormat.WireType.Fixed32: fields.Add(new WireField(number, null, input.ReadFixed32())); break;
                default: input.SkipLastField(); break;
            }
        }

        return fields;
    }

    private static IEnumerable<byte[]> Messages(byte[] message, int field) =>
        Fields(message).Where(f => f.Field == field && f.Bytes is not null).Select(f => f.Bytes!);

    private static string? Text(byte[] message, int field) =>
        Fields(message).FirstOrDefault(f => f.Field == field)?.Bytes is { } b ? System.Text.Encoding.UTF8.GetString(b) : null;

    private static long Varint(List<WireField> fields, int field) => (long)(fields.FirstOrDefault(f => f.Field == field)?.Bits ?? 0);

    private static string Hex(List<WireField> fields, int field) => Convert.ToHexString(fields.FirstOrDefault(f => f.Field == field)?.Bytes ?? []);

    /// <summary>KeyValue (key=1, value=2) as text; AnyValue: string_value=1, bool_value=2, int_value=3, double_value=4.</summary>
    private static Dictionary<string, string> Attributes(byte[] message, int field)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var kv in Messages(message, field))
        {
            var key = Text(kv, 1) ?? "";
            var any = Messages(kv, 2).FirstOrDefault();
            var v = any is null ? null : Fields(any).FirstOrDefault();
            attributes[key] = v switch
            {
                { Field: 1, Bytes: { } b } => System.Text.Encoding.UTF8.GetString(b),
                { Field: 2, Bits: { } x } => x != 0 ? "true" : "false",
                { Field: 3, Bits: { } x } => ((long)x).ToString(System.Globalization.CultureInfo.InvariantCulture),
                { Field: 4, Bits: { } x } => BitConverter.Int64BitsToDouble((long)x).ToString(System.Globalization.CultureInfo.InvariantCulture),
                _ => "",
            };
        }

        return attributes;
    }
}
