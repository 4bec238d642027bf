using System.Text.Json;
using Nudge.Core.Ingest;
using Nudge.Core.Storage;

namespace Nudge.Pipeline;

/// <summary>The queue message format of an <see cref="IngestOp"/>: a JSON object (never a bare string, see the Functions base64 gotcha).</summary>
public static class IngestOpJson
{
    public static string Serialize(IngestOp op) => JsonSerializer.Serialize(op, StoreJson.Options);

    /// <exception cref="JsonException">The body is not an ingest op.</exception>
    public static IngestOp Deserialize(string body) =>
        JsonSerializer.Deserialize<IngestOp>(body, StoreJson.Options) ?? throw new JsonException("queue message is null");
}
