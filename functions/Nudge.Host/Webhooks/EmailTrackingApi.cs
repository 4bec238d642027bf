using Nudge.Core.Ingest;
using Nudge.Core.Messages;
using Nudge.Delivery.Email;
using Nudge.Host.Ingest;

namespace Nudge.Host.Webhooks;

/// <summary>
/// The open pixel (GET /e/o/{token}) and click links (GET /e/c/{token}) the send stage puts in email. Tokens are signed
/// (<see cref="EmailTracking"/>): a good pixel token records "opened", a good click token records "clicked" and redirects
/// (302) to the one URL it was signed for. The pixel answers the GIF whatever the token, recording nothing for a bad one;
/// a bad click token gets 404 and no redirect, so the link can never send anyone elsewhere.
/// </summary>
public static class EmailTrackingApi
{
    /// <summary>Source recorded on the message history.</summary>
    public const string Source = "email_link";

    public static IEndpointRouteBuilder MapEmailTracking(this IEndpointRouteBuilder app)
    {
        app.MapGet("/" + EmailTracking.OpenPath + "{token}", async (HttpContext c, string token) =>
        {
            if (c.RequestServices.GetRequiredService<EmailTracking>().TryReadOpen(token, out var messageId))
            {
                await ReportAsync(c, messageId, MessageStatus.Opened);
            }

            // Never cached, so every open reaches Nudge (the metric itself is recorded once).
            c.Response.Headers.CacheControl = "no-store, max-age=0";
            return Results.Bytes(EmailTracking.Pixel, "image/gif");
        });

        app.MapGet("/" + EmailTracking.ClickPath + "{token}", async (HttpContext c, string token) =>
        {
            if (!c.RequestServices.GetRequiredService<EmailTracking>().TryReadClick(token, out var messageId, out var url))
            {
                return Results.Text("This link is not valid.", statusCode: StatusCodes.Status404NotFound);
            }

            await ReportAsync(c, messageId, MessageStatus.Clicked);
            c.Response.Headers.CacheControl = "no-store";
            return Results.Redirect(url);
        });
        return app;
    }

    /// <summary>Queues the metric durably before answering; the first one per message and metric is the one kept.</summary>
    private static Task ReportAsync(HttpContext c, string messageId, string metric)
    {
        var now = c.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var op = new IngestOp
        {
            Kind = OpKind.MessageReport,
            MessageId = $"email:{metric}:{messageId}",
            Source = Source,
            Timestamp = now,
            ReceivedAt = now,
            Report = new MetricReport(messageId, metric),
        };
        return c.RequestServices.GetRequiredService<IngestWriter>().WriteAsync([op], c.RequestAborted);
    }
}
