using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// One invocation as the Functions host posts it to /{function}: <c>{"Data":{binding: value}, "Metadata":{...}}</c>.
/// Values follow the host's encoding: objects arrive as JSON objects, but strings arrive JSON-quoted
/// (<c>"\"abc\""</c>, from JsonConvert.SerializeObject) or, in the documentation's examples, unquoted; both are read.
/// </summary>
public sealed class Invocation
{
    private Invocation(JsonObject data, JsonObject metadata)
    {
        Data = data;
        Metadata = metadata;
    }

    /// <summary>Input bindings by name.</summary>
    public JsonObject Data { get; }

    /// <summary>Trigger metadata (Service Bus: DeliveryCount, MessageId, EnqueuedTimeUtc, ...; and "sys").</summary>
    public JsonObject Metadata { get; }

    /// <summary>Service Bus DeliveryCount: 1 on the first delivery; 1 when absent (other triggers).</summary>
    public int DeliveryCount => HostValues.Text(Metadata[nameof(DeliveryCount)]) is { } t
        && int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 1;

    /// <summary>Service Bus MessageId, for logs; null when absent.</summary>
    public string? MessageId => HostValues.Text(Metadata[nameof(MessageId)]);

    /// <summary>Reads and checks the invocation body.</summary>
    /// <exception cref="InvalidInvocationException">The body is not JSON, or has no Data object.</exception>
    public static async Task<Invocation> ReadAsync(HttpRequest request, CancellationToken ct)
    {
        JsonNode? body;
        try
        {
            body = await JsonNode.ParseAsync(request.Body, cancellationToken: ct);
        }
        catch (JsonException e)
        {
            throw new InvalidInvocationException("the invocation body is not JSON: " + e.Message);
        }

        if (body is not JsonObject o || HostValues.Object(o[nameof(Data)]) is not { } data)
        {
            throw new InvalidInvocationException("the invocation body must be a JSON object with a \"Data\" object");
        }

        return new Invocation(data, HostValues.Object(o[nameof(Metadata)]) ?? []);
    }

    /// <summary>The input binding <paramref name="name"/> as a JSON object (a queue message body, a timer, an HTTP request).</summary>
    /// <exception cref="InvalidInvocationException">It is missing or is not a JSON object (in any of the host's encodings).</exception>
    public JsonObject Object(string name) => HostValues.Object(Data[name])
        ?? throw new InvalidInvocationException($"Data.{name} is missing or is not a JSON object");
}

/// <summary>The invocation cannot be read (not JSON, a missing binding or field): it fails with 400 and changes nothing.</summary>
public sealed class InvalidInvocationException(string message) : Exception(message);

/// <summary>Reads values in the encodings the Functions host uses for a custom handler.</summary>
public static class HostValues
{
    /// <summary>
    /// A string value: a JSON string is unwrapped once more when it is itself a quoted JSON string (the host's
    /// JsonConvert.SerializeObject of a string); numbers and booleans give their JSON text; null and objects give null.
    /// </summary>
    public static string? Text(JsonNode? node) => node switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => Unquote(v.GetValue<string>()),
        JsonValue v when v.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => v.ToJsonString(),
        _ => null,
    };

    /// <summary>
    /// A JSON object value: an object as is, or a string holding one, quoted or not (Service Bus and queue bodies), or
    /// base64 of one (a binding bound as bytes). Null for anything else.
    /// </summary>
    public static JsonObject? Object(JsonNode? node)
    {
        if (node is JsonObject o)
        {
            return o;
        }

        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
        {
            return null;
        }

        var text = Unquote(v.GetValue<string>()).Trim();
        if (Parse(text) is JsonObject parsed)
        {
            return parsed;
        }

        // Only tried when the text is not JSON; JSON text is never valid base64 of an object.
        Span<byte> bytes = new byte[text.Length];
        return text.Length > 0 && Convert.TryFromBase64String(text, bytes, out var n) && Parse(Encoding.UTF8.GetString(bytes[..n])) is JsonObject fromBytes
            ? fromBytes
            : null;
    }

    /// <summary>Unwraps one level of JSON quoting (<c>"\"abc\""</c> -> <c>abc</c>); any other text is returned as is.</summary>
    public static string Unquote(string s)
    {
        if (s.Length < 2 || s[0] != '"' || s[^1] != '"')
        {
            return s;
        }

        try
        {
            return JsonSerializer.Deserialize<string>(s) ?? s;
        }
        catch (JsonException)
        {
            return s;
        }
    }

    private static JsonNode? Parse(string text)
    {
        if (text.Length == 0 || text[0] is not ('{' or '['))
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
