using System.Buffers;

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

        if (req.ContentLength is { } length)
        {
            // The usual case: the size is declared, so the body goes straight into an array of that size (a client
            // that sends less than it declared gets what it sent; one that sends more is cut off by Kestrel).
            var body = new byte[length];
            var at = 0;
            while (at < body.Length && await req.Body.ReadAsync(body.AsMemory(at), ct) is var n and > 0)
            {
                at += n;
            }

            return at == body.Length ? body : body[..at];
        }

        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            using var buffer = new MemoryStream(4096);
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
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }
}
