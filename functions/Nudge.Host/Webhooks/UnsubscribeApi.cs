using System.Net;
using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Delivery.Email;
using Nudge.Host.Ingest;

namespace Nudge.Host.Webhooks;

/// <summary>
/// The one-click unsubscribe link in marketing email (RFC 8058), at /u/{token}. The signed token is the credential:
/// no cookie, no login. POST (what mail clients send: body List-Unsubscribe=One-Click) unsubscribes at once and answers
/// 200 without a redirect; GET (a person clicking the link) shows a page with a button that posts, so link scanners
/// that fetch URLs never unsubscribe anyone. A bad or tampered token gets 404 and changes nothing.
/// </summary>
public static class UnsubscribeApi
{
    /// <summary>Source recorded in the consent history.</summary>
    public const string Source = "email_unsubscribe_link";

    public static IEndpointRouteBuilder MapUnsubscribe(this IEndpointRouteBuilder app)
    {
        app.MapGet("/u/{token}", (HttpContext c, string token) =>
        {
            var links = c.RequestServices.GetRequiredService<UnsubscribeLinks>();
            return links.TryRead(token, out _, out _)
                ? Page(StatusCodes.Status200OK, "Unsubscribe", $"""
                    <p>Stop receiving marketing email from us?</p>
                    <form method="post" action="/u/{WebUtility.HtmlEncode(token)}">
                      <input type="hidden" name="List-Unsubscribe" value="One-Click">
                      <button type="submit">Unsubscribe</button>
                    </form>
                    """)
                : NotFound();
        });

        app.MapPost("/u/{token}", async (HttpContext c, string token) =>
        {
            var links = c.RequestServices.GetRequiredService<UnsubscribeLinks>();
            if (!links.TryRead(token, out var profileKey, out var messageId))
            {
                return NotFound();
            }

            // A report on the message (the unsubscribed metric) carrying the consent change for its person; the signed
            // profile key reaches the person even when the message is gone.
            var now = c.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
            var op = new IngestOp
            {
                Kind = OpKind.MessageReport,
                MessageId = $"unsubscribe:{messageId}:{now.ToUnixTimeSeconds()}",
                Source = Source,
                Timestamp = now,
                ReceivedAt = now,
                Target = new Identifier(IdentifierKind.CioId, profileKey),
                Attributes = new JsonObject { [Consent.UnsubscribedAttr] = true },
                Report = new MetricReport(messageId, ReportedMetric.Unsubscribed, Key: "unsubscribe:" + messageId),
            };

            // Durable before the answer, like every accepted API call: a 200 here is never lost.
            await c.RequestServices.GetRequiredService<IngestWriter>().WriteAsync([op], c.RequestAborted);
            return Page(StatusCodes.Status200OK, "Unsubscribed", "<p>You are unsubscribed from marketing email. It can take a few minutes to take effect.</p>");
        }).DisableAntiforgery();
        return app;
    }

    private static IResult NotFound() =>
        Page(StatusCodes.Status404NotFound, "Link not valid", "<p>This unsubscribe link is not valid. Please use the link from the email.</p>");

    private static IResult Page(int status, string title, string body) => Results.Content($"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{title}</title><style>body{"{"}font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem{"}"}</style></head>
        <body><h1>{title}</h1>
        {body}
        </body></html>
        """, "text/html; charset=utf-8", System.Text.Encoding.UTF8, status);
}
