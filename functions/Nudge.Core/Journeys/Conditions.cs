using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Profiles;

namespace Nudge.Core.Journeys;

/// <summary>The values a condition path can reach.</summary>
public sealed record ConditionScope(JsonObject? Event, JsonObject? Trigger, Profile? Customer, IReadOnlyDictionary<string, JsonObject>? Steps)
{
    public JsonNode? Resolve(string path)
    {
        var dot = path.IndexOf('.', StringComparison.Ordinal);
        var root = path[..dot];
        var rest = path[(dot + 1)..];
        switch (root)
        {
            case "event": return Walk(Event, rest);
            case "trigger": return Walk(Trigger, rest);
            case "customer":
                return Customer is null ? null : rest switch
                {
                    "id" => Customer.Id,
                    "email" => Customer.Email,
                    "cio_id" => Identifier.CioPrefix + Customer.Key,
                    _ => Walk(Customer, rest),
                };
            case "steps":
                {
                    var d2 = rest.IndexOf('.', StringComparison.Ordinal);
                    return d2 < 0 || Steps is null || !Steps.TryGetValue(rest[..d2], out var r) ? null : Walk(r, rest[(d2 + 1)..]);
                }

            default: return null;
        }
    }

    private static JsonNode? Walk(Profile p, string path)
    {
        var dot = path.IndexOf('.', StringComparison.Ordinal);
        var head = dot < 0 ? path : path[..dot];
        var value = p.Get(head);
        return dot < 0 ? value : Walk(value as JsonObject, path[(dot + 1)..]);
    }

    private static JsonNode? Walk(JsonObject? o, string path)
    {
        JsonNode? n = o;
        foreach (var part in path.Split('.'))
        {
            n = n is JsonObject obj ? obj[part] : null;
        }

        return n;
    }
}

/// <summary>Evaluates conditions. Numbers compare numerically (numeric strings count), text ordinally; a missing value fails every op but not_exists and ne.</summary>
public static class Conditions
{
    public static bool All(IReadOnlyList<Condition> conditions, ConditionScope scope) =>
        conditions.All(c => Holds(c, scope.Resolve(c.Path)));

    public static bool Holds(Condition c, JsonNode? actual)
    {
        switch (c.Op)
        {
            case ConditionOp.Exists: return actual is not null;
            case ConditionOp.NotExists: return actual is null;
            case ConditionOp.Eq: return actual is not null && Compare(actual, c.Value) == 0;
            case ConditionOp.Ne: return actual is null || Compare(actual, c.Value) != 0;
            case ConditionOp.Gt: return actual is not null && Compare(actual, c.Value) is > 0 and not int.MinValue;
            case ConditionOp.Gte: return actual is not null && Compare(actual, c.Value) is >= 0;
            case ConditionOp.Lt: return actual is not null && Compare(actual, c.Value) is < 0 and not int.MinValue;
            case ConditionOp.Lte: return actual is not null && Compare(actual, c.Value) is <= 0 and not int.MinValue;
            case ConditionOp.In: return actual is not null && c.Value is JsonArray a && a.Any(v => Compare(actual, v) == 0);
            case ConditionOp.Contains:
                return actual switch
                {
                    JsonArray arr => arr.Any(v => Compare(v, c.Value) == 0),
                    JsonValue v when v.GetValueKind() == JsonValueKind.String && c.Value is JsonValue cv && cv.GetValueKind() == JsonValueKind.String =>
                        v.GetValue<string>().Contains(cv.GetValue<string>(), StringComparison.Ordinal),
                    _ => false,
                };
            default: return false;
        }
    }

    /// <summary>Same-key equality between an event and the trigger (match: [cart_id]); both must have the key.</summary>
    public static bool Matches(IReadOnlyList<string> keys, JsonObject eventData, JsonObject triggerData) =>
        keys.All(k => eventData[k] is { } a && triggerData[k] is { } b && Compare(a, b) == 0);

    /// <summary>-1, 0, 1; int.MinValue when the two cannot be ordered (text against number, objects).</summary>
    public static int Compare(JsonNode? a, JsonNode? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null ? 0 : int.MinValue;
        }

        if (Number(a) is { } x && Number(b) is { } y)
        {
            return x.CompareTo(y);
        }

        if (a.GetValueKind() == JsonValueKind.String && b.GetValueKind() == JsonValueKind.String)
        {
            return Math.Sign(string.CompareOrdinal(a.GetValue<string>(), b.GetValue<string>()));
        }

        if (a.GetValueKind() is JsonValueKind.True or JsonValueKind.False && b.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
        {
            return a.GetValue<bool>() == b.GetValue<bool>() ? 0 : int.MinValue;
        }

        return JsonNode.DeepEquals(a, b) ? 0 : int.MinValue;
    }

    private static double? Number(JsonNode n) => n.GetValueKind() switch
    {
        JsonValueKind.Number => JsonNumbers.AsDouble(n),
        JsonValueKind.String when double.TryParse(n.GetValue<string>(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => null,
    };
}
