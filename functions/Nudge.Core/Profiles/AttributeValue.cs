using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Nudge.Core.Profiles;

/// <summary>
/// One attribute value with the time it was set. A null <see cref="Value"/> is a tombstone: the attribute was removed
/// at <see cref="SetAtMs"/>, and the tombstone is kept so that an older update arriving later does not bring it back.
/// </summary>
public sealed class AttributeValue
{
    [JsonPropertyName("v")]
    public JsonNode? Value { get; set; }

    /// <summary>Unix milliseconds of the update that set this value (the client's timestamp, not arrival time).</summary>
    [JsonPropertyName("t")]
    public long SetAtMs { get; set; }

    [JsonIgnore]
    public bool IsRemoved => Value is null;
}
