using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using MimeKit;

namespace Nudge.Delivery.Email;

/// <summary>
/// One <see cref="EmailRequest"/> checked and normalised for the wire, shared by both providers so SMTP and SendGrid
/// refuse the same requests with the same outcome.
/// </summary>
internal sealed record EmailContent(
    MailboxAddress To,
    string Subject,
    string Text,
    string? Html,
    string MessageIdHeader,
    IReadOnlyList<KeyValuePair<string, string>> Headers)
{
    /// <summary>Header carrying Nudge's message id, so bounces and replies can be matched without parsing Message-ID.</summary>
    public const string DeliveryIdHeader = "X-Nudge-Delivery-Id";

    // Headers the providers write themselves; a request header with one of these names is a caller bug. SendGrid refuses
    // the same list (plus its own x-sg-* ones) with a 400.
    private static readonly HashSet<string> Reserved = new(StringComparer.OrdinalIgnoreCase)
    {
        "From", "To", "Cc", "Bcc", "Subject", "Reply-To", "Sender", "Date", "Message-ID", "MIME-Version",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-ID", "Return-Path", "Received",
        "DKIM-Signature", "X-SG-ID", "X-SG-EID", DeliveryIdHeader,
    };

    /// <summary>
    /// The request checked for the wire, or a <see cref="OutcomeKind.Permanent"/> outcome saying why it cannot be sent
    /// (bad recipient, no body, reserved or malformed header). Throws <see cref="ArgumentException"/> when MessageId is empty.
    /// </summary>
    public static EmailContent? From(EmailRequest request, out SendOutcome? refused)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrWhiteSpace(request.MessageId, nameof(request));
        refused = null;

        var to = EmailAddresses.Parse(request.To);
        if (to is null)
        {
            refused = SendOutcome.Permanent(DeliveryReason.InvalidRecipient, "invalid_address");
            return null;
        }

        if (string.IsNullOrWhiteSpace(request.Html) && string.IsNullOrWhiteSpace(request.Text))
        {
            refused = SendOutcome.Permanent(DeliveryReason.ProviderRejected, "empty_body");
            return null;
        }

        // A subject is one header line: folding a newline into it would let content write headers.
        var subject = (request.Subject ?? "").ReplaceLineEndings(" ");

        var headers = new List<KeyValuePair<string, string>>();
        foreach (var (name, value) in request.Headers ?? new Dictionary<string, string>())
        {
            if (!IsFieldName(name))
            {
                refused = SendOutcome.Permanent(DeliveryReason.ProviderRejected, "invalid_header_name");
                return null;
            }

            if (Reserved.Contains(name))
            {
                refused = SendOutcome.Permanent(DeliveryReason.ProviderRejected, "reserved_header:" + name);
                return null;
            }

            if (value is null || value.AsSpan().ContainsAny('\r', '\n', '\0'))
            {
                refused = SendOutcome.Permanent(DeliveryReason.ProviderRejected, "invalid_header_value:" + name);
                return null;
            }

            headers.Add(new(name, value));
        }

        var html = string.IsNullOrWhiteSpace(request.Html) ? null : request.Html;
        var text = string.IsNullOrWhiteSpace(request.Text) ? HtmlToText.Convert(html!) : request.Text!;
        return new EmailContent(to, subject, text, html, MessageIdFor(request.MessageId), headers);
    }

    /// <summary>
    /// The Message-ID (without angle brackets) for a Nudge message id: "{id}@nudge" when the id is safe in a msg-id
    /// (ULIDs, GUIDs), otherwise a hash of it. The same id always gives the same Message-ID, so a retried send is
    /// recognisably the same message.
    /// </summary>
    public static string MessageIdFor(string messageId)
    {
        var safe = messageId.Length <= 128
            && !messageId.StartsWith('.') && !messageId.EndsWith('.') && !messageId.Contains("..", StringComparison.Ordinal)
            && messageId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
        return (safe ? messageId : "h" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(messageId)))[..32]) + "@nudge";
    }

    // RFC 5322 field-name: printable US-ASCII except colon.
    private static bool IsFieldName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 76 && name.All(c => c is > ' ' and < '\x7f' and not ':');
}

/// <summary>
/// A plain-text rendering of email HTML for the text/plain alternative: drops head, script and style, keeps links as
/// "text (url)", turns blocks and line breaks into new lines and list items into "- " lines, decodes entities.
/// </summary>
internal static partial class HtmlToText
{
    public static string Convert(string html)
    {
        try
        {
            var s = Invisible().Replace(html, " ");
            s = Whitespace().Replace(s, " ");
            s = Anchor().Replace(s, LinkText);
            s = LineBreak().Replace(s, "\n");
            s = ListItem().Replace(s, "\n- ");
            s = BlockEnd().Replace(s, "\n\n");
            s = Cell().Replace(s, " ");
            s = Tag().Replace(s, "");
            s = WebUtility.HtmlDecode(s).Replace('\u00a0', ' ');
            return Tidy(s);
        }
        catch (RegexMatchTimeoutException)
        {
            // Pathological markup: fall back to dropping everything between angle brackets.
            var sb = new StringBuilder(html.Length);
            var inTag = false;
            foreach (var c in html)
            {
                if (c == '<')
                {
                    inTag = true;
                }
                else if (c == '>')
                {
                    inTag = false;
                    sb.Append(' ');
                }
                else if (!inTag)
                {
                    sb.Append(c);
                }
            }

            return Tidy(WebUtility.HtmlDecode(Whitespace().Replace(sb.ToString(), " ")));
        }
    }

    private static string LinkText(Match m)
    {
        var href = WebUtility.HtmlDecode(m.Groups["dq"].Success ? m.Groups["dq"].Value : m.Groups["sq"].Success ? m.Groups["sq"].Value : m.Groups["bare"].Value).Trim();
        var inner = m.Groups["inner"].Value;
        var shown = WebUtility.HtmlDecode(Tag().Replace(inner, "")).Trim();
        if (href.Length == 0 || href.StartsWith('#') || href.StartsWith("javascript:", StringComparison.OrdinalIgnoreCase)
            || string.Equals(shown, href, StringComparison.OrdinalIgnoreCase)
            || (href.StartsWith("mailto:", StringComparison.OrdinalIgnoreCase) && string.Equals(shown, href[7..], StringComparison.OrdinalIgnoreCase)))
        {
            return inner;
        }

        // The href is HTML-decoded above and re-encoded here so the later entity decode gives it back unchanged.
        return shown.Length == 0 ? WebUtility.HtmlEncode(href) : inner + " (" + WebUtility.HtmlEncode(href) + ")";
    }

    private static string Tidy(string s)
    {
        var lines = s.Split('\n').Select(l => Spaces().Replace(l, " ").Trim());
        var joined = string.Join('\n', lines);
        return BlankLines().Replace(joined, "\n\n").Trim();
    }

    [GeneratedRegex(@"<!--.*?-->|<(head|script|style|title)\b[^>]*>.*?</\1\s*>", RegexOptions.IgnoreCase | RegexOptions.Singleline, 1000)]
    private static partial Regex Invisible();

    [GeneratedRegex(@"\s+", RegexOptions.None, 1000)]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"<a\b[^>]*?\bhref\s*=\s*(?:""(?<dq>[^""]*)""|'(?<sq>[^']*)'|(?<bare>[^\s>]+))[^>]*>(?<inner>.*?)</a\s*>", RegexOptions.IgnoreCase | RegexOptions.Singleline, 1000)]
    private static partial Regex Anchor();

    [GeneratedRegex(@"<br\b[^>]*>", RegexOptions.IgnoreCase, 1000)]
    private static partial Regex LineBreak();

    [GeneratedRegex(@"<li\b[^>]*>", RegexOptions.IgnoreCase, 1000)]
    private static partial Regex ListItem();

    [GeneratedRegex(@"</?(p|div|h[1-6]|tr|table|ul|ol|blockquote|section|article|header|footer|hr)\b[^>]*>", RegexOptions.IgnoreCase, 1000)]
    private static partial Regex BlockEnd();

    [GeneratedRegex(@"</t[dh]\s*>", RegexOptions.IgnoreCase, 1000)]
    private static partial Regex Cell();

    [GeneratedRegex(@"<[^>]*>", RegexOptions.None, 1000)]
    private static partial Regex Tag();

    [GeneratedRegex(@"[ \t]+", RegexOptions.None, 1000)]
    private static partial Regex Spaces();

    [GeneratedRegex(@"\n{3,}", RegexOptions.None, 1000)]
    private static partial Regex BlankLines();
}
