using System.Buffers;

namespace Nudge.Delivery.Twilio;

/// <summary>How an SMS body travels: the GSM 03.38 7-bit alphabet, or UCS-2 (UTF-16) when any character is outside it.</summary>
public enum SmsEncoding
{
    /// <summary>GSM 03.38 default alphabet plus its extension table: 160 septets single, 153 per part.</summary>
    Gsm7,

    /// <summary>UCS-2 / UTF-16: 70 code units single, 67 per part.</summary>
    Ucs2,
}

/// <summary>The result of <see cref="SmsSegments.Count"/>.</summary>
/// <param name="Encoding">The encoding the whole body needs.</param>
/// <param name="Characters">
/// GSM-7: septets (an extension-table character such as <c>€</c> or <c>{</c> counts 2).
/// UCS-2: UTF-16 code units (a character outside the BMP, such as most emoji, counts 2).
/// </param>
/// <param name="Segments">Parts the carrier bills for; at least 1, even for an empty body.</param>
public readonly record struct SmsSegmentCount(SmsEncoding Encoding, int Characters, int Segments);

/// <summary>
/// Counts SMS segments the way carriers bill them. Pure and thread-safe. A body that fits one part uses the single-part
/// limit (160 / 70); a longer body is packed part by part into the smaller concatenated limit (153 / 67, the rest is the
/// concatenation header), and an extension character's escape pair or a UTF-16 surrogate pair never straddles two parts.
/// </summary>
public static class SmsSegments
{
    /// <summary>GSM-7 septets in a single-part message.</summary>
    public const int Gsm7Single = 160;

    /// <summary>GSM-7 septets in each part of a concatenated message.</summary>
    public const int Gsm7PerPart = 153;

    /// <summary>UCS-2 code units in a single-part message.</summary>
    public const int Ucs2Single = 70;

    /// <summary>UCS-2 code units in each part of a concatenated message.</summary>
    public const int Ucs2PerPart = 67;

    /// <summary>
    /// The GSM 03.38 default alphabet in code order 0x00-0x7F, without 0x1B (ESC, the extension-table escape).
    /// 0x09 is the capital C cedilla as in the 3GPP TS 23.038 table.
    /// </summary>
    internal const string BasicTable =
        "@£$¥èéùìòÇ\nØø\rÅå" +
        "Δ_ΦΓΛΩΠΨΣΘΞ" + "ÆæßÉ" +
        " !\"#¤%&'()*+,-./" +
        "0123456789:;<=>?" +
        "¡ABCDEFGHIJKLMNO" +
        "PQRSTUVWXYZÄÖÑÜ§" +
        "¿abcdefghijklmnopqrstuvwxyzäöñüà";

    /// <summary>
    /// The GSM 03.38 extension table: each is sent as ESC + one septet, so it costs 2. Form feed (0x1B 0x0A) is part of
    /// the table alongside <c>^ { } \ [ ~ ] | €</c>.
    /// </summary>
    internal const string ExtensionTable = "\f^{}\\[~]|€";

    private static readonly SearchValues<char> Gsm = SearchValues.Create(BasicTable + ExtensionTable);
    private static readonly SearchValues<char> Extension = SearchValues.Create(ExtensionTable);

    /// <summary>Encoding, character count and segments for <paramref name="body"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    public static SmsSegmentCount Count(string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return IsGsm7(body) ? PackGsm7(body) : PackUcs2(body);
    }

    /// <summary>True when every character is in the GSM 03.38 basic or extension table.</summary>
    public static bool IsGsm7(ReadOnlySpan<char> body) => body.IndexOfAnyExcept(Gsm) < 0;

    private static SmsSegmentCount PackGsm7(string body)
    {
        var packer = new Packer(Gsm7PerPart);
        foreach (var c in body)
        {
            packer.Add(Extension.Contains(c) ? 2 : 1);
        }

        return packer.Result(SmsEncoding.Gsm7, Gsm7Single);
    }

    private static SmsSegmentCount PackUcs2(string body)
    {
        var packer = new Packer(Ucs2PerPart);
        for (var i = 0; i < body.Length; i++)
        {
            if (char.IsHighSurrogate(body[i]) && i + 1 < body.Length && char.IsLowSurrogate(body[i + 1]))
            {
                packer.Add(2);
                i++;
            }
            else
            {
                // A lone surrogate is malformed but still one code unit on the wire.
                packer.Add(1);
            }
        }

        return packer.Result(SmsEncoding.Ucs2, Ucs2Single);
    }

    private struct Packer(int perPart)
    {
        private int total;
        private int parts = 1;
        private int fill;

        public void Add(int cost)
        {
            total += cost;
            if (fill + cost > perPart)
            {
                parts++;
                fill = 0;
            }

            fill += cost;
        }

        public readonly SmsSegmentCount Result(SmsEncoding encoding, int single) =>
            new(encoding, total, total <= single ? 1 : parts);
    }
}
