using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Nudge.Host.Auth;

/// <summary>Credential checks for each API family. Comparisons are constant-time; nothing here logs a secret.</summary>
public static class ApiAuth
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> Digests = new(StringComparer.Ordinal);

    /// <summary>Track API: HTTP Basic with site id as user name and API key as password.</summary>
    public static bool IsTrackApi(HttpRequest req, Credentials c) =>
        Basic(req) is var (user, pass) && Same(user, c.SiteId) & Same(pass, c.ApiKey);

    /// <summary>Segment: HTTP Basic with the write key as user name (password ignored), when the header is present.</summary>
    public static bool? IsSegmentHeader(HttpRequest req, Credentials c)
    {
        if (req.Headers.Authorization.Count == 0)
        {
            return null;
        }

        return Basic(req) is var (user, _) && Same(user, c.SegmentWriteKey);
    }

    public static bool IsSegmentBodyKey(string? writeKey, Credentials c) => writeKey is not null && Same(writeKey, c.SegmentWriteKey);

    /// <summary>Admin API: <c>Authorization: Bearer {admin key}</c>.</summary>
    public static bool IsAdmin(HttpRequest req, Credentials c) =>
        AuthenticationHeaderValue.TryParse(req.Headers.Authorization.ToString(), out var h)
        && string.Equals(h.Scheme, "Bearer", StringComparison.OrdinalIgnoreCase)
        && h.Parameter is { } token && Same(token, c.AdminKey);

    private static (string User, string Password)? Basic(HttpRequest req)
    {
        if (!AuthenticationHeaderValue.TryParse(req.Headers.Authorization.ToString(), out var h)
            || !string.Equals(h.Scheme, "Basic", StringComparison.OrdinalIgnoreCase) || h.Parameter is null)
        {
            return null;
        }

        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(h.Parameter));
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            return colon < 0 ? (text, "") : (text[..colon], text[(colon + 1)..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// Compares digests, so the time taken tells nothing about the secret, not even its length. The configured
    /// secrets' digests are computed once (a process has a handful of them).
    /// </summary>
    private static bool Same(string given, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), Digests.GetOrAdd(expected, Digest));

    private static byte[] Digest(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));
}
