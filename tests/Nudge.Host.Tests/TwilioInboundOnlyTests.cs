using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Delivery.Sandbox;
using Nudge.Host.Hosting;
using Nudge.Host.Webhooks;
using Nudge.Pipeline;

namespace Nudge.Host.Tests;

/// <summary>
/// Issue 15: Nudge:Providers:Twilio:AuthToken alone is all the inbound webhooks (STOP / START / HELP) need. It must not
/// stop start-up; the webhooks verify with it, and outbound SMS stays in the sandbox until Twilio's sending settings are
/// complete (a partial set is an error: ConfigurationErrorTests).
/// </summary>
public sealed class TwilioInboundOnlyTests : IAsyncLifetime
{
    private const string PublicBase = "https://nudge.example.com";
    private const string AuthToken = "inbound-only-auth-token-0123456789";

    private readonly FakeTimeProvider _clock = new(JourneyServer.Monday14h);
    private JourneyServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await JourneyServer.StartAsync(null, _clock, null, null, $"--Nudge:Providers:Twilio:AuthToken={AuthToken}", $"--Nudge:PublicBaseUrl={PublicBase}");

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
    }

    [Fact]
    public async Task AuthTokenAlone_Starts_SignedStopChangesConsent_SmsGoesToTheSandbox()
    {
        var channels = _server.App.Services.GetRequiredService<SendStage>().Channels;
        Assert.IsType<SandboxProvider>(channels.Sms);
        Assert.Equal("push iOS -> sandbox, push Android -> sandbox, SMS -> sandbox (Twilio inbound webhooks on), email -> sandbox",
            DeliverySetup.Describe(channels, _server.App.Services.GetRequiredService<WebhookSettings>().TwilioAuthToken is not null));

        // An SMS the payment_failed journey sends goes out through the sandbox.
        await _server.SendAsync(HttpMethod.Put, "/api/v1/customers/inbound-a", """{"email":"a@example.com","phone":"+14155550131","sms_consent":true}""");
        await _server.SendAsync(HttpMethod.Post, "/api/v1/customers/inbound-a/events", """{"name":"payment_failed","data":{"order_id":"o-1"}}""");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(6));
        var key = (await _server.Store.ResolveAsync(new Identifier(IdentifierKind.Id, "inbound-a")))!;
        var sms = Assert.Single(await _server.Store.GetMessagesAsync(key, 10), m => m.Channel == Channel.Sms);
        Assert.Equal(MessageStatus.Delivered, sms.Status);
        Assert.Equal(SandboxProvider.ProviderName, Assert.Single(sms.Deliveries).Provider);

        // A STOP signed with another key changes nothing; one signed with the auth token opts the number out.
        _clock.Advance(TimeSpan.FromSeconds(1));
        var form = new Dictionary<string, string>
        {
            ["AccountSid"] = "AC0123456789abcdef0123456789abcdef",
            ["MessageSid"] = "SM00000000000000000000000000000131",
            ["From"] = "+14155550131",
            ["To"] = "+14155550000",
            ["Body"] = "STOP",
            ["NumMedia"] = "0",
            ["SmsStatus"] = "received",
        };
        using var forged = await PostInboundAsync(form, "some-other-auth-token-000000000000");
        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        Assert.True((await _server.Store.GetProfileAsync(key))!.Consent.SmsConsent);

        using var stop = await PostInboundAsync(form, AuthToken);
        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.Equal(HttpStatusCode.OK, stop.StatusCode);
        var profile = (await _server.Store.GetProfileAsync(key))!;
        Assert.False(profile.Consent.SmsConsent);
        Assert.Equal("twilio:STOP", profile.ConsentHistory.Last().Source);
    }

    [Fact]
    public async Task AuthTokenAlone_TheProcessStarts_AndItsBannerSaysWhatSmsDoes()
    {
        var dir = Directory.CreateTempSubdirectory("nudge-inbound-").FullName;
        try
        {
            await using var p = await NudgeProcess.StartAsync(dir, "--Nudge:Providers:Twilio:AuthToken=abc");

            Assert.True(await p.WaitForOutputAsync("SMS -> sandbox (Twilio inbound webhooks on)"), p.Output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private async Task<HttpResponseMessage> PostInboundAsync(Dictionary<string, string> form, string signingToken)
    {
        using var anonymous = new HttpClient();
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Admin.BaseAddress!, "/webhooks/twilio/sms")) { Content = new FormUrlEncodedContent(form) };
        request.Headers.Add("X-Twilio-Signature", WebhookSigning.Twilio(signingToken, PublicBase + "/webhooks/twilio/sms", form));
        return await anonymous.SendAsync(request);
    }
}
