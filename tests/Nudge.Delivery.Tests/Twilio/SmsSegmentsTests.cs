using Nudge.Delivery.Twilio;

namespace Nudge.Delivery.Tests.Twilio;

public class SmsSegmentsTests
{
    private static string Rep(string s, int n) => string.Concat(Enumerable.Repeat(s, n));

    public static TheoryData<string, string, SmsEncoding, int, int> Cases => new()
    {
        // name, body, encoding, characters, segments
        { "empty", "", SmsEncoding.Gsm7, 0, 1 },
        { "gsm 160", Rep("a", 160), SmsEncoding.Gsm7, 160, 1 },
        { "gsm 161", Rep("a", 161), SmsEncoding.Gsm7, 161, 2 },
        { "gsm 306 = 2 x 153", Rep("a", 306), SmsEncoding.Gsm7, 306, 2 },
        { "gsm 307", Rep("a", 307), SmsEncoding.Gsm7, 307, 3 },
        { "gsm 459 = 3 x 153", Rep("a", 459), SmsEncoding.Gsm7, 459, 3 },
        { "extension fills 160", Rep("a", 158) + "€", SmsEncoding.Gsm7, 160, 1 },
        { "extension tips over 160", Rep("a", 159) + "€", SmsEncoding.Gsm7, 161, 2 },
        { "every extension char counts 2", "^{}\\[~]|€", SmsEncoding.Gsm7, 18, 1 },
        { "form feed is an extension char", "\f", SmsEncoding.Gsm7, 2, 1 },
        // 152 + 2 + 152 = 306 fits 2 x 153 by division, but the escape pair cannot straddle parts 1 and 2.
        { "escape pair at a part boundary", Rep("a", 152) + "{" + Rep("a", 152), SmsEncoding.Gsm7, 306, 3 },
        { "escape pair exactly ending a part", Rep("a", 151) + "{" + Rep("a", 153), SmsEncoding.Gsm7, 306, 2 },
        { "gsm greek and accents", "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ ¤¡ÄÖÑÜ§¿äöñüà", SmsEncoding.Gsm7, 45, 1 },
        { "ucs2 70", Rep("ж", 70), SmsEncoding.Ucs2, 70, 1 },
        { "ucs2 71", Rep("ж", 71), SmsEncoding.Ucs2, 71, 2 },
        { "ucs2 134 = 2 x 67", Rep("ж", 134), SmsEncoding.Ucs2, 134, 2 },
        { "ucs2 135", Rep("ж", 135), SmsEncoding.Ucs2, 135, 3 },
        { "one emoji is 2 units", "🎉", SmsEncoding.Ucs2, 2, 1 },
        { "35 emoji fill 70", Rep("🎉", 35), SmsEncoding.Ucs2, 70, 1 },
        { "36 emoji", Rep("🎉", 36), SmsEncoding.Ucs2, 72, 2 },
        // 66 + 2 + 66 = 134 fits 2 x 67 by division, but the surrogate pair cannot straddle parts.
        { "surrogate pair at a part boundary", Rep("ж", 66) + "🎉" + Rep("ж", 66), SmsEncoding.Ucs2, 134, 3 },
        { "one non-gsm char switches all", Rep("a", 69) + "ç", SmsEncoding.Ucs2, 70, 1 },
        { "mixed gsm and emoji", "Hello 👋", SmsEncoding.Ucs2, 8, 1 },
        // In UCS-2 the extension chars are ordinary characters and count 1.
        { "extension chars under ucs2", "€{}" + "ж", SmsEncoding.Ucs2, 4, 1 },
        { "long mixed", Rep("a", 100) + "€" + "😀", SmsEncoding.Ucs2, 103, 2 },
        { "tab is not gsm", "a\tb", SmsEncoding.Ucs2, 3, 1 },
        { "backtick is not gsm", "`", SmsEncoding.Ucs2, 1, 1 },
        { "lower c cedilla is not gsm", "ç", SmsEncoding.Ucs2, 1, 1 },
        { "lone surrogate counts 1", "\ud83c", SmsEncoding.Ucs2, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Count_Body_GivesEncodingCharactersAndSegments(string name, string body, SmsEncoding encoding, int characters, int segments)
    {
        var count = SmsSegments.Count(body);

        Assert.True(count == new SmsSegmentCount(encoding, characters, segments), $"{name}: got {count}");
    }

    [Fact]
    public void BasicTable_IsTheFull127CharacterGsmAlphabet()
    {
        var basic = SmsSegments.BasicTable;

        Assert.Equal(127, basic.Length);
        Assert.Equal(127, basic.Distinct().Count());
        Assert.Equal("@£$¥èéùìòÇ\nØø\rÅå", basic[..16]);
        Assert.Equal(" !\"#¤%&'()*+,-./0123456789:;<=>?", basic[31..63]);
        Assert.Equal("¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà", basic[63..]);
        Assert.All(basic, c => Assert.Equal(new SmsSegmentCount(SmsEncoding.Gsm7, 1, 1), SmsSegments.Count(c.ToString())));
    }

    [Fact]
    public void ExtensionTable_EachCharCostsTwoSeptets()
    {
        Assert.All(SmsSegments.ExtensionTable, c => Assert.Equal(new SmsSegmentCount(SmsEncoding.Gsm7, 2, 1), SmsSegments.Count(c.ToString())));
    }

    [Fact]
    public void Count_EveryPrintableAsciiOutsideGsm_SwitchesToUcs2()
    {
        var ascii = Enumerable.Range(0x20, 0x5F).Select(i => (char)i);
        var notGsm = ascii.Where(c => !SmsSegments.BasicTable.Contains(c) && !SmsSegments.ExtensionTable.Contains(c)).ToArray();

        Assert.Equal("`", new string(notGsm));
        Assert.Equal(SmsEncoding.Ucs2, SmsSegments.Count("x`").Encoding);
    }

    [Fact]
    public void Count_Null_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => SmsSegments.Count(null!));
    }
}
