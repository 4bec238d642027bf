using Nudge.Delivery.Twilio;

namespace Nudge.Delivery.Tests.Twilio;

public class TwilioOptionsTests
{
    private const string Token = "f00dfacef00dfacef00dfacef00dface";

    private static TwilioOptions Valid(Action<TwilioOptions>? change = null)
    {
        var o = new TwilioOptions
        {
            AccountSid = "AC0123456789abcdef0123456789abcdef",
            AuthToken = Token,
            MessagingServiceSid = "MG0123456789ABCDEF0123456789ABCDEF",
        };
        change?.Invoke(o);
        return o;
    }

    [Fact]
    public void Defaults_AreDocumentedValues()
    {
        var o = new TwilioOptions();

        Assert.Equal("Nudge:Providers:Twilio", TwilioOptions.SectionName);
        Assert.Equal("https://api.twilio.com", o.BaseUrl);
        Assert.Equal(0.0079m, o.PricePerSegmentUsd);
        Assert.Equal(4, o.MaxSegmentsWarning);
        Assert.Equal(10, o.RequestTimeoutSeconds);
        Assert.Null(o.StatusCallbackBaseUrl);
    }

    [Fact]
    public void Validate_ServiceOrFromVariants_AreValid()
    {
        Assert.Empty(Valid().Validate());
        Assert.Empty(Valid(o => { o.MessagingServiceSid = null; o.From = "+14155550100"; }).Validate());
        Assert.Empty(Valid(o => { o.BaseUrl = "http://127.0.0.1:5123/"; o.StatusCallbackBaseUrl = "https://nudge.example.com/base"; }).Validate());
    }

    [Theory]
    [InlineData("AccountSid", "")]
    [InlineData("AccountSid", "AC123")]
    [InlineData("AccountSid", "XX0123456789abcdef0123456789abcdef")]
    [InlineData("AccountSid", "AC0123456789abcdef0123456789abcdeg")]
    [InlineData("AuthToken", "")]
    [InlineData("AuthToken", "has space")]
    [InlineData("MessagingServiceSid", "MG123")]
    [InlineData("From", "14155550100")]
    [InlineData("From", "+0123")]
    [InlineData("From", "+1234567890123456")]
    [InlineData("BaseUrl", "")]
    [InlineData("BaseUrl", "api.twilio.com")]
    [InlineData("BaseUrl", "ftp://api.twilio.com")]
    [InlineData("BaseUrl", "http://api.twilio.com")]
    [InlineData("BaseUrl", "https://api.twilio.com/?x=1")]
    [InlineData("StatusCallbackBaseUrl", "/relative")]
    [InlineData("StatusCallbackBaseUrl", "http://nudge.example.com")]
    [InlineData("PricePerSegmentUsd", "-0.01")]
    [InlineData("MaxSegmentsWarning", "0")]
    [InlineData("RequestTimeoutSeconds", "0")]
    [InlineData("RequestTimeoutSeconds", "301")]
    public void Validate_BadSetting_NamesIt(string setting, string value)
    {
        var o = Valid(o =>
        {
            switch (setting)
            {
                case "AccountSid": o.AccountSid = value; break;
                case "AuthToken": o.AuthToken = value; break;
                case "MessagingServiceSid": o.MessagingServiceSid = value; break;
                case "From": o.MessagingServiceSid = null; o.From = value; break;
                case "BaseUrl": o.BaseUrl = value; break;
                case "StatusCallbackBaseUrl": o.StatusCallbackBaseUrl = value; break;
                case "PricePerSegmentUsd": o.PricePerSegmentUsd = decimal.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
                case "MaxSegmentsWarning": o.MaxSegmentsWarning = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
                case "RequestTimeoutSeconds": o.RequestTimeoutSeconds = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
                default: throw new ArgumentOutOfRangeException(nameof(setting));
            }
        });

        var problem = Assert.Single(o.Validate());

        Assert.StartsWith($"Nudge:Providers:Twilio:{setting} ", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_NeitherOrBothSenders_IsOneProblem()
    {
        var neither = Valid(o => o.MessagingServiceSid = null).Validate();
        var both = Valid(o => o.From = "+14155550100").Validate();

        Assert.Contains("MessagingServiceSid", Assert.Single(neither), StringComparison.Ordinal);
        Assert.Contains("exactly one", Assert.Single(both), StringComparison.Ordinal);
    }

    [Fact]
    public void ToStringAndProblems_NeverShowTheAuthToken()
    {
        var o = Valid(o => { o.AuthToken = "secret with space"; o.AccountSid = "bad"; });

        Assert.Contains("AuthToken = ***", Valid().ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Token, Valid().ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("secret", o.ToString(), StringComparison.Ordinal);
        Assert.All(o.Validate(), p => Assert.DoesNotContain("secret", p, StringComparison.Ordinal));
    }

    [Fact]
    public void StatusCallbackFor_BuildsTheWebhookUrlWithEscapedMessageId()
    {
        var o = Valid(o => o.StatusCallbackBaseUrl = "https://nudge.example.com/");

        Assert.Equal(
            "https://nudge.example.com/webhooks/twilio/status?message_id=01JD%2Fa%20b",
            o.StatusCallbackFor("01JD/a b")!.AbsoluteUri);
        Assert.Null(Valid().StatusCallbackFor("m1"));
    }
}
