namespace Nudge.Host.Ingest;

/// <summary>Reads a request body up to a limit without buffering more than the limit.</summary>
public static class RequestBody
{
    /// <summary>Returns the body, or null when it is larger than <paramref name="maxBytes"/>.</summary>
    public static async Task<byte[]?> ReadAsync(HttpRequest req, int maxBytes, CancellationToken ct)
    {
        if (req.ContentLength > maxBytes)
        {
            return null;
        }

        using var buffer = new MemoryStream(req.ContentLength is { } n ? (int)n : 4096);
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await req.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }
}
