using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Profiles;
using Nudge.Core.Text;

namespace Nudge.Core.Ingest;

/// <summary>Rules shared by the Track API and Segment parsers: attributes, emails, devices, event data.</summary>
public sealed class IngestValidator(IngestLimits limits, PhoneNormalizer phones)
{
    public IngestLimits Limits { get; } = limits;

    /// <summary>
    /// Checks attribute names, sizes and typed attributes, and returns a copy in which "" becomes null (remove),
    /// booleans given as "true"/"false" become booleans and phone numbers become E.164.
    /// </summary>
    public JsonObject Attributes(IEnumerable<KeyValuePair<string, JsonNode?>> attrs, string path, JsonFields f)
    {
        var result = new JsonObject();
        var count = 0;
        foreach (var (name, value) in attrs)
        {
            count++;
            var at = $"{path}.{name}";
            if (name.Length == 0 || string.IsNullOrWhiteSpace(name))
            {
                f.Add(at, "attribute name must not be empty");
                continue;
            }

            if (JsonFields.Bytes(name) > Limits.MaxAttributeNameBytes)
            {
                f.Add($"{path}.{JsonFields.Truncate(name)}", $"attribute name is {JsonFields.Bytes(name)} bytes, the limit is {Limits.MaxAttributeNameBytes}");
                continue;
            }

            if (JsonFields.Bytes(value) > Limits.MaxAttributeValueBytes)
            {
                f.Add(at, $"value is {JsonFields.Bytes(value)} bytes, the limit is {Limits.MaxAttributeValueBytes}");
                continue;
            }

            JsonNode? v = value?.DeepClone();
            if (v is not null && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length == 0)
            {
                v = null; // Customer.io: an empty value removes the attribute.
            }

            if (v is not null && Consent.BooleanAttributes.Contains(name))
            {
                v = v.GetValueKind() switch
                {
                    JsonValueKind.True or JsonValueKind.False => v,
                    JsonValueKind.String when bool.TryParse(v.GetValue<string>(), out var b) => JsonValue.Create(b),
                    _ => null,
                };
                if (v is null)
                {
                    f.Add(at, $"must be a boolean (true or false), got {JsonFields.Kind(value)}");
                    continue;
                }
            }

            if (v is not null && Consent.PhoneAttributes.Contains(name))
            {
                if (v.GetValueKind() != JsonValueKind.String)
                {
                    f.Add(at, $"must be a phone number string, got {JsonFields.Kind(value)}");
                    continue;
                }

                var e164 = phones.ToE164(v.GetValue<string>(), out var problem);
                if (e164 is null)
                {
                    f.Add(at, problem!);
                    continue;
                }

                v = JsonValue.Create(e164);
            }

            result[name] = v;
        }

        if (count > Limits.MaxAttributes)
        {
            f.Add(path, $"has {count} attributes, the limit is {Limits.MaxAttributes}");
        }

        return result;
    }

    /// <summary>Returns the lower-cased email, or null after recording why it is not one.</summary>
    public string? Email(string raw, string path, JsonFields f)
    {
        var s = raw.Trim();
        var at = s.IndexOf('@', StringComparison.Ordinal);
        if (JsonFields.Bytes(s) > Limits.MaxEmailBytes)
        {
            f.Add(path, $"is {JsonFields.Bytes(s)} bytes, the limit is {Limits.MaxEmailBytes}");
            return null;
        }

        if (at <= 0 || at != s.LastIndexOf('@') || at == s.Length - 1 || s.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
            || !s[(at + 1)..].Contains('.', StringComparison.Ordinal) || s.EndsWith('.'))
        {
            f.Add(path, $"'{JsonFields.Truncate(s)}' is not an email address");
            return null;
        }

        return s.ToLowerInvariant();
    }

    public JsonObject EventData(JsonObject? data, string path, JsonFields f)
    {
        if (data is null)
        {
            return [];
        }

        var bytes = JsonFields.Bytes(data);
        if (bytes > Limits.MaxEventDataBytes)
        {
            f.Add(path, $"is {bytes} bytes, the limit is {Limits.MaxEventDataBytes}");
        }

        return (JsonObject)data.DeepClone();
    }

    public string? EventName(string? name, string path, JsonFields f)
    {
        if (name is null)
        {
            return null;
        }

        if (string.IsNullOrWhiteSpace(name))
        {
            f.Add(path, "must not be empty");
            return null;
        }

        if (JsonFields.Bytes(name) > Limits.MaxEventNameBytes)
        {
            f.Add(path, $"is {JsonFields.Bytes(name)} bytes, the limit is {Limits.MaxEventNameBytes}");
            return null;
        }

        return name;
    }

    public static string? Platform(string? raw, string path, JsonFields f, bool required)
    {
        if (raw is null)
        {
            if (required)
            {
                f.Add(path, "is required (ios or android)");
            }

            return null;
        }

        var p = Platforms.Normalize(raw);
        if (p is null)
        {
            f.Add(path, $"'{JsonFields.Truncate(raw)}' is not a supported platform; use ios or android");
        }

        return p;
    }

    public JsonObject DeviceAttributes(JsonObject? attrs, string path, JsonFields f)
    {
        if (attrs is null)
        {
            return [];
        }

        var result = new JsonObject();
        foreach (var (name, value) in attrs)
        {
            if (JsonFields.Bytes(name) > Limits.MaxAttributeNameBytes)
            {
                f.Add($"{path}.{JsonFields.Truncate(name)}", $"attribute name is over {Limits.MaxAttributeNameBytes} bytes");
                continue;
            }

            if (value is JsonObject or JsonArray)
            {
                f.Add($"{path}.{name}", $"must be a string, number or boolean, got {JsonFields.Kind(value)}");
                continue;
            }

            if (JsonFields.Bytes(value) > Limits.MaxAttributeValueBytes)
            {
                f.Add($"{path}.{name}", $"value is over {Limits.MaxAttributeValueBytes} bytes");
                continue;
            }

            result[name] = value?.DeepClone();
        }

        if (result.Count > Limits.MaxAttributes)
        {
            f.Add(path, $"has {result.Count} attributes, the limit is {Limits.MaxAttributes}");
        }

        return result;
    }

    public static void ThrowIfAny(JsonFields f)
    {
        if (f.Errors.Count > 0)
        {
            throw new ValidationException(f.Errors);
        }
    }

    public static string NewMessageId() => "nd_" + Guid.NewGuid().ToString("N");
}
