using System.Net;
using System.Text.Json;

namespace Nudge.Delivery.Fcm;

/// <summary>The parts of an FCM error body <c>{"error":{"code","message","status","details":[...]}}</c> we act on.</summary>
/// <param name="ErrorCode">details[].errorCode of the FcmError detail (UNREGISTERED, QUOTA_EXCEEDED, ...); null without one.</param>
/// <param name="Status">error.status, the google.rpc code name (INVALID_ARGUMENT, UNAUTHENTICATED, ...).</param>
/// <param name="Message">error.message, free text.</param>
/// <param name="PointsAtToken">The message or a BadRequest field violation names the registration token.</param>
internal sealed record FcmErrorBody(string? ErrorCode, string? Status, string? Message, bool PointsAtToken)
{
    public static readonly FcmErrorBody Empty = new(null, null, null, false);

    /// <summary>Reads an error body; anything that is not the documented shape reads as <see cref="Empty"/>.</summary>
    public static FcmErrorBody Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("error", out var error)
                || error.ValueKind != JsonValueKind.Object)
            {
                return Empty;
            }

            var message = Text(error, "message");
            var status = Text(error, "status");
            string? errorCode = null;
            var pointsAtToken = message is not null
                && (message.Contains("registration token", StringComparison.OrdinalIgnoreCase)
                    || message.Contains("message.token", StringComparison.OrdinalIgnoreCase));

            if (error.TryGetProperty("details", out var details) && details.ValueKind == JsonValueKind.Array)
            {
                foreach (var detail in details.EnumerateArray())
                {
                    if (detail.ValueKind != JsonValueKind.Object)
                    {
                        continue;
                    }

                    if (Text(detail, "errorCode") is { } code
                        && (errorCode is null || Text(detail, "@type") == "type.googleapis.com/google.firebase.fcm.v1.FcmError"))
                    {
                        errorCode = code;
                    }

                    if (detail.TryGetProperty("fieldViolations", out var violations) && violations.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var v in violations.EnumerateArray())
                        {
                            if (v.ValueKind == JsonValueKind.Object && Text(v, "field") is { } field
                                && field.StartsWith("message.token", StringComparison.Ordinal))
                            {
                                pointsAtToken = true;
                            }
                        }
                    }
                }
            }

            return new FcmErrorBody(errorCode, status, message, pointsAtToken);
        }
        catch (JsonException)
        {
            return Empty;
        }
    }

    private static string? Text(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

/// <summary>
/// Maps an FCM error answer to a <see cref="SendOutcome"/>: details[].errorCode first, then error.status, then the HTTP status.
/// INVALID_ARGUMENT is a dead token only when FCM says the registration token is at fault (our payload was checked before
/// sending); otherwise it is a rejected message.
/// </summary>
internal static class FcmErrors
{
    /// <summary>FCM asks for at least a minute's back-off on QUOTA_EXCEEDED.</summary>
    public static readonly TimeSpan MinQuotaBackoff = TimeSpan.FromMinutes(1);

    private const int MaxDetailChars = 200;

    public static SendOutcome Map(HttpStatusCode http, FcmErrorBody error, TimeSpan? retryAfter, string deviceToken) =>
        ByCode(error.ErrorCode, error, retryAfter, deviceToken)
        ?? ByCode(error.Status, error, retryAfter, deviceToken)
        ?? ByHttp(http, retryAfter);

    private static SendOutcome? ByCode(string? code, FcmErrorBody error, TimeSpan? retryAfter, string deviceToken) => code switch
    {
        "UNREGISTERED" => SendOutcome.InvalidToken("UNREGISTERED"),
        "INVALID_ARGUMENT" when error.PointsAtToken => SendOutcome.InvalidToken("INVALID_ARGUMENT"),
        "INVALID_ARGUMENT" => SendOutcome.Permanent(DeliveryReason.ProviderRejected, WithMessage("INVALID_ARGUMENT", error.Message, deviceToken)),
        "SENDER_ID_MISMATCH" => SendOutcome.Permanent(DeliveryReason.ProviderRejected, "SENDER_ID_MISMATCH"),
        "QUOTA_EXCEEDED" or "RESOURCE_EXHAUSTED" => SendOutcome.RateLimited(AtLeastQuotaBackoff(retryAfter), code),
        "UNAVAILABLE" or "INTERNAL" or "DEADLINE_EXCEEDED" => SendOutcome.Transient(DeliveryReason.ProviderUnavailable, code, retryAfter),
        "THIRD_PARTY_AUTH_ERROR" => SendOutcome.Permanent(DeliveryReason.ProviderAuth, "THIRD_PARTY_AUTH_ERROR"),
        "UNAUTHENTICATED" or "PERMISSION_DENIED" => SendOutcome.Permanent(DeliveryReason.ProviderAuth, code),
        "NOT_FOUND" => SendOutcome.Permanent(DeliveryReason.ProviderRejected, WithMessage("NOT_FOUND", error.Message, deviceToken)),
        _ => null,
    };

    private static SendOutcome ByHttp(HttpStatusCode http, TimeSpan? retryAfter)
    {
        var status = (int)http;
        var detail = $"HTTP {status}";
        return status switch
        {
            429 => SendOutcome.RateLimited(AtLeastQuotaBackoff(retryAfter), detail),
            401 or 403 => SendOutcome.Permanent(DeliveryReason.ProviderAuth, detail),
            >= 500 => SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail, retryAfter),
            _ => SendOutcome.Permanent(DeliveryReason.ProviderRejected, detail),
        };
    }

    private static TimeSpan AtLeastQuotaBackoff(TimeSpan? retryAfter) =>
        retryAfter is { } r && r > MinQuotaBackoff ? r : MinQuotaBackoff;

    /// <summary>The code plus FCM's message, shortened, on one line, with the device token cut out.</summary>
    internal static string WithMessage(string code, string? message, string deviceToken)
    {
        if (string.IsNullOrWhiteSpace(message))
        {
            return code;
        }

        var clean = string.IsNullOrEmpty(deviceToken) ? message : message.Replace(deviceToken, "<token>", StringComparison.Ordinal);
        clean = string.Concat(clean.Select(ch => char.IsControl(ch) ? ' ' : ch));
        if (clean.Length > MaxDetailChars)
        {
            clean = string.Concat(clean.AsSpan(0, MaxDetailChars), "...");
        }

        return $"{code}: {clean}";
    }
}
