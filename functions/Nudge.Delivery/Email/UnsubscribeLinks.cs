using System.Text;

namespace Nudge.Delivery.Email;

/// <summary>
/// One-click unsubscribe tokens (RFC 8058) naming a profile and the message that carried the link. A token is
/// base64url(version, profile key, message id, HMAC-SHA256 of those under the secret key): it cannot be forged or
/// altered without the key, and reading one checks the MAC in constant time before trusting any of it. Tokens do not
/// expire (mailbox providers may POST the link long after delivery). The profile key and message id are signed, not
/// encrypted: anyone holding the token can read them.
/// </summary>
public sealed class UnsubscribeLinks
{
    /// <summary>Longest profile key or message id accepted, in UTF-8 bytes.</summary>
    public const int MaxPartBytes = 512;

    // Longest token TryRead looks at: anything longer was not made here.
    private static readonly int MaxTokenChars = SignedPairToken.MaxChars(MaxPartBytes, MaxPartBytes);

    // Binds the MAC to this use, so the same key could sign something else without tokens being interchangeable.
    private static readonly byte[] Purpose = "nudge/email-unsubscribe"u8.ToArray();

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly SignedPairToken _tokens;

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="secretKey"/> is shorter than 32 bytes.</summary>
    public UnsubscribeLinks(byte[] secretKey)
    {
        ArgumentNullException.ThrowIfNull(secretKey);
        if (secretKey.Length < 32)
        {
            throw new ArgumentException("The unsubscribe signing key must be at least 32 bytes.", nameof(secretKey));
        }

        _tokens = new SignedPairToken(secretKey);
    }

    /// <summary>
    /// A URL-safe token (base64url, no padding). The same inputs always give the same token. Throws
    /// <see cref="ArgumentException"/> when either part is empty, not valid UTF-16, or over <see cref="MaxPartBytes"/> bytes.
    /// </summary>
    public string Create(string profileKey, string messageId) =>
        _tokens.Create(Purpose, Encode(profileKey, nameof(profileKey)), Encode(messageId, nameof(messageId)));

    /// <summary>Reads a token made by <see cref="Create"/> with the same key. False (never an exception) for anything else.</summary>
    public bool TryRead(string? token, out string profileKey, out string messageId) =>
        _tokens.TryRead(Purpose, token, MaxTokenChars, out profileKey, out messageId) && messageId.Length > 0;

    /// <summary>
    /// The RFC 8058 headers for a one-click unsubscribe URL (which should carry a token from <see cref="Create"/>):
    /// List-Unsubscribe: &lt;url&gt; and List-Unsubscribe-Post: List-Unsubscribe=One-Click. Mailbox providers only
    /// honour https URLs. Throws <see cref="ArgumentException"/> unless the URL is absolute http(s).
    /// </summary>
    public static IReadOnlyDictionary<string, string> Headers(Uri unsubscribeUrl)
    {
        ArgumentNullException.ThrowIfNull(unsubscribeUrl);
        if (!unsubscribeUrl.IsAbsoluteUri || (unsubscribeUrl.Scheme != Uri.UriSchemeHttps && unsubscribeUrl.Scheme != Uri.UriSchemeHttp))
        {
            throw new ArgumentException("The unsubscribe URL must be an absolute http(s) URL.", nameof(unsubscribeUrl));
        }

        return new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["List-Unsubscribe"] = "<" + unsubscribeUrl.AbsoluteUri + ">",
            ["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click",
        };
    }

    private static byte[] Encode(string value, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(value, name);
        byte[] bytes;
        try
        {
            bytes = StrictUtf8.GetBytes(value);
        }
        catch (EncoderFallbackException)
        {
            throw new ArgumentException("The value is not valid UTF-16 text.", name);
        }

        return bytes.Length <= MaxPartBytes ? bytes : throw new ArgumentException($"The value is over {MaxPartBytes} UTF-8 bytes.", name);
    }
}
