using System.Security.Cryptography;
using System.Text;
using Nudge.Delivery.Twilio;

namespace Nudge.Delivery.Tests.Twilio;

public class TwilioSignatureTests
{
    // Twilio's worked example (twilio.com/docs/usage/security): auth token 12345, this URL, these POST params.
    private const string DocsToken = "12345";
    private const string DocsUrl = "https://mycompany.com/myapp.php?foo=1&bar=2";

    private static readonly KeyValuePair<string, string>[] DocsParams =
    [
        new("To", "+18005551212"),
        new("From", "+14158675310"),
        new("Digits", "1234"),
        new("CallSid", "CA1234567890ABCDE"),
        new("Caller", "+14158675310"),
    ];

    [Fact]
    public void Independent_TwilioDocsExample_MatchesPublishedSignature()
    {
        Assert.Equal("GvWf1cFY/Q7PnoempGyD5oXAezc=", Independent(DocsToken, DocsUrl, DocsParams));
    }

    [Fact]
    public void Verify_TwilioCsharpLibraryVector_MatchesItsTest()
    {
        // twilio-csharp test/Twilio.Test/Security/RequestValidatorTest.cs: the same example with ...09 numbers.
        var p = new Dictionary<string, string>
        {
            ["CallSid"] = "CA1234567890ABCDE",
            ["From"] = "+14158675309",
            ["Digits"] = "1234",
            ["To"] = "+18005551212",
            ["Caller"] = "+14158675309",
        };

        Assert.Equal("RSOYDt4T1cUTdK1PDd93/VVr8B8=", Independent(DocsToken, DocsUrl, p));
        Assert.True(TwilioSignature.Verify(DocsToken, DocsUrl, p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    [Fact]
    public void Verify_InboundSmsForm_AcceptsTheIndependentSignature_RejectsAnyChange()
    {
        var url = "https://nudge.example.com/webhooks/twilio/status?message_id=01JD%2Fx&b=ü";
        var form = new KeyValuePair<string, string>[]
        {
            new("MessageStatus", "delivered"),
            new("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            new("Body", "Grüße 🎉 & STOP"),
            new("ErrorCode", ""),
            new("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            new("MediaUrl1", "https://b.example/2"),
            new("MediaUrl0", "https://a.example/1"),
            new("aLower", "sorts after upper case"),
        };

        var signature = Independent("token-xyz", url, form);
        Assert.True(TwilioSignature.Verify("token-xyz", url, form, signature));
        Assert.False(TwilioSignature.Verify("token-xyz", url, form.Select(p => p.Key == "Body" ? new KeyValuePair<string, string>("Body", "Grüße 🎉 & START") : p), signature));
        Assert.False(TwilioSignature.Verify("token-xyz", url.Replace("01JD%2Fx", "01JD%2Fy", StringComparison.Ordinal), form, signature));

        // A name given twice is never Twilio's (media are MediaUrl0, MediaUrl1, ...): rejected whatever the signature.
        var repeated = form.Append(new("MediaUrl0", "https://c.example/3")).ToArray();
        Assert.False(TwilioSignature.Verify("token-xyz", url, repeated, Independent("token-xyz", url, repeated)));
    }

    [Fact]
    public void Verify_DocsExample_AcceptsOnlyTheUntamperedRequest()
    {
        const string sig = "GvWf1cFY/Q7PnoempGyD5oXAezc=";
        var tampered = DocsParams.Select(p => p.Key == "Digits" ? new KeyValuePair<string, string>("Digits", "9999") : p).ToArray();
        var extra = DocsParams.Append(new("Extra", "1")).ToArray();

        Assert.True(TwilioSignature.Verify(DocsToken, DocsUrl, DocsParams, sig));
        Assert.False(TwilioSignature.Verify(DocsToken, DocsUrl, tampered, sig));
        Assert.False(TwilioSignature.Verify(DocsToken, DocsUrl, extra, sig));
        Assert.False(TwilioSignature.Verify(DocsToken, DocsUrl, DocsParams[1..], sig));
        Assert.False(TwilioSignature.Verify(DocsToken, "https://mycompany.com/myapp.php?foo=1&bar=3", DocsParams, sig));
        Assert.False(TwilioSignature.Verify(DocsToken, "https://mycompany.com/myapp.php", DocsParams, sig));
        Assert.False(TwilioSignature.Verify(DocsToken, "http://mycompany.com/myapp.php?foo=1&bar=2", DocsParams, sig));
        Assert.False(TwilioSignature.Verify("12346", DocsUrl, DocsParams, sig));
        Assert.False(TwilioSignature.Verify(DocsToken, DocsUrl, DocsParams, "GvWf1cFY/Q7PnoempGyD5oXAezc"));
        Assert.False(TwilioSignature.Verify(DocsToken, DocsUrl, DocsParams, "HvWf1cFY/Q7PnoempGyD5oXAezc="));
        Assert.False(TwilioSignature.Verify(DocsToken, DocsUrl, DocsParams, ""));
        Assert.False(TwilioSignature.Verify(DocsToken, DocsUrl, DocsParams, null));
        Assert.False(TwilioSignature.Verify("", DocsUrl, DocsParams, sig));
    }

    [Fact]
    public void Verify_DefaultPortAddedOrRemoved_StillMatches()
    {
        const string sig = "GvWf1cFY/Q7PnoempGyD5oXAezc=";
        var withPort = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        var signedWithPort = Independent(DocsToken, withPort, DocsParams);

        Assert.True(TwilioSignature.Verify(DocsToken, withPort, DocsParams, sig));
        Assert.True(TwilioSignature.Verify(DocsToken, DocsUrl, DocsParams, signedWithPort));

        // Twilio's validator drops any port the URL names before it compares (so :8443 passes too); the signature still
        // binds the scheme, host, path and query.
        Assert.True(TwilioSignature.Verify(DocsToken, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", DocsParams, sig));
        Assert.False(TwilioSignature.Verify(DocsToken, "https://mycompany.org:443/myapp.php?foo=1&bar=2", DocsParams, sig));
        Assert.False(TwilioSignature.Verify(DocsToken, "https://mycompany.com:443/myapp.asp?foo=1&bar=2", DocsParams, sig));
    }

    [Fact]
    public void Verify_ParamOrder_DoesNotMatter()
    {
        var signature = Independent("t", "https://x.example/", DocsParams);
        Assert.True(TwilioSignature.Verify("t", "https://x.example/", DocsParams.Reverse(), signature));
    }

    /// <summary>
    /// A second reading of the algorithm, built differently on purpose: sort by UTF-16 code units with Array.Sort and
    /// string.CompareOrdinal, join with string.Concat, and HMAC through an HMACSHA1 instance.
    /// </summary>
    private static string Independent(string token, string url, IEnumerable<KeyValuePair<string, string>> form)
    {
        var pairs = form.Select(p => (p.Key, p.Value)).ToArray();
        Array.Sort(pairs, (a, b) =>
        {
            var byName = string.CompareOrdinal(a.Key, b.Key);
            return byName != 0 ? byName : string.CompareOrdinal(a.Value, b.Value);
        });
        var data = url + string.Concat(pairs.Select(p => p.Key + p.Value));
#pragma warning disable CA5350 // Twilio's protocol fixes HMAC-SHA1.
        using var hmac = new HMACSHA1(Encoding.UTF8.GetBytes(token));
#pragma warning restore CA5350
        return Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(data)));
    }
}
