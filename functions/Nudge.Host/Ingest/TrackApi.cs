using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Host.Auth;
using Nudge.Host.Hosting;

namespace Nudge.Host.Ingest;

/// <summary>
/// Customer.io Track API v1 at /api/v1: same paths, bodies, Basic site_id:api_key auth and responses
/// (200 <c>{}</c>; 400 <c>{"meta":{"errors":[...]}}</c>; 401; 413 for a body over the limit; 429 over Nudge:RateLimits).
/// </summary>
public static class TrackApi
{
    /// <summary>Customer.io's answer to an accepted call, <c>{}</c>, written as fixed bytes.</summary>
    private static readonly IResult Ok = Results.Bytes("{}"u8.ToArray(), "application/json; charset=utf-8");

    public static IEndpointRouteBuilder MapTrackApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/v1").RequireCredential(ApiFamily.Track, ApiAuth.IsTrackApi, Unauthorized);

        g.MapPut("/customers/{id}", (HttpContext c, string id) =>
            Accept(c, (p, body, now) => p.Identify(RouteValues.Decode(id), body!, now)));
        g.MapDelete("/customers/{id}", (HttpContext c, string id) =>
            Accept(c, (p, _, now) => p.Delete(RouteValues.Decode(id), now), readBody: false));
        g.MapPost("/customers/{id}/events", (HttpContext c, string id) =>
            Accept(c, (p, body, now) => p.CustomerEvent(RouteValues.Decode(id), body!, now)));
        g.MapPost("/events", (Delegate)((HttpContext c) =>
            Accept(c, (p, body, now) => p.AnonymousEvent(body!, now))));
        g.MapPut("/customers/{id}/devices", (HttpContext c, string id) =>
            Accept(c, (p, body, now) => p.UpsertDevice(RouteValues.Decode(id), body!, now)));
        g.MapDelete("/customers/{id}/devices/{token}", (HttpContext c, string id, string token) =>
            Accept(c, (p, _, now) => p.DeleteDevice(RouteValues.Decode(id), RouteValues.Decode(token), now), readBody: false));
        g.MapPost("/customers/{id}/suppress", (HttpContext c, string id) =>
            Accept(c, (p, _, now) => p.Suppress(RouteValues.Decode(id), now), readBody: false));
        g.MapPost("/customers/{id}/unsuppress", (HttpContext c, string id) =>
            Accept(c, (p, _, now) => p.Unsuppress(RouteValues.Decode(id), now), readBody: false));
        g.MapPost("/merge_customers", (Delegate)((HttpContext c) =>
            Accept(c, (p, body, now) => p.Merge(body!, now))));

        // The app SDKs' delivery metrics (legacy push call and /metrics): reports on a message, by its delivery_id.
        g.MapPost("/push/events", (Delegate)((HttpContext c) =>
            Accept(c, (_, body, now) => c.RequestServices.GetRequiredService<DeliveryMetricsParser>().PushEvent(body!, now))));
        g.MapPost("/metrics", (Delegate)((HttpContext c) =>
            Accept(c, (_, body, now) => c.RequestServices.GetRequiredService<DeliveryMetricsParser>().Metric(body!, now))));
        return app;
    }

    private static async Task<IResult> Accept(HttpContext c, Func<TrackApiParser, JsonObject?, DateTimeOffset, IngestOp> parse, bool readBody = true)
    {
        var parser = c.RequestServices.GetRequiredService<TrackApiParser>();
        var limits = c.RequestServices.GetRequiredService<IngestLimits>();
        var now = c.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        IngestOp op;
        try
        {
            JsonObject? body = null;
            if (readBody)
            {
                var bytes = await RequestBody.ReadAsync(c.Request, limits.MaxTrackBodyBytes, c.RequestAborted);
                if (bytes is null)
                {
                    return Errors(StatusCodes.Status413PayloadTooLarge, $"request body is over the limit of {limits.MaxTrackBodyBytes} bytes");
                }

                body = JsonFields.ParseObject(bytes, "request body");
            }

            op = parse(parser, body, now);
        }
        catch (ValidationException e)
        {
            return Errors(StatusCodes.Status400BadRequest, [.. e.Errors.Select(x => x.ToString())]);
        }

        await c.RequestServices.GetRequiredService<IngestWriter>().WriteAsync([op], c.RequestAborted);
        return Ok;
    }

    private static IResult Errors(int status, params string[] errors) =>
        Results.Json(new { meta = new { errors } }, statusCode: status);

    private static IResult Unauthorized(HttpContext c)
    {
        c.Response.Headers.WWWAuthenticate = "Basic realm=\"track\"";
        return Results.Json(new { meta = new { error = "Unauthorized request: use HTTP Basic auth with your site id and API key" } }, statusCode: 401);
    }
}
