using System.Security.Cryptography;
using System.Text;

namespace Nudge.Host.Tests;

/// <summary>
/// Independent implementations of the providers' webhook signatures (not Nudge's own code), shared by the webhook tests
/// and the bad input harness.
/// </summary>
internal static class WebhookSigning
{
    /// <summary>Twilio's documented scheme: URL, then each parameter (sorted by name) as name+value, HMAC-SHA1 with the auth token, base64.</summary>
    public static string Twilio(string authToken, string url, IEnumerable<KeyValuePair<string, string>> form)
    {
        var sb = new StringBuilder(url);
        foreach (var (k, v) in form.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            sb.Append(k).Append(v);
        }

#pragma warning disable CA5350 // Twilio's protocol is HMAC-SHA1.
        using var hmac = new HMACSHA1(Encoding.UTF8.GetBytes(authToken));
#pragma warning restore CA5350
        return Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>SendGrid's signed Event Webhook: ECDSA P-256 / SHA-256 over the timestamp then the raw body bytes, base64 DER.</summary>
    public static string SendGrid(ECDsa key, string timestamp, ReadOnlySpan<byte> body)
    {
        var signed = new byte[Encoding.UTF8.GetByteCount(timestamp) + body.Length];
        var n = Encoding.UTF8.GetBytes(timestamp, signed);
        body.CopyTo(signed.AsSpan(n));
        return Convert.ToBase64String(key.SignData(signed, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
    }
}
