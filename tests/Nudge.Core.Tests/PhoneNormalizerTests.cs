using Nudge.Core.Text;

namespace Nudge.Core.Tests;

public class PhoneNormalizerTests
{
    private readonly PhoneNormalizer us = new("US");

    [Theory]
    [InlineData("(415) 555-2671", "+14155552671")]
    [InlineData("415-555-2671", "+14155552671")]
    [InlineData("4155552671", "+14155552671")]
    [InlineData("1 415 555 2671", "+14155552671")]
    [InlineData("+1 (415) 555-2671", "+14155552671")]
    [InlineData("+1 650-253-0000", "+16502530000")]
    [InlineData("+44 20 7031 3000", "+442070313000")]
    [InlineData("+33 1 42 68 53 00", "+33142685300")]
    public void ToE164_ValidNumber_Normalized(string raw, string expected)
    {
        var e164 = us.ToE164(raw, out var problem);

        Assert.Equal(expected, e164);
        Assert.Null(problem);
    }

    [Fact]
    public void ToE164_NationalNumber_UsesDefaultRegion()
    {
        var gb = new PhoneNormalizer("GB");

        Assert.Equal("+442070313000", gb.ToE164("020 7031 3000", out _));
        Assert.Equal("GB", gb.DefaultRegion);
    }

    [Theory]
    [InlineData("12345")]
    [InlineData("555-0000")]
    [InlineData("+1 000 000 0000")]
    public void ToE164_NotValidNumber_NullWithReason(string raw)
    {
        var e164 = us.ToE164(raw, out var problem);

        Assert.Null(e164);
        Assert.Equal($"'{raw}' is not a valid phone number (read with default region US)", problem);
    }

    [Theory]
    [InlineData("not a phone")]
    [InlineData("")]
    public void ToE164_NotANumber_NullWithParseError(string raw)
    {
        var e164 = us.ToE164(raw, out var problem);

        Assert.Null(e164);
        Assert.StartsWith($"'{raw}' is not a phone number: ", problem, StringComparison.Ordinal);
    }
}
