using System.Text.Encodings.Web;
using System.Text.Json;

namespace Nudge.Delivery.Apns;

/// <summary>
/// The APNs JSON payload for a <see cref="PushContent"/>:
/// <c>{"aps":{"alert":{"title","body"},"sound","badge","mutable-content":1},"delivery_id","link","deep_link","image",...Data}</c>.
/// A push with no title, body or badge is a background push whose aps holds only <c>"content-available":1</c>.
/// </summary>
internal static class ApnsPayload
{
    // The default encoder writes every non-ASCII letter as \uXXXX, up to three times its UTF-8 size, against a 4096-byte
    // limit. The payload is never embedded in HTML, so the relaxed encoder (which still escapes quotes and controls) is safe.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Alert pushes show something or change the badge; everything else is a background push.</summary>
    public static bool IsAlert(PushContent content) =>
        !string.IsNullOrEmpty(content.Title) || !string.IsNullOrEmpty(content.Body) || content.Badge is not null;

    /// <summary>Returns the name of the first Data key that would collide with "aps", or null.</summary>
    public static string? ReservedDataKey(PushContent content) =>
        content.Data?.Keys.FirstOrDefault(k => k == "aps");

    public static byte[] Build(string messageId, PushContent content)
    {
        using var buffer = new MemoryStream(512);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteStartObject("aps");
            if (IsAlert(content))
            {
                var hasText = !string.IsNullOrEmpty(content.Title) || !string.IsNullOrEmpty(content.Body);
                if (hasText)
                {
                    w.WriteStartObject("alert");
                    if (!string.IsNullOrEmpty(content.Title))
                    {
                        w.WriteString("title", content.Title);
                    }

                    if (!string.IsNullOrEmpty(content.Body))
                    {
                        w.WriteString("body", content.Body);
                    }

                    w.WriteEndObject();
                }

                // A badge-only update stays silent: the default sound belongs to a visible alert.
                if (hasText && !string.IsNullOrEmpty(content.Sound))
                {
                    w.WriteString("sound", content.Sound);
                }

                if (content.Badge is { } badge)
                {
                    w.WriteNumber("badge", badge);
                }

                if (!string.IsNullOrEmpty(content.Image))
                {
                    // Lets the app's notification service extension download the image before display.
                    w.WriteNumber("mutable-content", 1);
                }
            }
            else
            {
                w.WriteNumber("content-available", 1);
            }

            w.WriteEndObject();
            w.WriteString("delivery_id", messageId);

            // Keys Nudge writes itself win over a Data entry of the same name: JSON objects must not repeat a key.
            HashSet<string> written = ["aps", "delivery_id"];
            if (!string.IsNullOrEmpty(content.DeepLink))
            {
                w.WriteString("link", content.DeepLink);
                w.WriteString("deep_link", content.DeepLink);
                written.Add("link");
                written.Add("deep_link");
            }

            if (!string.IsNullOrEmpty(content.Image))
            {
                w.WriteString("image", content.Image);
                written.Add("image");
            }

            if (content.Data is { } data)
            {
                foreach (var (key, value) in data)
                {
                    if (written.Add(key))
                    {
                        w.WriteString(key, value);
                    }
                }
            }

            w.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
