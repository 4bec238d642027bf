using System.Text.Json;
using System.Text.Json.Serialization;

namespace Nudge.Core.Storage;

/// <summary>The one JSON shape every store uses for documents, so stores are interchangeable and data moves between them.</summary>
public static class StoreJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };
}
