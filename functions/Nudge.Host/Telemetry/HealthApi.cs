using Nudge.Core.Storage;
using Nudge.Pipeline;
using Nudge.Sqlite.Queue;

namespace Nudge.Host.Telemetry;

/// <summary>
/// GET /health, without auth, for load balancers and probes: 200 <c>{"status":"ok","store":"ok",...}</c> when a read from
/// the store succeeds, 503 <c>{"status":"unhealthy","store":"unreachable","error":"TypeName"}</c> when it fails. Embedded, it
/// also reports the events queue's depth and dead letters. The error is the exception's type only: messages may name hosts.
/// </summary>
public static class HealthApi
{
    /// <summary>The checkpoint the probe reads (point read; it need not exist).</summary>
    private const string ProbeCheckpoint = "health-probe";

    /// <summary>Longest the store probe may take before the answer is 503: 5 s.</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", async (HttpContext c, IStore store, ILoggerFactory logs) =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(c.RequestAborted);
            timeout.CancelAfter(ProbeTimeout);
            try
            {
                await store.GetCheckpointAsync(ProbeCheckpoint, timeout.Token);
            }
            catch (Exception e) when (!c.RequestAborted.IsCancellationRequested)
            {
                logs.CreateLogger(typeof(HealthApi)).LogWarning(e, "health: the store is unreachable");
                return Results.Json(new { status = "unhealthy", store = "unreachable", error = e.GetType().Name }, statusCode: StatusCodes.Status503ServiceUnavailable);
            }

            if (c.RequestServices.GetService<SqliteWorkQueue>() is not { } queue)
            {
                return Results.Json(new { status = "ok", store = "ok" });
            }

            return Results.Json(new
            {
                status = "ok",
                store = "ok",
                queued_events = await queue.CountAsync(QueueNames.Events, c.RequestAborted),
                poisoned_events = await queue.CountAsync(QueueNames.Events + "-poison", c.RequestAborted),
            });
        });
        return app;
    }
}
