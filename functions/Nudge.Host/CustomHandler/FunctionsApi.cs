using Nudge.Host.Ingest;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// The custom handler's HTTP surface, served only in Functions mode on 127.0.0.1: the readiness probe (GET /) and one
/// POST /{function} per function folder, which the Functions host calls with the invocation payload.
/// </summary>
public static class FunctionsApi
{
    /// <summary>Registers the services of Functions mode: the per-invocation output queue and the function adapters.</summary>
    public static IServiceCollection AddFunctionsMode(this IServiceCollection services)
    {
        services.AddScoped<FunctionOutputQueue>();
        services.AddScoped<Nudge.Core.Queues.IWorkQueue>(sp => sp.GetRequiredService<FunctionOutputQueue>());
        // Scoped here (a singleton in embedded mode): it must write to the invocation's own output queue.
        services.AddScoped<IngestWriter>();
        services.AddSingleton<HttpDispatch>();
        services.AddSingleton<StageFunctions>();
        services.AddSingleton<ReportingFunction>();
        return services;
    }

    /// <summary>
    /// Captures the app's pipeline (routing and every endpoint) for <see cref="HttpDispatch"/>, then adds routing. Call
    /// it first on the built app, before any other middleware.
    /// </summary>
    public static WebApplication UseFunctionsDispatch(this WebApplication app)
    {
        var dispatch = app.Services.GetRequiredService<HttpDispatch>();
        app.Use(next =>
        {
            dispatch.Pipeline = next;
            return next;
        });
        app.UseRouting();
        return app;
    }

    public static IEndpointRouteBuilder MapFunctions(this IEndpointRouteBuilder app)
    {
        // The host polls GET / until any answer, up to its initialization timeout (30 s by default).
        app.MapGet("/", () => Results.Json(new { status = "ready", functions = FunctionsHost.Functions }));

        foreach (var name in new[] { FunctionsHost.Ingest, FunctionsHost.Webhooks, FunctionsHost.Admin })
        {
            app.MapPost("/" + name, (HttpContext c, HttpDispatch d) => RunAsync(c, (inv, ct) => d.InvokeAsync(name, inv, ct)));
        }

        app.MapPost("/" + FunctionsHost.ProcessEvent, (HttpContext c, StageFunctions f) => RunAsync(c, f.ProcessEventAsync));
        app.MapPost("/" + FunctionsHost.RunStep, (HttpContext c, StageFunctions f) => RunAsync(c, f.RunStepAsync));
        app.MapPost("/" + FunctionsHost.Send, (HttpContext c, StageFunctions f) => RunAsync(c, f.SendAsync));
        app.MapPost("/" + FunctionsHost.JourneyTimers, (HttpContext c, StageFunctions f) => RunAsync(c, f.JourneyTimersAsync));
        app.MapPost("/" + FunctionsHost.Reporting, (HttpContext c, ReportingFunction f) => RunAsync(c, f.RunAsync));
        return app;
    }

    /// <summary>Reads the invocation and runs the function; an unreadable invocation fails with 400 before anything changes.</summary>
    private static async Task<IResult> RunAsync(HttpContext c, Func<Invocation, CancellationToken, Task<IResult>> function)
    {
        if (c.Items.ContainsKey(HttpDispatch.InnerRequestItem))
        {
            // A public request dispatched to a function path: functions are for the host, on loopback, only.
            return Results.NotFound();
        }

        try
        {
            return await function(await Invocation.ReadAsync(c.Request, c.RequestAborted), c.RequestAborted);
        }
        catch (InvalidInvocationException e)
        {
            Log(c).LogError("{Path}: invalid invocation: {Error}", c.Request.Path, e.Message);
            return FunctionResult.Failure(StatusCodes.Status400BadRequest, e.Message);
        }
        catch (Exception e) when (!c.RequestAborted.IsCancellationRequested)
        {
            // Stages handle their own failures; this is for the rest (the timers sweep's reads), answered in the same shape.
            Log(c).LogError(e, "{Path} failed", c.Request.Path);
            return FunctionResult.Failure(StatusCodes.Status500InternalServerError, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static ILogger Log(HttpContext c) => c.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(FunctionsApi));
}
