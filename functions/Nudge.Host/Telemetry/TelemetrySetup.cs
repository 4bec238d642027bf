using Microsoft.AspNetCore.Routing;
using Nudge.Delivery;
using Nudge.Host.Hosting;
using Nudge.Pipeline;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Nudge.Host.Telemetry;

/// <summary>
/// Wires OpenTelemetry when Nudge:Telemetry:Otlp is true: Nudge's own sources and meters (<see cref="Sources"/>), ASP.NET
/// Core, HttpClient and runtime instrumentation, exported by OTLP. The exporter reads the standard variables
/// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
/// OTEL_METRIC_EXPORT_INTERVAL, OTEL_BSP_SCHEDULE_DELAY, ...) from the environment or any configuration source.
/// Off by default: nothing is sent anywhere unless it is switched on.
/// </summary>
public static class TelemetrySetup
{
    /// <summary>Service name when OTEL_SERVICE_NAME is not set.</summary>
    public const string DefaultServiceName = "nudge";

    /// <summary>Nudge's ActivitySource and Meter names.</summary>
    public static readonly string[] Sources = [HostTelemetry.Name, PipelineTelemetry.Name, DeliveryTelemetry.Name];

    /// <summary>
    /// Problems with the exporter's standard settings when export is on: the exporter would otherwise drop a malformed
    /// endpoint or protocol without a word and send nothing. Endpoints are not quoted (they may carry credentials).
    /// </summary>
    public static IReadOnlyList<string> Validate(IConfiguration config, TelemetryOptions options)
    {
        var problems = new List<string>();
        if (!options.Otlp)
        {
            return problems;
        }

        foreach (var signal in new[] { "", "TRACES_", "METRICS_" })
        {
            var endpoint = $"OTEL_EXPORTER_OTLP_{signal}ENDPOINT";
            if (config[endpoint] is { Length: > 0 } url && !(Uri.TryCreate(url, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps)))
            {
                problems.Add($"{endpoint} is not an absolute http(s) URL such as http://localhost:4317 (Nudge:Telemetry:Otlp is true)");
            }

            var protocol = $"OTEL_EXPORTER_OTLP_{signal}PROTOCOL";
            if (config[protocol] is { Length: > 0 } name && name is not ("grpc" or "http/protobuf"))
            {
                problems.Add($"{protocol}: '{name}' is not grpc or http/protobuf (Nudge:Telemetry:Otlp is true)");
            }
        }

        return problems;
    }

    public static void AddNudgeTelemetry(this WebApplicationBuilder builder, TelemetryOptions options)
    {
        if (!options.Otlp)
        {
            return;
        }

        var named = !string.IsNullOrEmpty(builder.Configuration["OTEL_SERVICE_NAME"]);
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r =>
            {
                if (!named)
                {
                    r.AddService(DefaultServiceName, serviceVersion: typeof(TelemetrySetup).Assembly.GetName().Version?.ToString());
                }
            })
            .WithTracing(t => t
                .AddSource(Sources)
                .AddAspNetCoreInstrumentation(o =>
                {
                    // Paths carry people's ids and signed link tokens (unsubscribe, email tracking): the route template only.
                    o.EnrichWithHttpResponse = (activity, response) => activity.SetTag("url.path",
                        (response.HttpContext.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText);
                })
                .AddHttpClientInstrumentation(o =>
                {
                    // APNs puts the device token in the path (/3/device/{token}).
                    o.EnrichWithHttpRequestMessage = (activity, request) => activity.SetTag("url.full", RedactedUrl(request.RequestUri));
                })
                .AddOtlpExporter())
            .WithMetrics(m => m
                .AddMeter(Sources)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddOtlpExporter());
    }

    /// <summary>The URL without its query and with an APNs device token replaced by {token}.</summary>
    public static string? RedactedUrl(Uri? uri)
    {
        if (uri is null || !uri.IsAbsoluteUri)
        {
            return null;
        }

        var path = uri.AbsolutePath;
        var device = path.IndexOf("/device/", StringComparison.Ordinal);
        if (device >= 0)
        {
            path = path[..(device + "/device/".Length)] + "{token}";
        }

        return $"{uri.Scheme}://{uri.Authority}{path}";
    }
}
