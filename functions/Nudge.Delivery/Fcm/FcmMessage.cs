using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Nudge.Delivery.Fcm;

/// <summary>
/// Builds the FCM HTTP v1 send body <c>{"message":{...}}</c> from a <see cref="PushRequest"/>, or the outcome that
/// stops the send before it reaches FCM (reserved data key, payload over <see cref="MaxMessageBytes"/>).
/// </summary>
internal static class FcmMessage
{
    /// <summary>FCM's payload limit, applied to the UTF-8 bytes of the <c>message</c> object.</summary>
    public const int MaxMessageBytes = 4096;

    /// <summary>FCM rejects a TTL over four weeks; longer requests are clamped to it.</summary>
    public const long MaxTtlSeconds = 28 * 24 * 3600;

    /// <summary>APNs limit for apns-collapse-id; FCM passes the key on to APNs.</summary>
    public const int MaxCollapseIdBytes = 64;

    /// <summary>Data keys FCM reserves (matched as prefixes, case-insensitively).</summary>
    public static readonly IReadOnlyList<string> ReservedKeyPrefixes = ["from", "message_type", "google", "gcm"];

    // BMP text stays UTF-8 so the size check counts close to what FCM counts (characters outside the BMP are still
    // escaped, which only over-counts); this is a JSON API body, never HTML.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly byte[] Prefix = Encoding.UTF8.GetBytes("{\"message\":");

    /// <summary>The request body, or the outcome to return without calling FCM.</summary>
    public static (byte[]? Body, SendOutcome? Refused) Build(PushRequest request)
    {
        var content = request.Content;
        if (content.Data is { } data)
        {
            foreach (var key in data.Keys)
            {
                if (ReservedKeyPrefixes.Any(p => key.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
                {
                    return (null, SendOutcome.Permanent(DeliveryReason.ProviderRejected, $"reserved data key '{FcmOptions.Shorten(key)}'"));
                }
            }
        }

        if (content.CollapseId is { } collapse && Encoding.UTF8.GetByteCount(collapse) > MaxCollapseIdBytes)
        {
            return (null, SendOutcome.Permanent(DeliveryReason.ProviderRejected, $"collapse id over {MaxCollapseIdBytes} bytes"));
        }

        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            WriteMessage(w, request);
        }

        if (buffer.WrittenCount > MaxMessageBytes)
        {
            return (null, SendOutcome.Permanent(DeliveryReason.PayloadTooLarge, $"message is {buffer.WrittenCount} bytes; FCM allows {MaxMessageBytes}"));
        }

        var body = new byte[Prefix.Length + buffer.WrittenCount + 1];
        Prefix.CopyTo(body, 0);
        buffer.WrittenSpan.CopyTo(body.AsSpan(Prefix.Length));
        body[^1] = (byte)'}';
        return (body, null);
    }

    private static void WriteMessage(Utf8JsonWriter w, PushRequest request)
    {
        var c = request.Content;
        w.WriteStartObject();
        w.WriteString("token", request.Token);

        if (c.Title is not null || c.Body is not null || c.Image is not null)
        {
            w.WriteStartObject("notification");
            WriteIfSet(w, "title", c.Title);
            WriteIfSet(w, "body", c.Body);
            WriteIfSet(w, "image", c.Image);
            w.WriteEndObject();
        }

        // FCM data values must be strings; ours win over caller keys of the same name so the SDK can report against the message.
        w.WriteStartObject("data");
        if (c.Data is { } data)
        {
            foreach (var (key, value) in data)
            {
                if (key is "delivery_id" || (c.DeepLink is not null && key is "link" or "deep_link"))
                {
                    continue;
                }

                w.WriteString(key, value ?? string.Empty);
            }
        }

        w.WriteString("delivery_id", request.MessageId);
        if (c.DeepLink is not null)
        {
            w.WriteString("link", c.DeepLink);
            w.WriteString("deep_link", c.DeepLink);
        }

        w.WriteEndObject();

        w.WriteStartObject("android");
        w.WriteString("priority", c.HighPriority ? "HIGH" : "NORMAL");
        if (c.TimeToLive is { } ttl)
        {
            var seconds = Math.Clamp((long)Math.Floor(ttl.TotalSeconds), 0, MaxTtlSeconds);
            w.WriteString("ttl", $"{seconds}s");
        }

        WriteIfSet(w, "collapse_key", c.CollapseId);
        w.WriteEndObject();

        w.WriteStartObject("apns");
        w.WriteStartObject("headers");
        w.WriteString("apns-priority", c.HighPriority ? "10" : "5");
        WriteIfSet(w, "apns-collapse-id", c.CollapseId);
        w.WriteEndObject();
        w.WriteStartObject("payload");
        w.WriteStartObject("aps");
        WriteIfSet(w, "sound", c.Sound);
        if (c.Badge is { } badge)
        {
            w.WriteNumber("badge", badge);
        }

        if (c.Image is not null)
        {
            // Lets the app's notification service extension download the image.
            w.WriteNumber("mutable-content", 1);
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();

        w.WriteEndObject();
    }

    private static void WriteIfSet(Utf8JsonWriter w, string name, string? value)
    {
        if (value is not null)
        {
            w.WriteString(name, value);
        }
    }
}
