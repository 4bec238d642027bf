using System.Security.Cryptography;
using System.Text;

namespace Nudge.Delivery.Twilio;

/// <summary>
/// Twilio's <c>X-Twilio-Signature</c> for form-encoded webhooks: the full request URL as Twilio called it (scheme, host,
/// path and query string), then every POST parameter sorted by name (ordinal), each name immediately followed by its value,
/// HMAC-SHA1 keyed by the Auth Token, base64. Parameters with the same name are ordered by value. JSON-bodied webhooks
/// (signed through a <c>bodySHA256</c> query parameter) are not handled here.
/// </summary>
public static class TwilioSignature
{
    /// <summary>The request header Twilio puts the signature in.</summary>
    public const string HeaderName = "X-Twilio-Signature";

    /// <summary>The base64 signature of <paramref name="url"/> and <paramref name="formParams"/>.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static string Compute(string authToken, string url, IEnumerable<KeyValuePair<string, string>> formParams)
    {
        ArgumentNullException.ThrowIfNull(authToken);
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(formParams);

        var data = new StringBuilder(url);
        foreach (var p in formParams.OrderBy(p => p.Key, StringComparer.Ordinal).ThenBy(p => p.Value, StringComparer.Ordinal))
        {
            data.Append(p.Key).Append(p.Value);
        }

#pragma warning disable CA5350 // Twilio's protocol fixes HMAC-SHA1; we only verify what Twilio signs.
        var mac = HMACSHA1.HashData(Encoding.UTF8.GetBytes(authToken), Encoding.UTF8.GetBytes(data.ToString()));
#pragma warning restore CA5350
        return Convert.ToBase64String(mac);
    }

    /// <summary>
    /// True when <paramref name="signature"/> matches, compared in constant time. Like Twilio's own validators it also
    /// accepts the URL with the scheme's default port added or removed, because proxies in front of the webhook may change it.
    /// A null or empty signature or auth token never verifies.
    /// </summary>
    public static bool Verify(string authToken, string url, IEnumerable<KeyValuePair<string, string>> formParams, string? signature)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(formParams);
        if (string.IsNullOrEmpty(authToken) || string.IsNullOrEmpty(signature))
        {
            return false;
        }

        var given = Encoding.UTF8.GetBytes(signature);
        var list = formParams.ToList();
        var ok = false;
        foreach (var candidate in UrlVariants(url))
        {
            // No early exit: every candidate is checked so timing does not say which one matched.
            ok |= CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(Compute(authToken, candidate, list)), given);
        }

        return ok;
    }

    private static IEnumerable<string> UrlVariants(string url)
    {
        yield return url;

        // Works on the raw string: a Uri round-trip would re-escape or re-case parts Twilio signed as they were.
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0)
        {
            yield break;
        }

        var scheme = url[..schemeEnd].ToLowerInvariant();
        var defaultPort = scheme switch { "https" => ":443", "http" => ":80", _ => null };
        if (defaultPort is null)
        {
            yield break;
        }

        var hostStart = schemeEnd + 3;
        var hostEnd = url.IndexOfAny(['/', '?', '#'], hostStart);
        hostEnd = hostEnd < 0 ? url.Length : hostEnd;
        var authority = url[hostStart..hostEnd];
        if (authority.EndsWith(defaultPort, StringComparison.Ordinal))
        {
            yield return url[..hostStart] + authority[..^defaultPort.Length] + url[hostEnd..];
        }
        else if (!authority[(authority.LastIndexOf(']') + 1)..].Contains(':', StringComparison.Ordinal))
        {
            yield return url[..hostStart] + authority + defaultPort + url[hostEnd..];
        }
    }
}
