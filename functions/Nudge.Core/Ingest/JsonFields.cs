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

    /// <summary>Most nesting a request may have: 32 levels.</summary>
    public const int MaxDepth = 32;

    /// <summary>
    /// Parses a request body that must be a JSON object.
    /// </summary>
    /// <exception cref="ValidationException">The body is not JSON, not an object, nests deeper than <see cref="MaxDepth"/>,
    /// repeats a key in one object, or holds text that is not valid UTF-8 / UTF-16 (an unpaired surrogate escape).</exception>
    public static JsonObject ParseObject(ReadOnlySpan<byte> body, string what) =>
        Parse(body, what) as JsonObject ?? throw new ValidationException("", $"{what} must be a JSON object");

    /// <summary>Parses a request body as any JSON value (null for the literal null), with the checks of <see cref="ParseObject"/>.</summary>
    /// <exception cref="ValidationException">See <see cref="ParseObject"/>.</exception>
    public static JsonNode? Parse(ReadOnlySpan<byte> body, string what)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(body, documentOptions: new JsonDocumentOptions { MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            throw new ValidationException("", $"{what} is not valid JSON: {e.Message}");
        }
        catch (ArgumentException e)
        {
            throw new ValidationException("", $"{what} is not valid JSON: {e.Message}");
        }

        CheckText(body, what);
        return node;
    }

    /// <summary>
    /// JsonNode finds duplicate keys and undecodable strings only when a value is first read, and then throws
    /// ArgumentException or InvalidOperationException from wherever that is; this reads everything once, up front, so
    /// they are a 400 naming the field instead.
    /// </summary>
    private static void CheckText(ReadOnlySpan<byte> body, string what)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = MaxDepth });
        var frames = new List<(HashSet<string>? Keys, string? Key, int Index)>();
        string PathOf(int depth)
        {
            var sb = new StringBuilder();
            for (var k = 0; k < depth; k++)
            {
                var (keys, key, index) = frames[k];
                _ = keys is null ? sb.Append('[').Append(index.ToString(CultureInfo.InvariantCulture)).Append(']') : sb.Append(sb.Length > 0 ? "." : "").Append(key);
            }

            return sb.ToString();
        }

        void NextItem()
        {
            if (frames.Count > 0 && frames[^1].Keys is null)
            {
                frames[^1] = frames[^1] with { Index = frames[^1].Index + 1 };
            }
        }

        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject or JsonTokenType.StartArray:
                    NextItem();
                    frames.Add((reader.TokenType == JsonTokenType.StartObject ? new HashSet<string>(StringComparer.Ordinal) : null, null, -1));
                    break;
                case JsonTokenType.EndObject or JsonTokenType.EndArray:
                    frames.RemoveAt(frames.Count - 1);
                    break;
                case JsonTokenType.PropertyName:
                    {
                        var at = PathOf(frames.Count - 1);
                        var key = Text(ref reader, at, what, "has a key that");
                        if (!frames[^1].Keys!.Add(key))
                        {
                            throw new ValidationException(at, $"{(at.Length == 0 ? what + " " : "")}has the key '{Truncate(key)}' more than once");
                        }

                        frames[^1] = frames[^1] with { Key = key };
                        break;
                    }

                case JsonTokenType.String:
                    NextItem();
                    Text(ref reader, PathOf(frames.Count), what, "");
                    break;
                default:
                    NextItem();
                    break;
            }
        }
    }

    private static string Text(ref Utf8JsonReader reader, string path, string what, string subject)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            var problem = $"{subject}{(subject.Length == 0 ? "is" : " is")} not valid Unicode text (invalid UTF-8, or an unpaired surrogate escape such as \\ud800)";
            throw new ValidationException(path, path.Length == 0 ? $"{what} {problem}" : problem);
        }
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
