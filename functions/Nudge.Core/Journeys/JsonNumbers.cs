using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nudge.Core.Journeys;

/// <summary>Reads JSON numbers whatever backs the node (parsed JSON, or a long/double built in code or from YAML).</summary>
internal static class JsonNumbers
{
    public static double? AsDouble(JsonNode? n) =>
        n is not null && n.GetValueKind() == JsonValueKind.Number
        && double.TryParse(n.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    public static decimal? AsDecimal(JsonNode? n) =>
        n is not null && n.GetValueKind() == JsonValueKind.Number
        && decimal.TryParse(n.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
}
