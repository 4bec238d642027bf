using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Delivery.Email;
using Nudge.Host.Hosting;

namespace Nudge.Host.Tests;

/// <summary>Provider settings at start-up: absent or empty sections keep the sandbox; wrong ones stop start-up, naming settings, never secrets.</summary>
public class DeliverySetupTests
{
    private static readonly UnsubscribeLinks Links = new(Encoding.UTF8.GetBytes(new string('k', 64)));

    private static (Nudge.Delivery.ChannelSet Channels, Nudge.Pipeline.SendOptions Options) Load(Dictionary<string, string?> settings, NudgeOptions? nudge = null) =>
        DeliverySetup.Load(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), nudge ?? new NudgeOptions(), new FakeTimeProvider(),
            Links, () => new Uri("http://127.0.0.1:7071"));

    [Fact]
    public void NoSettings_OrEmptyPlaceholders_EveryChannelInTheSandbox()
    {
        var (c, _) = Load(new() { ["Nudge:Providers:Apns:KeyId"] = "", ["Nudge:Providers:Twilio:AuthToken"] = "" });

        Assert.Equal("push iOS -> sandbox, push Android -> sandbox, SMS -> sandbox, email -> sandbox", DeliverySetup.Describe(c));
    }

    [Fact]
    public void ReportsDelivery_Sandbox_TwilioWithAPublicAddress_SendGridWithItsWebhookKey_NeverSmtp()
    {
        Dictionary<string, string?> Twilio() => new()
        {
            ["Nudge:Providers:Twilio:AccountSid"] = "AC0123456789abcdef0123456789abcdef",
            ["Nudge:Providers:Twilio:AuthToken"] = "token-0123456789",
            ["Nudge:Providers:Twilio:MessagingServiceSid"] = "MG0123456789ABCDEF0123456789ABCDEF",
        };
        Dictionary<string, string?> Email(string provider, string? webhookKey = null) => new()
        {
            ["Nudge:Providers:Email:Provider"] = provider,
            ["Nudge:Providers:Email:From"] = "shop@example.com",
            ["Nudge:Providers:Email:Smtp:Host"] = "127.0.0.1",
            ["Nudge:Providers:Email:SendGrid:ApiKey"] = "SG.key",
            ["Nudge:Providers:Email:SendGrid:WebhookPublicKey"] = webhookKey,
        };

        var (sandbox, _) = Load([]);
        Assert.True(sandbox.Ios.ReportsDelivery && sandbox.Android.ReportsDelivery && sandbox.Sms.ReportsDelivery && sandbox.Email.ReportsDelivery);

        // Twilio reports through the status callback, which each SMS carries only when Nudge has a public address.
        Assert.False(Load(Twilio()).Channels.Sms.ReportsDelivery);
        Assert.True(Load(Twilio(), new NudgeOptions { PublicBaseUrl = "https://nudge.example.com" }).Channels.Sms.ReportsDelivery);
        Assert.True(Load(new(Twilio()) { ["Nudge:Providers:Twilio:StatusCallbackBaseUrl"] = "https://nudge.example.com" }).Channels.Sms.ReportsDelivery);

        Assert.False(Load(Email("smtp")).Channels.Email.ReportsDelivery);
        Assert.False(Load(Email("sendgrid")).Channels.Email.ReportsDelivery);
        Assert.True(Load(Email("sendgrid", webhookKey: "MFkw")).Channels.Email.ReportsDelivery);
    }

    [Fact]
    public void WebhookSecretsAlone_KeepSendingInTheSandbox_PartialTwilioSendingSettingsNameWhatIsMissing()
    {
        var (c, _) = Load(new() { ["Nudge:Providers:Twilio:AuthToken"] = "inbound-token", ["Nudge:Providers:Email:SendGrid:WebhookPublicKey"] = "key" });
        Assert.Equal("push iOS -> sandbox, push Android -> sandbox, SMS -> sandbox (Twilio inbound webhooks on), email -> sandbox (SendGrid event webhook on)",
            DeliverySetup.Describe(c, twilioInbound: true, sendGridEvents: true));

        var e = Assert.Throws<NudgeConfigurationException>(() => Load(new()
        {
            ["Nudge:Providers:Twilio:AuthToken"] = "inbound-token",
            ["Nudge:Providers:Twilio:AccountSid"] = "AC0123456789abcdef0123456789abcdef",
        }));
        Assert.Equal(["Nudge:Providers:Twilio:MessagingServiceSid or Nudge:Providers:Twilio:From is required (set exactly one)"], e.Problems);
    }

    [Fact]
    public void WrongSettings_StopStartUpListingEveryProblem_WithoutTheSecrets()
    {
        var e = Assert.Throws<NudgeConfigurationException>(() => Load(new()
        {
            ["Nudge:Providers:Twilio:AccountSid"] = "not-a-sid",
            ["Nudge:Providers:Twilio:AuthToken"] = "super-secret-token-value",
            ["Nudge:Providers:Apns:KeyId"] = "KEY1234567",
            ["Nudge:Providers:Apns:PrivateKey"] = "-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----",
            ["Nudge:Providers:Email:Provider"] = "smtp",
            ["Nudge:Providers:Email:SendGrid:ApiKey"] = "SG.secret-api-key",
        }));

        Assert.Contains("Nudge:Providers:Twilio:AccountSid", e.Message, StringComparison.Ordinal);
        Assert.Contains("Nudge:Providers:Apns:TeamId", e.Message, StringComparison.Ordinal);
        Assert.Contains("Nudge:Providers:Email:From", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("super-secret-token-value", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-key-material", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("SG.secret-api-key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadPublicBaseUrl_StopsStartUp()
    {
        var e = Assert.Throws<NudgeConfigurationException>(() => Load([], new NudgeOptions { PublicBaseUrl = "nudge.example.com" }));

        Assert.Contains("Nudge:PublicBaseUrl", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmailHeaders_MarketingGetsOneClickUnsubscribe_TransactionalNone()
    {
        var (_, o) = Load([], new NudgeOptions { PublicBaseUrl = "https://nudge.example.com/base" });
        Message Mail(bool transactional) => new()
        {
            Id = "m1",
            ProfileKey = "k1",
            InstanceId = "i",
            JourneyId = "j",
            StepId = "s",
            Channel = Channel.Email,
            Status = MessageStatus.Drafted,
            Transactional = transactional,
        };

        var marketing = o.EmailHeaders!(Mail(false));
        Assert.Equal("List-Unsubscribe=One-Click", marketing["List-Unsubscribe-Post"]);
        var url = marketing["List-Unsubscribe"].Trim('<', '>');
        Assert.StartsWith("https://nudge.example.com/base/u/", url, StringComparison.Ordinal);
        Assert.True(Links.TryRead(url[(url.LastIndexOf('/') + 1)..], out var key, out var id));
        Assert.Equal(("k1", "m1"), (key, id));
        Assert.Empty(o.EmailHeaders!(Mail(true)));
    }
}
