using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Delivery;
using Nudge.Host.Auth;
using Nudge.Host.Ingest;

namespace Nudge.Host.Webhooks;

/// <summary>
/// SendGrid's signed Event Webhook at POST /webhooks/sendgrid. X-Twilio-Email-Event-Webhook-Signature is an ECDSA P-256
/// / SHA-256 signature (base64 DER) of X-Twilio-Email-Event-Webhook-Timestamp followed by the raw body, checked with
/// Nudge:Providers:Email:SendGrid:WebhookPublicKey: missing headers answer 401, a signature that does not verify (or no
/// key configured) 403, and nothing changes; rejections count as failed authentication for the caller's address
/// (Nudge:RateLimits:AuthFailures), and signed batches have no rate limit (SendGrid retries what is refused). The
/// timestamp has no freshness window: a replayed batch is harmless, as every report is keyed by sg_event_id. Each event with Nudge's delivery_id custom arg becomes a report keyed by
/// sg_event_id: delivered, bounce (bounced), dropped, open (opened), click (clicked), unsubscribe and group_unsubscribe
/// (unsubscribed + email consent), spamreport (spammed + email consent). processed, deferred and the rest are ignored.
/// </summary>
public static class SendGridWebhook
{
    /// <summary>The signature header.</summary>
    public const string SignatureHeader = "X-Twilio-Email-Event-Webhook-Signature";

    /// <summary>The timestamp header (signed together with the body).</summary>
    public const string TimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp";

    /// <summary>Largest event batch read: 2 MiB (SendGrid posts batches well below it).</summary>
    private const int MaxBodyBytes = 2 * 1024 * 1024;

    public static IEndpointRouteBuilder MapSendGridWebhook(this IEndpointRouteBuilder app)
    {
        app.MapPost("/webhooks/sendgrid", (Delegate)AcceptAsync).DisableAntiforgery();
        return app;
    }

    private static async Task<IResult> AcceptAsync(HttpContext c)
    {
        var rate = c.RequestServices.GetRequiredService<RateLimits>();
        if (rate.Blocked(c) is { } blocked)
        {
            return blocked;
        }

        var signature = c.Request.Headers[SignatureHeader].ToString();
        var timestamp = c.Request.Headers[TimestampHeader].ToString();
        if (signature.Length == 0 || timestamp.Length == 0)
        {
            return rate.Failed(c, Results.Text($"{SignatureHeader} and {TimestampHeader} are required", statusCode: StatusCodes.Status401Unauthorized));
        }

        var body = await RequestBody.ReadAsync(c.Request, MaxBodyBytes, c.RequestAborted);
        if (body is null)
        {
            return Results.Text($"body is over {MaxBodyBytes} bytes", statusCode: StatusCodes.Status413PayloadTooLarge);
        }

        var key = c.RequestServices.GetRequiredService<WebhookSettings>().SendGridKey;
        if (key is null || !Verifies(key, timestamp, body, signature))
        {
            return rate.Failed(c, Results.Text($"{SignatureHeader} does not verify", statusCode: StatusCodes.Status403Forbidden));
        }

        JsonArray events;
        try
        {
            events = JsonFields.Parse(body, "body") as JsonArray ?? throw new ValidationException("", "it is not an array");
        }
        catch (ValidationException e)
        {
            return Results.Text($"the body is not a JSON array of events: {string.Join("; ", e.Errors)}", statusCode: StatusCodes.Status400BadRequest);
        }

        var now = c.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var ops = events.OfType<JsonObject>().Select(e => ToOp(e, now)).Where(op => op is not null).Select(op => op!).ToList();
        if (ops.Count > 0)
        {
            await c.RequestServices.GetRequiredService<IngestWriter>().WriteAsync(ops, c.RequestAborted);
        }

        return Results.Ok();
    }

    private static bool Verifies(ECDsa key, string timestamp, byte[] body, string signature)
    {
        byte[] sig;
        try
        {
            sig = Convert.FromBase64String(signature);
        }
        catch (FormatException)
        {
            return false;
        }

        var signed = new byte[Encoding.UTF8.GetByteCount(timestamp) + body.Length];
        var n = Encoding.UTF8.GetBytes(timestamp, signed);
        body.CopyTo(signed, n);
        try
        {
            return key.VerifyData(signed, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>One event as a report op, or null for an event Nudge does not record.</summary>
    private static IngestOp? ToOp(JsonObject e, DateTimeOffset now)
    {
        var kind = Text(e, "event");
        var eventId = Text(e, "sg_event_id");
        var deliveryId = Text(e, "delivery_id");
        var email = Text(e, "email")?.Trim().ToLowerInvariant();
        var (metric, reason, consent) = kind switch
        {
            "delivered" => (MessageStatus.Delivered, null, false),
            "bounce" => (MessageStatus.Bounced, Text(e, "type") == "blocked" ? DeliveryReason.ProviderRejected : DeliveryReason.InvalidRecipient, false),
            "dropped" => (MessageStatus.Dropped, DropReason(Text(e, "reason")), false),
            "open" => (MessageStatus.Opened, null, false),
            "click" => (MessageStatus.Clicked, null, false),
            "unsubscribe" or "group_unsubscribe" => (ReportedMetric.Unsubscribed, null, true),
            "spamreport" => (ReportedMetric.Spammed, null, true),
            _ => ((string?)null, (string?)null, false),
        };
        if (metric is null || eventId is null || (deliveryId is null && !(consent && email is not null)))
        {
            return null;
        }

        var at = e["timestamp"] is JsonValue t && t.TryGetValue<long>(out var secs) && secs is > 0 and < 100_000_000_000
            ? DateTimeOffset.FromUnixTimeSeconds(secs) : now;
        return new IngestOp
        {
            Kind = OpKind.MessageReport,
            MessageId = "sendgrid:" + eventId,
            Source = consent ? "sendgrid:" + kind : "sendgrid",
            Timestamp = at,
            ReceivedAt = now,

            // Without our delivery id (mail Nudge did not send) an unsubscribe still reaches the person with that address.
            Target = email is null ? null : Identifier.Email(email),
            Report = new MetricReport(deliveryId ?? "", metric, reason, eventId, email, Text(e, "sg_message_id")),
            Attributes = consent ? new JsonObject { [Consent.UnsubscribedAttr] = true } : null,
        };
    }

    /// <summary>SendGrid's drop reasons ("Bounced Address", "Unsubscribed Address", "Spam Reporting Address", "Invalid"...) as ours.</summary>
    private static string DropReason(string? text) => text switch
    {
        null => DeliveryReason.ProviderRejected,
        _ when text.Contains("unsubscribe", StringComparison.OrdinalIgnoreCase) || text.Contains("spam", StringComparison.OrdinalIgnoreCase)
            => DeliveryReason.RecipientUnsubscribed,
        _ when text.Contains("bounce", StringComparison.OrdinalIgnoreCase) || text.Contains("invalid", StringComparison.OrdinalIgnoreCase)
            => DeliveryReason.InvalidRecipient,
        _ => DeliveryReason.ProviderRejected,
    };

    private static string? Text(JsonObject o, string name) =>
        o[name] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0 ? s : null;
}
