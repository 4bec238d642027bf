using Twilio.Security;

namespace Nudge.Delivery.Twilio;

/// <summary>
/// Checks Twilio's <c>X-Twilio-Signature</c> on form-encoded webhooks with Twilio's own <see cref="RequestValidator"/>
/// (twilio-csharp): the full URL as Twilio called it, then every POST parameter sorted by name, each name followed by its
/// value, HMAC-SHA1 keyed by the auth token, compared in constant time, with the scheme's default port added or removed
/// (proxies in front of the webhook may change it; the removal is ours, the validator only adds one). The test suite keeps independent implementations and Twilio's
/// published vectors to hold the library to that.
/// </summary>
public static class TwilioSignature
{
    /// <summary>The request header Twilio puts the signature in.</summary>
    public const string HeaderName = "X-Twilio-Signature";

    /// <summary>
    /// True when <paramref name="signature"/> is Twilio's for <paramref name="url"/> and <paramref name="formParams"/>. A
    /// null or empty signature or auth token never verifies, and neither does a form that names a parameter twice:
    /// Twilio never does (media come as MediaUrl0, MediaUrl1, ...), and the validator signs one value per name.
    /// </summary>
    public static bool Verify(string authToken, string url, IEnumerable<KeyValuePair<string, string>> formParams, string? signature)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(formParams);
        if (string.IsNullOrEmpty(authToken) || string.IsNullOrEmpty(signature))
        {
            return false;
        }

        var form = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in formParams)
        {
            if (!form.TryAdd(name, value))
            {
                return false;
            }
        }

        // The validator adds a missing default port but does not remove one that is given (a public address written as
        // https://host:443): each variant is checked, all of them, so timing does not say which one matched.
        var validator = new RequestValidator(authToken);
        var ok = false;
        foreach (var candidate in UrlVariants(url))
        {
            ok |= validator.Validate(candidate, form, signature);
        }

        return ok;
    }

    /// <summary>The URL as given, and with the scheme's default port removed when it names it.</summary>
    private static IEnumerable<string> UrlVariants(string url)
    {
        yield return url;

        // Works on the raw string: a Uri round-trip would re-escape or re-case parts Twilio signed as they were.
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        var defaultPort = schemeEnd < 0 ? null : url[..schemeEnd].ToLowerInvariant() switch { "https" => ":443", "http" => ":80", _ => null };
        if (defaultPort is null)
        {
            yield break;
        }

        var hostStart = schemeEnd + 3;
        var hostEnd = url.IndexOfAny(['/', '?', '#'], hostStart);
        hostEnd = hostEnd < 0 ? url.Length : hostEnd;
        if (url[hostStart..hostEnd].EndsWith(defaultPort, StringComparison.Ordinal))
        {
            yield return url[..hostStart] + url[hostStart..hostEnd][..^defaultPort.Length] + url[hostEnd..];
        }
    }
}
