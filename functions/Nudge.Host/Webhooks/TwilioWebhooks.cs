using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Nudge.Core.Ingest;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Delivery.Twilio;
using Nudge.Host.Auth;
using Nudge.Host.Ingest;

namespace Nudge.Host.Webhooks;

/// <summary>
/// Twilio's webhooks. Both check X-Twilio-Signature over the URL Twilio called (Nudge:PublicBaseUrl + path + query) and
/// the form parameters, keyed by the auth token: no signature answers 401, a wrong one 403, and neither changes anything.
/// <list type="bullet">
/// <item>POST /webhooks/twilio/sms (a Messaging Service's or number's inbound webhook): an opt-out keyword sets sms_consent
/// false for everyone with that number, an opt-in keyword true; HELP / INFO is answered with Nudge:Sms:HelpReply. Every
/// answer is TwiML.</item>
/// <item>POST /webhooks/twilio/status?message_id=... (the StatusCallback of each SMS): sent, delivered, undelivered and
/// failed become the message's metrics; error 21610 (the number replied STOP) also clears sms_consent.</item>
/// </list>
/// Accepted reports are queued durably before the answer; the process-event stage applies them.
/// </summary>
public static partial class TwilioWebhooks
{
    /// <summary>Twilio's default opt-out keywords (an exact single word, any case).</summary>
    public static readonly IReadOnlySet<string> OptOut = new HashSet<string>(StringComparer.Ordinal)
    {
        "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
    };

    /// <summary>Twilio's default opt-in keywords.</summary>
    public static readonly IReadOnlySet<string> OptIn = new HashSet<string>(StringComparer.Ordinal) { "START", "YES", "UNSTOP" };

    /// <summary>Twilio's default help keywords.</summary>
    public static readonly IReadOnlySet<string> Help = new HashSet<string>(StringComparer.Ordinal) { "HELP", "INFO" };

    public static IEndpointRouteBuilder MapTwilioWebhooks(this IEndpointRouteBuilder app)
    {
        app.MapPost("/webhooks/twilio/sms", (Delegate)InboundAsync).DisableAntiforgery();
        app.MapPost("/webhooks/twilio/status", (Delegate)StatusAsync).DisableAntiforgery();
        return app;
    }

    private static async Task<IResult> InboundAsync(HttpContext c)
    {
        var (rejected, form) = await VerifyAsync(c);
        if (rejected is not null)
        {
            return rejected;
        }

        var word = Param(form, "Body")?.Trim().ToUpperInvariant() ?? "";
        var from = Param(form, "From");
        var settings = c.RequestServices.GetRequiredService<WebhookSettings>();
        bool? consent = OptOut.Contains(word) ? false : OptIn.Contains(word) ? true : null;
        if (consent is { } value && from is not null && E164().IsMatch(from))
        {
            var now = c.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
            var sid = Param(form, "MessageSid") ?? Param(form, "SmsSid");
            var op = new IngestOp
            {
                Kind = OpKind.SmsKeyword,
                MessageId = sid is null ? IngestValidator.NewMessageId() : "twilio:" + sid,
                Source = "twilio:" + word,
                Timestamp = now,
                ReceivedAt = now,
                Phone = from,
                Attributes = new JsonObject { [Consent.SmsConsentAttr] = value },
            };
            await c.RequestServices.GetRequiredService<IngestWriter>().WriteAsync([op], c.RequestAborted);
        }

        // Twilio's own opt-out handling confirms STOP and START; Nudge answers HELP only, so nobody gets two replies.
        return TwiML(Help.Contains(word) ? settings.HelpReply : null);
    }

    private static async Task<IResult> StatusAsync(HttpContext c)
    {
        var (rejected, form) = await VerifyAsync(c);
        if (rejected is not null)
        {
            return rejected;
        }

        var messageId = c.Request.Query["message_id"].ToString();
        var sid = Param(form, "MessageSid") ?? Param(form, "SmsSid");
        if (messageId.Length == 0 || sid is null)
        {
            return Results.Text("message_id (query) and MessageSid are required", statusCode: StatusCodes.Status400BadRequest);
        }

        var status = Param(form, "MessageStatus") ?? Param(form, "SmsStatus");
        var metric = status switch
        {
            "sent" => MessageStatus.Sent,
            "delivered" => MessageStatus.Delivered,
            "undelivered" or "failed" => MessageStatus.Failed,
            _ => null, // queued, sending, accepted...: steps on the way, not metrics
        };
        if (metric is null)
        {
            return Results.NoContent();
        }

        var code = int.TryParse(Param(form, "ErrorCode"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : (int?)null;
        var reason = metric == MessageStatus.Failed ? TwilioErrors.Reason(code ?? 0) : null;
        var now = c.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var key = $"{sid}:{status}";
        var op = new IngestOp
        {
            Kind = OpKind.MessageReport,
            MessageId = "twilio:" + key,
            Source = code == TwilioErrors.Unsubscribed ? $"twilio:{TwilioErrors.Unsubscribed}" : "twilio",
            Timestamp = now,
            ReceivedAt = now,
            Report = new MetricReport(messageId, metric, reason, key, Param(form, "To"), sid),

            // 21610: the number replied STOP to this sender; Nudge must not try SMS again until they opt back in.
            Attributes = code == TwilioErrors.Unsubscribed ? new JsonObject { [Consent.SmsConsentAttr] = false } : null,
        };
        await c.RequestServices.GetRequiredService<IngestWriter>().WriteAsync([op], c.RequestAborted);
        return Results.NoContent();
    }

    /// <summary>
    /// Checks X-Twilio-Signature; returns the form when it verifies, else the rejection: 401 without a signature, 403 with
    /// one that does not verify (or when no auth token is configured to verify it with); 400 for a form that cannot be read.
    /// Rejections count as failed authentication for the caller's address (Nudge:RateLimits:AuthFailures); verified calls
    /// have no rate limit.
    /// </summary>
    private static async Task<(IResult? Rejected, List<KeyValuePair<string, string>> Form)> VerifyAsync(HttpContext c)
    {
        var rate = c.RequestServices.GetRequiredService<RateLimits>();
        if (rate.Blocked(c) is { } blocked)
        {
            return (blocked, []);
        }

        var signature = c.Request.Headers[TwilioSignature.HeaderName].ToString();
        if (signature.Length == 0)
        {
            return (rate.Failed(c, Results.Text("X-Twilio-Signature is required", statusCode: StatusCodes.Status401Unauthorized)), []);
        }

        var form = new List<KeyValuePair<string, string>>();
        if (c.Request.HasFormContentType)
        {
            IFormCollection read;
            try
            {
                read = await c.Request.ReadFormAsync(c.RequestAborted);
            }
            catch (BadHttpRequestException e)
            {
                return (Results.Text($"the form body cannot be read: {e.Message}", statusCode: e.StatusCode), []);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or InvalidOperationException)
            {
                // Over the form limits (1,024 fields, 70-character multipart boundary) or a broken multipart body:
                // not a request Twilio sends, and one that cannot be verified.
                return (Results.Text($"the form body cannot be read: {e.Message}", statusCode: StatusCodes.Status400BadRequest), []);
            }

            foreach (var (name, values) in read)
            {
                form.AddRange(values.Select(v => KeyValuePair.Create(name, v ?? "")));
            }
        }

        var settings = c.RequestServices.GetRequiredService<WebhookSettings>();
        return settings.TwilioAuthToken is { } token && TwilioSignature.Verify(token, settings.PublicUrlOf(c.Request), form, signature)
            ? (null, form)
            : (rate.Failed(c, Results.Text("X-Twilio-Signature does not verify", statusCode: StatusCodes.Status403Forbidden)), []);
    }

    private static string? Param(List<KeyValuePair<string, string>> form, string name) =>
        form.FirstOrDefault(p => p.Key == name) is { Key: not null } p ? p.Value : null;

    private static IResult TwiML(string? message)
    {
        var response = new XElement("Response");
        if (message is not null)
        {
            response.Add(new XElement("Message", message));
        }

        return Results.Content(new XDocument(new XDeclaration("1.0", "UTF-8", null), response).Declaration + response.ToString(SaveOptions.DisableFormatting),
            "text/xml; charset=utf-8");
    }

    [GeneratedRegex(@"^\+[1-9][0-9]{6,14}$")]
    private static partial Regex E164();
}
