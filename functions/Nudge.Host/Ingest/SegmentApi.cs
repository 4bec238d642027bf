using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Host.Auth;

namespace Nudge.Host.Ingest;

/// <summary>
/// Segment HTTP tracking API at /v1: identify, track, page, screen, group, alias, batch (and import, its older name).
/// Auth is Basic with the write key as user name, or "writeKey" in the body. 200 <c>{"success":true}</c>;
/// 400 names every bad field; a batch is accepted or rejected whole; 429 over Nudge:RateLimits:Segment.
/// </summary>
public static class SegmentApi
{
    public static IEndpointRouteBuilder MapSegmentApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/v1");
        foreach (var type in SegmentParser.CallTypes)
        {
            g.MapPost("/" + type, (Delegate)((HttpContext c) => Accept(c, batch: false, type)));
        }

        g.MapPost("/batch", (Delegate)((HttpContext c) => Accept(c, batch: true, "batch")));
        g.MapPost("/import", (Delegate)((HttpContext c) => Accept(c, batch: true, "batch")));
        return app;
    }

    private static async Task<IResult> Accept(HttpContext c, bool batch, string type)
    {
        var creds = c.RequestServices.GetRequiredService<Credentials>();
        var limits = c.RequestServices.GetRequiredService<IngestLimits>();
        var parser = c.RequestServices.GetRequiredService<SegmentParser>();
        var rate = c.RequestServices.GetRequiredService<RateLimits>();
        var now = c.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        if (rate.Blocked(c) is { } blocked)
        {
            return blocked;
        }

        var headerAuth = ApiAuth.IsSegmentHeader(c.Request, creds);
        if (headerAuth == false)
        {
            return rate.Failed(c, Unauthorized());
        }

        // With the key in the header, the budget is spent before the body is read; with it in the body, once it is found there.
        if (headerAuth == true && rate.Admit(c, ApiFamily.Segment) is { } limited)
        {
            return limited;
        }

        var max = batch ? limits.MaxSegmentBatchBytes : limits.MaxSegmentCallBytes;
        // Read a little past the limit so an oversize body gets a 400 that says how large it was, as Segment answers.
        var bytes = await RequestBody.ReadAsync(c.Request, max * 2, c.RequestAborted);
        if (bytes is null)
        {
            return headerAuth == true ? Error(StatusCodes.Status400BadRequest, [new FieldError("", $"body is over the limit of {max} bytes")]) : rate.Failed(c, Unauthorized());
        }

        IReadOnlyList<IngestOp> ops;
        var authenticated = headerAuth == true;
        try
        {
            var body = JsonFields.ParseObject(bytes, "request body");
            if (!authenticated)
            {
                if (!ApiAuth.IsSegmentBodyKey(body["writeKey"] is JsonValue v && v.TryGetValue<string>(out var k) ? k : null, creds))
                {
                    return rate.Failed(c, Unauthorized());
                }

                if (rate.Admit(c, ApiFamily.Segment) is { } limitedByBody)
                {
                    return limitedByBody;
                }
            }

            authenticated = true;

            ops = batch ? parser.Batch(body, bytes.Length, now) : [parser.Call(type, body, bytes.Length, now)];
        }
        catch (ValidationException e)
        {
            // Without a header, a body we cannot read cannot prove who sent it.
            if (!authenticated)
            {
                return rate.Failed(c, Unauthorized());
            }

            return Error(StatusCodes.Status400BadRequest, e.Errors);
        }

        await c.RequestServices.GetRequiredService<IngestWriter>().WriteAsync(ops, c.RequestAborted);
        return Results.Json(new { success = true });
    }

    private static IResult Error(int status, IReadOnlyList<FieldError> errors) => Results.Json(new
    {
        success = false,
        message = string.Join("; ", errors),
        errors = errors.Select(e => new { field = e.Field, problem = e.Problem }),
    }, statusCode: status);

    private static IResult Unauthorized() => Results.Json(new
    {
        success = false,
        message = "Unauthorized: use HTTP Basic auth with your write key as the user name, or send writeKey in the body",
    }, statusCode: 401);
}
