using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nudge.Core.Ingest;

/// <summary>Typed reads of request fields that collect a <see cref="FieldError"/> for every problem instead of throwing.</summary>
public sealed class JsonFields(List<FieldError> errors)
{
    public List<FieldError> Errors { get; } = errors;

    public static JsonObject ParseObject(ReadOnlySpan<byte> body, string what)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(body, documentOptions: new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new ValidationException("", $"{what} is not valid JSON: {e.Message}");
        }
        catch (ArgumentException e)
        {
            throw new ValidationException("", $"{what} is not valid JSON: {e.Message}");
        }

        return node as JsonObject ?? throw new ValidationException("", $"{what} must be a JSON object");
    }

    /// <summary>JSON as a client would send it: non-ASCII characters stay UTF-8 instead of becoming \uXXXX escapes.</summary>
    private static readonly JsonSerializerOptions AsSent = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static int Bytes(string s) => Encoding.UTF8.GetByteCount(s);

    /// <summary>Size of a value in UTF-8 bytes: a string's own bytes, anything else its JSON text as sent.</summary>
    public static int Bytes(JsonNode? n) => n is null ? 4 : n.GetValueKind() == JsonValueKind.String
        ? Bytes(n.GetValue<string>()) : Bytes(n.ToJsonString(AsSent));

    public void Add(string field, string problem) => Errors.Add(new FieldError(field, problem));

    /// <summary>A string field; numbers are accepted for ids (Customer.io and Segment both allow numeric ids).</summary>
    public string? IdString(JsonObject o, string name, string path, int maxBytes, bool required)
    {
        var n = o[name];
        if (n is null)
        {
            if (required)
            {
                Add(path, "is required");
            }

            return null;
        }

        string? s = n.GetValueKind() switch
        {
            JsonValueKind.String => n.GetValue<string>(),
            JsonValueKind.Number => n.ToJsonString(),
            _ => null,
        };
        if (s is null)
        {
            Add(path, $"must be a string, got {Kind(n)}");
            return null;
        }

        return CheckId(s, path, maxBytes) ? s : null;
    }

    public bool CheckId(string s, string path, int maxBytes)
    {
        if (string.IsNullOrWhiteSpace(s))
        {
            Add(path, "must not be empty");
            return false;
        }

        if (Bytes(s) > maxBytes)
        {
            Add(path, $"is {Bytes(s)} bytes, the limit is {maxBytes}");
            return false;
        }

        if (s.Any(char.IsControl))
        {
            Add(path, "must not contain control characters");
            return false;
        }

        return true;
    }

    public string? String(JsonObject o, string name, string path, bool required)
    {
        var n = o[name];
        if (n is null)
        {
            if (required)
            {
                Add(path, "is required");
            }

            return null;
        }

        if (n.GetValueKind() != JsonValueKind.String)
        {
            Add(path, $"must be a string, got {Kind(n)}");
            return null;
        }

        return n.GetValue<string>();
    }

    public JsonObject? Object(JsonObject o, string name, string path)
    {
        var n = o[name];
        if (n is null)
        {
            return null;
        }

        if (n is not JsonObject obj)
        {
            Add(path, $"must be an object, got {Kind(n)}");
            return null;
        }

        return obj;
    }

    public bool? Bool(JsonObject o, string name, string path)
    {
        var n = o[name];
        if (n is null)
        {
            return null;
        }

        switch (n.GetValueKind())
        {
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            default:
                Add(path, $"must be a boolean, got {Kind(n)}");
                return null;
        }
    }

    /// <summary>A Unix time in seconds. Millisecond values are rejected by name, since they are the usual mistake.</summary>
    public DateTimeOffset? UnixSeconds(JsonObject o, string name, string path)
    {
        var n = o[name];
        if (n is null)
        {
            return null;
        }

        if (n.GetValueKind() != JsonValueKind.Number || !n.AsValue().TryGetValue<double>(out var d) || double.IsNaN(d))
        {
            Add(path, $"must be a Unix timestamp in seconds (a number), got {Kind(n)}");
            return null;
        }

        if (d < 0 || d >= 1e11)
        {
            Add(path, d >= 1e11
                ? $"{n.ToJsonString()} looks like milliseconds; send Unix seconds"
                : "must not be negative");
            return null;
        }

        return DateTimeOffset.FromUnixTimeMilliseconds((long)(d * 1000));
    }

    public DateTimeOffset? IsoTime(JsonObject o, string name, string path)
    {
        var s = String(o, name, path, required: false);
        if (s is null)
        {
            return null;
        }

        if (!DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            Add(path, $"'{Truncate(s)}' is not an ISO-8601 date-time");
            return null;
        }

        return t;
    }

    public static string Kind(JsonNode? n) => n?.GetValueKind() switch
    {
        null => "null",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    public static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
