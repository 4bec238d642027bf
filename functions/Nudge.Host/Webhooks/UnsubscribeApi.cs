using System.Net;
using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
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

            var parser = c.RequestServices.GetRequiredService<TrackApiParser>();
            var now = c.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
            var op = parser.Identify("cio_" + profileKey, new JsonObject { ["unsubscribed"] = true, ["_update"] = true }, now) with
            {
                Source = Source,
                MessageId = $"unsubscribe:{messageId}:{now.ToUnixTimeSeconds()}",
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
