using System.Text.Json.Nodes;
using Nudge.Core.Profiles;

namespace Nudge.Core.Tests;

public class IdentifierTests
{
    [Theory]
    [InlineData("cio_abc123", IdentifierKind.CioId, "abc123")]
    [InlineData("cio_a@b.co", IdentifierKind.CioId, "a@b.co")]
    [InlineData("Bob@Example.COM", IdentifierKind.Email, "bob@example.com")]
    [InlineData("u-42", IdentifierKind.Id, "u-42")]
    [InlineData("12345", IdentifierKind.Id, "12345")]
    [InlineData("cio_", IdentifierKind.Id, "cio_")]
    [InlineData("CIO_abc", IdentifierKind.Id, "CIO_abc")]
    [InlineData("Mixed-Case-Id", IdentifierKind.Id, "Mixed-Case-Id")]
    public void FromPath_ClassifiesLikeCustomerIo(string path, IdentifierKind kind, string value)
    {
        var id = Identifier.FromPath(path);

        Assert.Equal(kind, id.Kind);
        Assert.Equal(value, id.Value);
    }

    [Fact]
    public void Email_LowerCases()
    {
        Assert.Equal(new Identifier(IdentifierKind.Email, "ann@x.io"), Identifier.Email("Ann@X.IO"));
    }

    [Fact]
    public void ToString_ShowsKindAndValue()
    {
        Assert.Equal("CioId:abc", Identifier.FromPath("cio_abc").ToString());
    }

    [Fact]
    public void Equality_IsByKindAndValue()
    {
        Assert.Equal(new Identifier(IdentifierKind.Id, "x"), new Identifier(IdentifierKind.Id, "x"));
        Assert.NotEqual(new Identifier(IdentifierKind.Id, "x"), new Identifier(IdentifierKind.AnonymousId, "x"));
    }

    [Theory]
    [InlineData("ios", "ios")]
    [InlineData("iOS", "ios")]
    [InlineData(" IOS ", "ios")]
    [InlineData("ipados", "ios")]
    [InlineData("APNS", "ios")]
    [InlineData("android", "android")]
    [InlineData("Android", "android")]
    [InlineData("fcm", "android")]
    public void PlatformsNormalize_KnownPlatform_Canonical(string raw, string expected)
    {
        Assert.Equal(expected, Platforms.Normalize(raw));
    }

    [Theory]
    [InlineData("windows")]
    [InlineData("web")]
    [InlineData("")]
    [InlineData("gcm ")]
    [InlineData(null)]
    public void PlatformsNormalize_Unknown_Null(string? raw)
    {
        Assert.Null(Platforms.Normalize(raw));
    }

    private static Device DeviceWith(string attributesJson) => new()
    {
        Token = "0123456789abcdef",
        ProfileKey = "k",
        Platform = Platforms.Ios,
        Attributes = JsonNode.Parse(attributesJson)!.AsObject(),
    };

    [Theory]
    [InlineData("""{"push_enabled":"false"}""", false)]
    [InlineData("""{"push_enabled":"FALSE"}""", false)]
    [InlineData("""{"push_enabled":false}""", false)]
    [InlineData("""{"push_enabled":"true"}""", true)]
    [InlineData("""{"push_enabled":true}""", true)]
    [InlineData("""{"push_enabled":null}""", true)]
    [InlineData("""{"push_enabled":0}""", true)]
    [InlineData("{}", true)]
    public void PushEnabled_ReadsPushEnabledAttribute(string attributes, bool expected)
    {
        Assert.Equal(expected, DeviceWith(attributes).PushEnabled);
    }

    [Fact]
    public void PushEnabled_FalseSetInCode_False()
    {
        var d = DeviceWith("{}");
        d.Attributes["push_enabled"] = false;

        Assert.False(d.PushEnabled);
    }

    [Fact]
    public void TokenTail_LongToken_LastEightWithEllipsis()
    {
        Assert.Equal("…89abcdef", DeviceWith("{}").TokenTail);
    }

    [Theory]
    [InlineData("abcdefgh", "abcdefgh")]
    [InlineData("abc", "abc")]
    [InlineData("abcdefghi", "…bcdefghi")]
    [InlineData("", "")]
    public void TokenTailOf_ShortTokensShownWhole(string token, string expected)
    {
        Assert.Equal(expected, Device.TokenTailOf(token));
    }
}
