using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Nudge.Delivery.Email;

/// <summary>
/// Open and click tracking for email, with links signed as <see cref="UnsubscribeLinks"/> signs its own: a token is
/// base64url(version, message id, [target URL], HMAC-SHA256 under the link key bound to its purpose), so it cannot be
/// forged, altered or used for another purpose, and is checked in constant time before anything in it is trusted. A
/// click token carries the exact URL it may redirect to: Nudge never redirects anywhere a token does not name (no open
/// redirect). Tokens do not expire (mail is opened long after it is sent); their contents are signed, not encrypted.
/// </summary>
public sealed partial class EmailTracking
{
    /// <summary>Path of the open pixel below Nudge's public address: e/o/{token}.</summary>
    public const string OpenPath = "e/o/";

    /// <summary>Path of a click link below Nudge's public address: e/c/{token}.</summary>
    public const string ClickPath = "e/c/";

    /// <summary>Longest link rewritten, in UTF-8 bytes; longer links are left as they are: 2,048.</summary>
    public const int MaxUrlBytes = 2048;

    /// <summary>A 1x1 transparent GIF (43 bytes): what the open pixel answers, whatever the token.</summary>
    public static readonly byte[] Pixel = Convert.FromBase64String("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7");

    private const int MaxMessageIdBytes = UnsubscribeLinks.MaxPartBytes;
    private static readonly int MaxTokenChars = SignedPairToken.MaxChars(MaxMessageIdBytes, MaxUrlBytes);

    private static readonly byte[] OpenPurpose = "nudge/email-open"u8.ToArray();
    private static readonly byte[] ClickPurpose = "nudge/email-click"u8.ToArray();
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly SignedPairToken _tokens;

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="secretKey"/> is shorter than 32 bytes.</summary>
    public EmailTracking(byte[] secretKey)
    {
        ArgumentNullException.ThrowIfNull(secretKey);
        if (secretKey.Length < 32)
        {
            throw new ArgumentException("The link signing key must be at least 32 bytes.", nameof(secretKey));
        }

        _tokens = new SignedPairToken(secretKey);
    }

    /// <summary>The open pixel's token for a message. Throws <see cref="ArgumentException"/> for an empty or over-long id.</summary>
    public string OpenToken(string messageId) => Create(OpenPurpose, messageId, "");

    /// <summary>A click link's token for a message and the absolute http(s) URL it redirects to.</summary>
    /// <exception cref="ArgumentException">The id is empty or too long, or the URL is not absolute http(s) or is over <see cref="MaxUrlBytes"/>.</exception>
    public string ClickToken(string messageId, string url)
    {
        if (!IsTrackable(url))
        {
            throw new ArgumentException("The URL must be an absolute http(s) URL of at most 2048 bytes.", nameof(url));
        }

        return Create(ClickPurpose, messageId, url);
    }

    /// <summary>Reads an open token made with the same key; false (never an exception) for anything else.</summary>
    public bool TryReadOpen(string? token, out string messageId) => TryRead(OpenPurpose, token, out messageId, out _);

    /// <summary>Reads a click token made with the same key; false (never an exception) for anything else.</summary>
    public bool TryReadClick(string? token, out string messageId, out string url) =>
        TryRead(ClickPurpose, token, out messageId, out url) && IsTrackable(url);

    /// <summary>
    /// The email's HTML with every http(s) link of an <c>&lt;a href&gt;</c> replaced by its signed click link and a 1x1 open
    /// pixel added before <c>&lt;/body&gt;</c> (or at the end), both below <paramref name="baseUrl"/>. Other links (mailto:,
    /// tel:, anchors, Nudge's own /u/ and /e/ links) are left alone.
    /// </summary>
    public string Rewrite(string html, string messageId, Uri baseUrl)
    {
        ArgumentNullException.ThrowIfNull(html);
        var root = baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl.AbsoluteUri : baseUrl.AbsoluteUri + "/";
        var rewritten = Href().Replace(html, match =>
        {
            var raw = match.Groups["dq"].Success ? match.Groups["dq"].Value : match.Groups["sq"].Value;
            var url = WebUtility.HtmlDecode(raw).Trim();
            if (!IsTrackable(url) || url.StartsWith(root, StringComparison.OrdinalIgnoreCase))
            {
                return match.Value;
            }

            return match.Groups["start"].Value + "\"" + WebUtility.HtmlEncode(root + ClickPath + ClickToken(messageId, url)) + "\"";
        });
        var pixel = $"<img src=\"{WebUtility.HtmlEncode(root + OpenPath + OpenToken(messageId))}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\">";
        var body = rewritten.LastIndexOf("</body", StringComparison.OrdinalIgnoreCase);
        return body < 0 ? rewritten + pixel : rewritten[..body] + pixel + rewritten[body..];
    }

    private static bool IsTrackable(string url) =>
        Encoding.UTF8.GetByteCount(url) <= MaxUrlBytes && Uri.TryCreate(url, UriKind.Absolute, out var u)
        && (u.Scheme == Uri.UriSchemeHttps || u.Scheme == Uri.UriSchemeHttp) && !url.AsSpan().ContainsAny('\r', '\n', '\0');

    private string Create(byte[] purpose, string messageId, string url)
    {
        ArgumentException.ThrowIfNullOrEmpty(messageId);
        var id = StrictUtf8.GetBytes(messageId);
        if (id.Length > MaxMessageIdBytes)
        {
            throw new ArgumentException($"The message id is over {MaxMessageIdBytes} UTF-8 bytes.", nameof(messageId));
        }

        return _tokens.Create(purpose, id, StrictUtf8.GetBytes(url));
    }

    private bool TryRead(byte[] purpose, string? token, out string messageId, out string url) =>
        _tokens.TryRead(purpose, token, MaxTokenChars, out messageId, out url);

    [GeneratedRegex("""(?<start><a\b[^>]*?\bhref\s*=\s*)(?:"(?<dq>[^"]*)"|'(?<sq>[^']*)')""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Href();
}
