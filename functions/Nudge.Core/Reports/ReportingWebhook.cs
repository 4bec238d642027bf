using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Core.Reports;

/// <summary>
/// Outgoing reporting webhooks in Customer.io's envelope: {event_id, object_type (push|sms|email), metric, timestamp
/// (Unix s of the event), data{customer_id, identifiers, delivery_id, journey_id, action_id, device_id or recipient,
/// device_platform, failure_message, ...}}. <c>event_id</c> is the delivery event's derived id, the same on every
/// retry, so receivers deduplicate on it. Requests are signed: X-Nudge-Timestamp is the Unix time (s) of signing and
/// X-Nudge-Signature is "v0=" + lowercase hex of HMAC-SHA256(secret, "v0:{timestamp}:{body}"), body as sent (UTF-8).
/// </summary>
public static class ReportingWebhook
{
    public const string TimestampHeader = "X-Nudge-Timestamp";
    public const string SignatureHeader = "X-Nudge-Signature";

    /// <summary>The envelope of <paramref name="e"/>; <paramref name="person"/> adds customer_id and email when still known.</summary>
    public static JsonObject Envelope(DeliveryEvent e, Profile? person)
    {
        var data = new JsonObject
        {
            ["customer_id"] = person?.Id,
            ["identifiers"] = new JsonObject { ["id"] = person?.Id, ["email"] = person?.Email, ["cio_id"] = e.ProfileKey == Storage.Erasure.ErasedKey ? null : Identifier.CioPrefix + e.ProfileKey },
            ["delivery_id"] = e.MessageId,
            ["journey_id"] = e.JourneyId,
            ["action_id"] = e.StepId,
        };
        if (e.Channel == "push")
        {
            data["device_id"] = e.Recipient;
            data["device_platform"] = e.Platform;
        }
        else
        {
            data["recipient"] = e.Recipient;
        }

        if (e.ProviderId is not null)
        {
            data["provider_id"] = e.ProviderId;
        }

        if (e.Reason is not null)
        {
            data["failure_message"] = e.Reason;
        }

        if (e.Holdout)
        {
            data["holdout"] = true;
        }

        return new JsonObject
        {
            ["event_id"] = e.Id,
            ["object_type"] = e.Channel,
            ["metric"] = e.Metric,
            ["timestamp"] = e.At.ToUnixTimeSeconds(),
            ["data"] = data,
        };
    }

    /// <summary>The request body of <paramref name="e"/> (compact JSON, UTF-8).</summary>
    public static byte[] Body(DeliveryEvent e, Profile? person) => JsonSerializer.SerializeToUtf8Bytes(Envelope(e, person));

    /// <summary>The X-Nudge-Signature value for <paramref name="body"/> signed at <paramref name="timestamp"/> (Unix s).</summary>
    public static string Sign(byte[] secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.UTF8.GetBytes($"v0:{timestamp.ToString(CultureInfo.InvariantCulture)}:");
        var message = new byte[prefix.Length + body.Length];
        prefix.CopyTo(message, 0);
        body.CopyTo(message.AsSpan(prefix.Length));
        return "v0=" + Convert.ToHexStringLower(HMACSHA256.HashData(secret, message));
    }

    /// <summary>
    /// Where a reporting-webhook delivery stands, kept in a store checkpoint: the last event delivered (in RecordedAt, id
    /// order), and while the receiver fails, how many attempts failed and when the next is due.
    /// </summary>
    public sealed record Cursor(DateTimeOffset RecordedAt, string Id, int Failures = 0, DateTimeOffset? RetryAt = null)
    {
        /// <summary>Before every event.</summary>
        public static readonly Cursor Start = new(DateTimeOffset.UnixEpoch, "");

        public string Serialize() => JsonSerializer.Serialize(this, StoreJson.Options);

        public static Cursor Parse(string? value) =>
            string.IsNullOrEmpty(value) ? Start : JsonSerializer.Deserialize<Cursor>(value, StoreJson.Options) ?? Start;
    }

    /// <summary>
    /// Delay before attempt number <paramref name="failures"/> + 1: 1 s doubling per failure, plus up to 20 % jitter
    /// from <paramref name="jitter"/> (0..1), at most <paramref name="max"/>, so several senders do not retry in step.
    /// </summary>
    public static TimeSpan Backoff(int failures, TimeSpan max, double jitter)
    {
        var seconds = Math.Min(max.TotalSeconds, Math.Pow(2, Math.Clamp(failures - 1, 0, 30)));
        return TimeSpan.FromSeconds(Math.Min(max.TotalSeconds, seconds * (1 + (0.2 * Math.Clamp(jitter, 0, 1)))));
    }
}
