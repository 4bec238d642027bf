using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// OpenTelemetry export end to end: the embedded server with Nudge:Telemetry:Otlp on, exporting OTLP/HTTP protobuf to a
/// loopback receiver, driven through identify, device, event, a journey timer and a sandbox push.
/// </summary>
public sealed class TelemetryTests : IAsyncLifetime
{
    private OtlpReceiver _otlp = null!;
    private JourneyServer _server = null!;

    public async Task InitializeAsync()
    {
        _otlp = await OtlpReceiver.StartAsync();
        _server = await JourneyServer.StartAsync(extra:
        [
            "--Nudge:Telemetry:Otlp=true",
            $"--OTEL_EXPORTER_OTLP_ENDPOINT={_otlp.Endpoint.ToString().TrimEnd('/')}",
            "--OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
            "--OTEL_SERVICE_NAME=nudge-telemetry-test",
            "--OTEL_METRIC_EXPORT_INTERVAL=300",
            "--OTEL_BSP_SCHEDULE_DELAY=100",
        ]);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _otlp.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
    }

    [Fact]
    public async Task JourneyThroughSandbox_ExportsStageSpansAndMetricsByOtlp()
    {
        var id = _server.IdFor("cart_recovery", heldOut: false, "otel");
        var token = id + "-iphone-token";
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$"""{"email":"{{id}}@example.com","first_name":"Dana","timezone":"UTC"}""");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"{{{token}}}","platform":"ios"}}""");
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c-1","cart_value":150,"item_name":"serum"}}""");
        using (var segment = new HttpClient { BaseAddress = _server.Track.BaseAddress })
        {
            segment.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Basic(WriteKey, ""));
            var r = await segment.PostAsync("/v1/track", Json($$"""{"userId":"{{id}}","event":"page_viewed"}"""));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        await _server.AdvanceAsync(TimeSpan.FromMinutes(31));
        var sent = (await _server.GetAsync($"/admin/v1/profiles/{id}/messages")).Select(m => m!.AsObject()).Single();
        Assert.Equal("delivered", sent["status"]!.GetValue<string>()); // sent, and the sandbox reports it delivered

        // Everything below is read back from what the exporters posted, decoded from protobuf.
        string[] stages = ["ingest.enqueue", "process-event", "journey-timers", "run-step", "send", "send.record", "provider.send"];
        var (spans, points) = await ExportedAsync(
            (s, p) => stages.All(n => s.Any(x => x.Name == n))
                && Value(p, "nudge.messages", ("nudge.channel", "push"), ("nudge.status", "sent")) >= 1
                && Value(p, "nudge.events.ingested", ("nudge.api", "segment"), ("nudge.event.kind", "track")) >= 1
                && Value(p, "nudge.provider.duration", ("nudge.provider", "sandbox")) >= 1);

        Assert.All(stages, n => Assert.Contains(spans, s => s.Name == n && s.Scope.StartsWith("Nudge.", StringComparison.Ordinal)));
        var push = Assert.Single(spans, s => s.Name == "provider.send" && s.Attributes.GetValueOrDefault("nudge.message.id") == sent["id"]!.GetValue<string>());
        Assert.Equal(3, push.Kind); // client
        Assert.Equal("sandbox", push.Attributes["nudge.provider"]);
        Assert.Equal("push", push.Attributes["nudge.channel"]);
        Assert.Equal("sent", push.Attributes["nudge.outcome"]);
        Assert.Contains(spans, s => s.Name == "send" && s.SpanId == push.ParentSpanId);
        Assert.Contains(spans, s => s.Name == "run-step" && s.Attributes.GetValueOrDefault("nudge.journey") == "cart_recovery");

        // Requests are traced by route; neither the person's id nor the push token reaches a server span or any attribute.
        Assert.Contains(spans, s => s.Kind == 2 && s.Attributes.GetValueOrDefault("http.route") == "/api/v1/customers/{id}/events"
            && s.Attributes.GetValueOrDefault("url.path") == "/api/v1/customers/{id}/events");
        Assert.DoesNotContain(spans, s => s.Kind == 2 && s.Attributes.Values.Any(v => v.Contains(id, StringComparison.Ordinal)));
        Assert.DoesNotContain(spans, s => s.Attributes.Values.Any(v => v.Contains(token, StringComparison.Ordinal)));

        Assert.True(Value(points, "nudge.events.ingested", ("nudge.api", "track"), ("nudge.event.kind", "identify")) >= 1);
        Assert.True(Value(points, "nudge.events.ingested", ("nudge.api", "track"), ("nudge.event.kind", "upsert_device")) >= 1);
        Assert.True(Value(points, "nudge.events.ingested", ("nudge.api", "track"), ("nudge.event.kind", "track")) >= 1);
        Assert.True(Value(points, "nudge.events.processed", ("nudge.event.kind", "track"), ("nudge.outcome", "applied")) >= 2);
        Assert.True(Value(points, "nudge.steps.run", ("nudge.journey", "cart_recovery"), ("nudge.step.trigger", "start")) >= 1);
        Assert.True(Value(points, "nudge.steps.run", ("nudge.journey", "cart_recovery"), ("nudge.step.trigger", "timer")) >= 1);
        Assert.True(Value(points, "nudge.messages", ("nudge.channel", "push"), ("nudge.status", "drafted")) >= 1);

        var duration = points.Where(p => p.Metric == "nudge.provider.duration" && p.Attributes.GetValueOrDefault("nudge.channel") == "push"
            && p.Attributes.GetValueOrDefault("nudge.outcome") == "sent").MaxBy(p => p.Value)!;
        Assert.Equal("histogram", duration.Type);
        Assert.Equal("s", duration.Unit);
        Assert.InRange(duration.Sum / duration.Value, 0, 5);
        Assert.Equal("{event}", points.First(p => p.Metric == "nudge.events.ingested").Unit);

        // Every event was applied, so the embedded queue's depth gauge reads 0 by now.
        Assert.Contains(points, p => p.Metric == "nudge.queue.depth" && p.Type == "gauge" && p.Attributes.GetValueOrDefault("nudge.queue") == "events");
        Assert.Equal(0, points.Last(p => p.Metric == "nudge.queue.depth" && p.Attributes.GetValueOrDefault("nudge.queue") == "events").Value);
    }

    [Fact]
    public async Task Health_StoreReachable_OkWithQueueDepth()
    {
        using var http = new HttpClient { BaseAddress = _server.Track.BaseAddress };
        var r = await http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var body = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
        Assert.Equal("ok", body["status"]!.GetValue<string>());
        Assert.Equal("ok", body["store"]!.GetValue<string>());
        Assert.Equal(0, body["queued_events"]!.GetValue<long>());
        Assert.Equal(0, body["poisoned_events"]!.GetValue<long>());
    }

    /// <summary>Waits (up to 2 minutes: the machine may be loaded) until what was exported satisfies <paramref name="done"/>; returns it either way.</summary>
    private async Task<(List<OtlpReceiver.Span> Spans, List<OtlpReceiver.Point> Points)> ExportedAsync(
        Func<List<OtlpReceiver.Span>, List<OtlpReceiver.Point>, bool> done)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            var (spans, points) = (_otlp.Spans(), _otlp.Points());
            if (done(spans, points) || DateTime.UtcNow > deadline)
            {
                return (spans, points);
            }

            await Task.Delay(100);
        }
    }

    /// <summary>
    /// The largest value exported for <paramref name="metric"/> with these attributes (counters are cumulative, so the
    /// latest; a histogram's value is its count), summed over points that differ in other attributes; 0 when none.
    /// </summary>
    private static double Value(List<OtlpReceiver.Point> points, string metric, params (string Key, string Value)[] where) =>
        points.Where(p => p.Metric == metric && where.All(w => p.Attributes.GetValueOrDefault(w.Key) == w.Value))
            .GroupBy(p => string.Join(",", p.Attributes.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}={a.Value}")))
            .Sum(g => g.Max(p => p.Value));
}
