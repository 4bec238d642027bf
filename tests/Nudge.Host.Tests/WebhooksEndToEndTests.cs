using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Delivery.Tests.Email;
using Nudge.Delivery.Tests.Twilio;
using Nudge.Host.Workers;

namespace Nudge.Host.Tests;

/// <summary>
/// The inbound webhooks end to end through the embedded server, with Twilio and SendGrid loopback peers for the sends.
/// Requests are signed by independent implementations (<see cref="WebhookSigning"/>) of Twilio's X-Twilio-Signature (HMAC-SHA1) and SendGrid's
/// signed Event Webhook (ECDSA P-256 over timestamp + body), not by Nudge's own code; bad signatures must change nothing.
/// </summary>
public sealed partial class WebhooksEndToEndTests : IClassFixture<SendGridPeer>, IAsyncLifetime, IDisposable
{
    private const string PublicBase = "https://nudge.example.com";

    private readonly SendGridPeer _sendGrid;
    private readonly ECDsa _sendGridKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly FakeTimeProvider _clock = new(JourneyServer.Monday14h);
    private TwilioPeer _twilio = null!;
    private JourneyServer _server = null!;

    public WebhooksEndToEndTests(SendGridPeer sendGrid) => _sendGrid = sendGrid;

    public async Task InitializeAsync()
    {
        _twilio = await TwilioPeer.StartAsync();
        _server = await JourneyServer.StartAsync(null, _clock, null, null,
            $"--Nudge:Providers:Twilio:AccountSid={TwilioPeer.AccountSid}", $"--Nudge:Providers:Twilio:AuthToken={TwilioPeer.AuthToken}",
            $"--Nudge:Providers:Twilio:MessagingServiceSid={TwilioPeer.ServiceSid}", $"--Nudge:Providers:Twilio:BaseUrl={_twilio.BaseUrl}",
            "--Nudge:Providers:Email:Provider=sendgrid", "--Nudge:Providers:Email:From=shop@example.com",
            $"--Nudge:Providers:Email:SendGrid:ApiKey={SendGridPeer.ApiKey}", $"--Nudge:Providers:Email:SendGrid:BaseUrl={_sendGrid.BaseUrl}",
            $"--Nudge:Providers:Email:SendGrid:WebhookPublicKey={Convert.ToBase64String(_sendGridKey.ExportSubjectPublicKeyInfo())}",
            "--Nudge:Sms:HelpReply=Shop alerts: reply STOP to opt out <3", $"--Nudge:PublicBaseUrl={PublicBase}");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
        await _twilio.DisposeAsync();
    }

    public void Dispose() => _sendGridKey.Dispose();

    private static string TwilioSign(string authToken, string url, IEnumerable<KeyValuePair<string, string>> form) =>
        WebhookSigning.Twilio(authToken, url, form);

    private string SendGridSign(string timestamp, string body) => WebhookSigning.SendGrid(_sendGridKey, timestamp, Encoding.UTF8.GetBytes(body));

    // ---- helpers --------------------------------------------------------------------------------------------------

    private async Task<HttpResponseMessage> PostTwilioAsync(string pathAndQuery, Dictionary<string, string> form, string? signature = "sign", string? token = null)
    {
        using var anonymous = new HttpClient();
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Admin.BaseAddress!, pathAndQuery)) { Content = new FormUrlEncodedContent(form) };
        if (signature is not null)
        {
            request.Headers.Add("X-Twilio-Signature", signature == "sign" ? TwilioSign(token ?? TwilioPeer.AuthToken, PublicBase + pathAndQuery, form) : signature);
        }

        return await anonymous.SendAsync(request);
    }

    private async Task<HttpResponseMessage> PostSendGridAsync(string body, string? signature = "sign", string timestamp = "1780322400")
    {
        using var anonymous = new HttpClient();
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Admin.BaseAddress!, "/webhooks/sendgrid"))
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        if (signature is not null)
        {
            request.Headers.Add("X-Twilio-Email-Event-Webhook-Signature", signature == "sign" ? SendGridSign(timestamp, body) : signature);
            request.Headers.Add("X-Twilio-Email-Event-Webhook-Timestamp", timestamp);
        }

        return await anonymous.SendAsync(request);
    }

    private static Dictionary<string, string> Inbound(string from, string body, string sid) => new()
    {
        ["AccountSid"] = TwilioPeer.AccountSid,
        ["MessageSid"] = sid,
        ["From"] = from,
        ["To"] = "+14155550000",
        ["Body"] = body,
        ["NumMedia"] = "0",
        ["NumSegments"] = "1",
        ["SmsStatus"] = "received",
    };

    private async Task<string> KeyAsync(string id) => (await _server.Store.ResolveAsync(new Identifier(IdentifierKind.Id, id)))!;

    private async Task<Profile> ProfileAsync(string id) => (await _server.Store.GetProfileAsync(await KeyAsync(id)))!;

    private async Task<Message> OnlyMessageAsync(string id) => Assert.Single(await _server.Store.GetMessagesAsync(await KeyAsync(id), 10));

    private async Task<List<DeliveryEvent>> EventsOfAsync(string messageId) =>
        [.. (await _server.Store.GetDeliveryEventsAsync(new DeliveryEventQuery(DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue, 1000))).Where(e => e.MessageId == messageId)];

    private async Task<string> SmsShopperAsync(string id, string phone)
    {
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$"""{"email":"{{id}}@example.com","phone":"{{phone}}","sms_consent":true}""");
        return id;
    }

    private Task PaymentFailedAsync(string id) =>
        _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"payment_failed","data":{"order_id":"o-1"}}""");

    /// <summary>Runs the payment_failed journey up to its drafted SMS, without sending it yet (the timers fire, the send stage does not).</summary>
    private async Task<Message> DraftPaymentSmsAsync(string id)
    {
        await PaymentFailedAsync(id);
        _clock.Advance(TimeSpan.FromMinutes(6));
        await _server.App.Services.GetRequiredService<TimerWorker>().RunDueOnceAsync();
        var m = await OnlyMessageAsync(id);
        Assert.Equal((Channel.Sms, MessageStatus.Drafted, true), (m.Channel, m.Status, m.Ready));
        _clock.Advance(TimeSpan.FromSeconds(1));
        return m;
    }

    // ---- Twilio inbound SMS -------------------------------------------------------------------------------------

    [Fact]
    public async Task TwilioInbound_UnsignedOrTampered_Is401Or403AndChangesNothing()
    {
        await SmsShopperAsync("sms-bad", "+14155550101");
        var form = Inbound("+14155550101", "STOP", "SM00000000000000000000000000000001");

        using var unsigned = await PostTwilioAsync("/webhooks/twilio/sms", form, signature: null);
        using var otherKey = await PostTwilioAsync("/webhooks/twilio/sms", form, token: "not-the-auth-token-0000000000000");
        var tamperedForm = new Dictionary<string, string>(form) { ["From"] = "+14155550199" };
        using var tampered = await PostTwilioAsync("/webhooks/twilio/sms", tamperedForm, signature: TwilioSign(TwilioPeer.AuthToken, PublicBase + "/webhooks/twilio/sms", form));
        using var otherUrl = await PostTwilioAsync("/webhooks/twilio/sms", form, signature: TwilioSign(TwilioPeer.AuthToken, "https://elsewhere.example.com/webhooks/twilio/sms", form));
        await _server.AdvanceAsync(TimeSpan.Zero);

        Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
        Assert.Equal([HttpStatusCode.Forbidden, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden], [otherKey.StatusCode, tampered.StatusCode, otherUrl.StatusCode]);
        var p = await ProfileAsync("sms-bad");
        Assert.True(p.Consent.SmsConsent);
        Assert.DoesNotContain(p.ConsentHistory, h => h.Source.StartsWith("twilio", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TwilioInbound_StopOptsOutEveryoneWithTheNumber_StartOptsBackIn_HelpAnswers_AllAsTwiML()
    {
        await SmsShopperAsync("sms-a", "+14155550102");
        await SmsShopperAsync("sms-b", "+14155550102");
        _clock.Advance(TimeSpan.FromSeconds(1)); // the opt-out comes after the opt-in

        using var stop = await PostTwilioAsync("/webhooks/twilio/sms", Inbound("+14155550102", "  sToP \n", "SM00000000000000000000000000000002"));
        await _server.AdvanceAsync(TimeSpan.Zero);

        Assert.Equal(HttpStatusCode.OK, stop.StatusCode);
        Assert.StartsWith("text/xml", stop.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        Assert.Equal("Response", System.Xml.Linq.XDocument.Parse(await stop.Content.ReadAsStringAsync()).Root!.Name.LocalName);
        foreach (var id in new[] { "sms-a", "sms-b" })
        {
            var p = await ProfileAsync(id);
            Assert.False(p.Consent.SmsConsent);
            var change = p.ConsentHistory.Last();
            Assert.Equal(("sms_consent", false, "twilio:STOP", _clock.GetUtcNow()), (change.Field, change.Value!.GetValue<bool>(), change.Source, change.At));
            Assert.NotNull(p.Consent.SmsConsentAt);
        }

        using var notAKeyword = await PostTwilioAsync("/webhooks/twilio/sms", Inbound("+14155550102", "start please", "SM00000000000000000000000000000003"));
        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.False((await ProfileAsync("sms-a")).Consent.SmsConsent);
        Assert.Equal("Response", System.Xml.Linq.XDocument.Parse(await notAKeyword.Content.ReadAsStringAsync()).Root!.Name.LocalName);

        _clock.Advance(TimeSpan.FromMinutes(1));
        using var start = await PostTwilioAsync("/webhooks/twilio/sms", Inbound("+14155550102", "Start", "SM00000000000000000000000000000004"));
        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.True((await ProfileAsync("sms-b")).Consent.SmsConsent);
        Assert.Equal("twilio:START", (await ProfileAsync("sms-b")).ConsentHistory.Last().Source);

        using var help = await PostTwilioAsync("/webhooks/twilio/sms", Inbound("+14155550102", "help", "SM00000000000000000000000000000005"));
        var twiml = System.Xml.Linq.XDocument.Parse(await help.Content.ReadAsStringAsync());
        Assert.Equal("Shop alerts: reply STOP to opt out <3", twiml.Root!.Element("Message")!.Value);
    }

    [Fact]
    public async Task SmsDraftedBeforeStop_AndSentAfter_EndsUndeliverableWithoutReachingTwilio()
    {
        await SmsShopperAsync("sms-late", "+14155550103");
        await DraftPaymentSmsAsync("sms-late");

        using var stop = await PostTwilioAsync("/webhooks/twilio/sms", Inbound("+14155550103", "STOP", "SM00000000000000000000000000000006"));
        await _server.AdvanceAsync(TimeSpan.Zero); // applies the STOP, then runs the send stage

        var m = await OnlyMessageAsync("sms-late");
        Assert.Equal((Channel.Sms, MessageStatus.Undeliverable, MessageReason.ConsentMissing), (m.Channel, m.Status, m.Reason));
        Assert.DoesNotContain(_twilio.Requests, r => r.Form.Any(f => f.Key == "To" && f.Value == "+14155550103"));
        Assert.Equal([MessageStatus.Drafted, MessageStatus.Undeliverable], (await EventsOfAsync(m.Id)).OrderBy(e => e.At).ThenBy(e => StatusTransitions.Rank(e.Metric)).Select(e => e.Metric));
    }

    [Fact]
    public async Task SuppressedAfterDrafting_TheMessageEndsUndeliverableSuppressed()
    {
        await SmsShopperAsync("sms-suppressed", "+14155550104");
        await DraftPaymentSmsAsync("sms-suppressed");

        await _server.SendAsync(HttpMethod.Post, "/api/v1/customers/sms-suppressed/suppress", null);

        var m = await OnlyMessageAsync("sms-suppressed");
        Assert.Equal((MessageStatus.Undeliverable, MessageReason.Suppressed), (m.Status, m.Reason));
        Assert.Equal(DeliveryStatus.Dropped, Assert.Single(m.Deliveries).Status);
    }

    // ---- Twilio status callbacks --------------------------------------------------------------------------------

    [Fact]
    public async Task TwilioStatusCallbacks_RecordDeliveredOnceAndFailureReasons_21610ClearsConsent()
    {
        await SmsShopperAsync("sms-status", "+14155550105");
        await PaymentFailedAsync("sms-status");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(6));
        var m = await OnlyMessageAsync("sms-status");
        Assert.Equal(MessageStatus.Sent, m.Status);
        var sid = m.Deliveries.Single().ProviderId!;
        var path = $"/webhooks/twilio/status?message_id={Uri.EscapeDataString(m.Id)}";
        Dictionary<string, string> Callback(string status, string? code = null)
        {
            var f = new Dictionary<string, string> { ["AccountSid"] = TwilioPeer.AccountSid, ["MessageSid"] = sid, ["MessageStatus"] = status, ["To"] = "+14155550105" };
            if (code is not null)
            {
                f["ErrorCode"] = code;
            }

            return f;
        }

        using var forged = await PostTwilioAsync(path, Callback("failed", "21610"), token: "wrong-token-wrong-token-wrong-tok");
        using var unsigned = await PostTwilioAsync(path, Callback("failed", "21610"), signature: null);
        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.Equal((HttpStatusCode.Forbidden, HttpStatusCode.Unauthorized), (forged.StatusCode, unsigned.StatusCode));
        Assert.Equal(MessageStatus.Sent, (await OnlyMessageAsync("sms-status")).Status);
        Assert.True((await ProfileAsync("sms-status")).Consent.SmsConsent);

        foreach (var status in new[] { "queued", "sent", "delivered", "delivered" })
        {
            using var r = await PostTwilioAsync(path, Callback(status));
            Assert.True(r.IsSuccessStatusCode);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        m = await OnlyMessageAsync("sms-status");
        Assert.Equal(MessageStatus.Delivered, m.Status);
        var delivered = Assert.Single(m.History, h => h.Status == MessageStatus.Delivered);
        Assert.Equal(("twilio", $"{sid}:delivered"), (delivered.Source, delivered.Key));
        var events = await EventsOfAsync(m.Id);
        Assert.Equal([MessageStatus.Delivered, MessageStatus.Drafted, MessageStatus.Sent], events.Select(e => e.Metric).Order(StringComparer.Ordinal));
        var d = events.Single(e => e.Metric == MessageStatus.Delivered);
        Assert.Equal(("sms", "payment_failed", "notify", "+14155550105", sid), (d.Channel, d.JourneyId, d.StepId, d.Recipient, d.ProviderId));

        // A later failure is history, not status (monotonic), with its reason; 21610 also withdraws SMS consent.
        using (var failed = await PostTwilioAsync(path, Callback("failed", "21610")))
        {
            Assert.True(failed.IsSuccessStatusCode);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        m = await OnlyMessageAsync("sms-status");
        Assert.Equal(MessageStatus.Delivered, m.Status);
        Assert.Equal("recipient_unsubscribed", m.History.Single(h => h.Status == MessageStatus.Failed).Reason);
        var p = await ProfileAsync("sms-status");
        Assert.False(p.Consent.SmsConsent);
        Assert.Equal("twilio:21610", p.ConsentHistory.Last().Source);
    }

    // ---- Email: open pixel, click links, SendGrid Event Webhook -------------------------------------------------

    [Fact]
    public async Task Email_PixelAndSignedClickLinks_RecordOpenedAndClicked_AndNeverRedirectElsewhere()
    {
        await _server.SendAsync(HttpMethod.Put, "/api/v1/customers/mail-1", """{"email":"mail-1@example.com"}""");
        await PaymentFailedAsync("mail-1");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(6));
        var m = await OnlyMessageAsync("mail-1");
        Assert.Equal((Channel.Email, MessageStatus.Sent), (m.Channel, m.Status));

        var sentMail = JsonNode.Parse(_sendGrid.Requests.Last(r => r.Body.Contains(m.Id, StringComparison.Ordinal)).Body)!;
        var html = sentMail["content"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == "text/html")!["value"]!.GetValue<string>();
        Assert.DoesNotContain("href=\"https://shop.example/billing\"", html, StringComparison.Ordinal);
        var pixel = new Uri(Pixel().Match(html).Groups[1].Value);
        var click = new Uri(System.Net.WebUtility.HtmlDecode(ClickLink().Match(html).Groups[1].Value));
        Assert.Equal("nudge.example.com", pixel.Host);
        using var anonymous = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        Uri Local(Uri u) => new(_server.Admin.BaseAddress!, u.PathAndQuery);

        using (var badPixel = await anonymous.GetAsync(Local(new Uri(pixel.AbsoluteUri[..^3] + "abc"))))
        using (var badClick = await anonymous.GetAsync(Local(new Uri(click.AbsoluteUri[..^3] + "abc"))))
        {
            Assert.Equal((HttpStatusCode.OK, "image/gif"), (badPixel.StatusCode, badPixel.Content.Headers.ContentType!.MediaType));
            Assert.Equal("GIF89a", Encoding.ASCII.GetString((await badPixel.Content.ReadAsByteArrayAsync())[..6]));
            Assert.Equal(HttpStatusCode.NotFound, badClick.StatusCode);
            Assert.Null(badClick.Headers.Location);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.Equal(MessageStatus.Sent, (await OnlyMessageAsync("mail-1")).Status);

        using (var open = await anonymous.GetAsync(Local(pixel)))
        {
            Assert.Equal("image/gif", open.Content.Headers.ContentType!.MediaType);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.Equal(MessageStatus.Opened, (await OnlyMessageAsync("mail-1")).Status);

        using (var go = await anonymous.GetAsync(Local(click)))
        {
            Assert.Equal(HttpStatusCode.Redirect, go.StatusCode);
            Assert.Equal(new Uri("https://shop.example/billing"), go.Headers.Location);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        m = await OnlyMessageAsync("mail-1");
        Assert.Equal(MessageStatus.Clicked, m.Status);
        Assert.Equal("email_link", m.History.Single(h => h.Status == MessageStatus.Clicked).Source);
        Assert.Contains(await EventsOfAsync(m.Id), e => e.Metric == MessageStatus.Opened);
    }

    [Fact]
    public async Task SendGridEvents_SignedAreApplied_UnsignedOrTamperedChangeNothing()
    {
        await _server.SendAsync(HttpMethod.Put, "/api/v1/customers/mail-2", """{"email":"mail-2@example.com"}""");
        await PaymentFailedAsync("mail-2");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(6));
        var m = await OnlyMessageAsync("mail-2");
        var body = $$"""
            [{"email":"mail-2@example.com","timestamp":1780322500,"event":"processed","sg_event_id":"ev-p","sg_message_id":"x.1","delivery_id":"{{m.Id}}"},
             {"email":"mail-2@example.com","timestamp":1780322510,"event":"delivered","sg_event_id":"ev-d","sg_message_id":"x.1","delivery_id":"{{m.Id}}"},
             {"email":"mail-2@example.com","timestamp":1780322520,"event":"spamreport","sg_event_id":"ev-s","sg_message_id":"x.1","delivery_id":"{{m.Id}}"}]
            """;

        using (var unsigned = await PostSendGridAsync(body, signature: null))
        using (var tampered = await PostSendGridAsync(body.Replace("delivered", "bounce", StringComparison.Ordinal), signature: SendGridSign("1780322400", body)))
        using (var otherTime = await PostSendGridAsync(body, signature: SendGridSign("1780322401", body)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
            Assert.Equal((HttpStatusCode.Forbidden, HttpStatusCode.Forbidden), (tampered.StatusCode, otherTime.StatusCode));
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.Equal(MessageStatus.Sent, (await OnlyMessageAsync("mail-2")).Status);
        Assert.False((await ProfileAsync("mail-2")).Consent.EmailUnsubscribed);

        using (var ok = await PostSendGridAsync(body))
        using (var again = await PostSendGridAsync(body))
        {
            Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (ok.StatusCode, again.StatusCode));
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        m = await OnlyMessageAsync("mail-2");
        Assert.Equal(MessageStatus.Delivered, m.Status);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1780322510), Assert.Single(m.History, h => h.Status == MessageStatus.Delivered).At);
        var p = await ProfileAsync("mail-2");
        Assert.True(p.Consent.EmailUnsubscribed);
        Assert.Equal(("unsubscribed", "sendgrid:spamreport"), (p.ConsentHistory.Last().Field, p.ConsentHistory.Last().Source));
        Assert.Single(await EventsOfAsync(m.Id), e => e.Metric == ReportedMetric.Spammed);
    }

    [Fact]
    public async Task OneClickUnsubscribe_RecordsTheUnsubscribedMetricAndTheConsentChange()
    {
        var id = _server.IdFor("cart_recovery", heldOut: false, "mail-3");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$"""{"email":"{{id}}@example.com"}""");
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c-3","cart_value":40}}""");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));
        var m = (await _server.Store.GetMessagesAsync(await KeyAsync(id), 10)).Single(x => x.Channel == Channel.Email);
        var sentMail = JsonNode.Parse(_sendGrid.Requests.Last(r => r.Body.Contains(m.Id, StringComparison.Ordinal)).Body)!;
        var url = new Uri(sentMail["headers"]!["List-Unsubscribe"]!.GetValue<string>().Trim('<', '>'));
        using var anonymous = new HttpClient();

        using (var post = await anonymous.PostAsync(new Uri(_server.Admin.BaseAddress!, url.PathAndQuery), new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")])))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        var p = await ProfileAsync(id);
        Assert.True(p.Consent.EmailUnsubscribed);
        Assert.Equal("email_unsubscribe_link", p.ConsentHistory.Last().Source);
        Assert.Single(await EventsOfAsync(m.Id), e => e.Metric == ReportedMetric.Unsubscribed);
    }

    [Fact]
    public async Task UnreadableWebhookBodies_Are400_NotServerErrors()
    {
        // Over ASP.NET's 1,024-field form limit: ReadFormAsync throws before the signature can be checked.
        var many = Enumerable.Range(0, 1100).ToDictionary(n => $"f{n}", _ => "v");
        using (var tooMany = await PostTwilioAsync("/webhooks/twilio/sms", many))
        {
            Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
            Assert.Contains("form body cannot be read", await tooMany.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using var anonymous = new HttpClient();
        foreach (var (contentType, body) in new[] { ("multipart/form-data", "--x\r\n\r\nSTOP\r\n--x--"), ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"Body\"\r\n\r\nSTOP") })
        {
            var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Admin.BaseAddress!, "/webhooks/twilio/status?message_id=m")) { Content = new StringContent(body) };
            request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
            request.Headers.Add("X-Twilio-Signature", "x");
            using var broken = await anonymous.SendAsync(request);
            Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        }

        // Signed, so the body is parsed: keys twice and unpaired surrogates are 400, not exceptions when a field is read.
        using (var dup = await PostSendGridAsync("""[{"event":"delivered","event":"bounce","sg_event_id":"e-dup","delivery_id":"m"}]"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, dup.StatusCode);
            Assert.Contains("[0]: has the key 'event' more than once", await dup.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var lone = await PostSendGridAsync("""[{"event":"delivered","sg_event_id":"\ud800","delivery_id":"m"}]"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, lone.StatusCode);
            Assert.Contains("[0].sg_event_id: is not valid Unicode text", await lone.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task SendGridSignedWithAnotherKey_AndTamperedUnsubscribeLinks_ChangeNothing()
    {
        var id = _server.IdFor("cart_recovery", heldOut: false, "mail-4");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$"""{"email":"{{id}}@example.com"}""");
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c-4","cart_value":40}}""");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));
        var m = (await _server.Store.GetMessagesAsync(await KeyAsync(id), 10)).Single(x => x.Channel == Channel.Email);
        var sentMail = JsonNode.Parse(_sendGrid.Requests.Last(r => r.Body.Contains(m.Id, StringComparison.Ordinal)).Body)!;
        var token = new Uri(sentMail["headers"]!["List-Unsubscribe"]!.GetValue<string>().Trim('<', '>')).AbsolutePath["/u/".Length..];

        // A well-formed signature from a P-256 key SendGrid does not hold.
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var body = $$"""[{"email":"{{id}}@example.com","timestamp":1780322500,"event":"unsubscribe","sg_event_id":"ev-u4","delivery_id":"{{m.Id}}"}]""";
        var forged = Convert.ToBase64String(otherKey.SignData(Encoding.UTF8.GetBytes("1780322400" + body), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        using (var r = await PostSendGridAsync(body, signature: forged))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }

        // The token with its last character changed, cut short, or lengthened cannot unsubscribe anyone.
        var flipped = token[..^1] + (token[^1] == 'A' ? 'B' : 'A');
        using var anonymous = new HttpClient { BaseAddress = _server.Admin.BaseAddress };
        foreach (var bad in new[] { flipped, token[..^4], token + "x" })
        {
            using var get = await anonymous.GetAsync("/u/" + bad);
            using var post = await anonymous.PostAsync("/u/" + bad, new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")]));
            Assert.Equal((HttpStatusCode.NotFound, HttpStatusCode.NotFound), (get.StatusCode, post.StatusCode));
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.False((await ProfileAsync(id)).Consent.EmailUnsubscribed);
        Assert.DoesNotContain(await EventsOfAsync(m.Id), e => e.Metric == ReportedMetric.Unsubscribed);

        // The control: the untouched link does unsubscribe.
        using (var ok = await anonymous.PostAsync("/u/" + token, new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")])))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.True((await ProfileAsync(id)).Consent.EmailUnsubscribed);
    }

    // ---- SDK push metrics -----------------------------------------------------------------------------------------

    [Fact]
    public async Task SdkPushMetrics_RecordDeliveredOpenedConverted_ValidateFields_AndNeedTheTrackApiKey()
    {
        var id = _server.IdFor("cart_recovery", heldOut: false, "app");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", $$"""{"email":"{{id}}@example.com"}""");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", """{"device":{"id":"tok-app-1","platform":"ios"}}""");
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c-1","cart_value":40}}""");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));
        var m = (await _server.Store.GetMessagesAsync(await KeyAsync(id), 10)).Single(x => x.Channel == Channel.Push);
        Assert.Equal(MessageStatus.Delivered, m.Status); // the sandbox reports a push delivered with its answer

        using (var noAuth = await new HttpClient().PostAsync(new Uri(_server.Admin.BaseAddress!, "/api/v1/push/events"),
            NudgeServerFixture.Json($$"""{"delivery_id":"{{m.Id}}","event":"opened"}""")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, noAuth.StatusCode);
        }

        using (var bad = await _server.Track.PostAsync("/api/v1/push/events", NudgeServerFixture.Json($$"""{"delivery_id":"{{m.Id}}","event":"clicked"}""")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("event", (await bad.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        }

        using (var missing = await _server.Track.PostAsync("/api/v1/metrics", NudgeServerFixture.Json("""{"metric":"opened"}""")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
            Assert.Contains("delivery_id", (await missing.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        Assert.Equal(MessageStatus.Delivered, (await _server.Store.GetMessageAsync(m.Id))!.Status);

        await _server.SendAsync(HttpMethod.Post, "/api/v1/push/events", $$"""{"delivery_id":"{{m.Id}}","event":"delivered","device_id":"tok-app-1","timestamp":{{_clock.GetUtcNow().ToUnixTimeSeconds()}}}""");
        await _server.SendAsync(HttpMethod.Post, "/api/v1/push/events", $$"""{"delivery_id":"{{m.Id}}","event":"opened","device_id":"tok-app-1"}""");
        await _server.SendAsync(HttpMethod.Post, "/api/v1/metrics", $$"""{"delivery_id":"{{m.Id}}","metric":"converted","recipient":"tok-app-1"}""");
        await _server.AdvanceAsync(TimeSpan.Zero);

        m = (await _server.Store.GetMessageAsync(m.Id))!;
        Assert.Equal(MessageStatus.Converted, m.Status);
        Assert.All(m.History.Where(h => h.Status is MessageStatus.Opened or MessageStatus.Converted), h => Assert.Equal("sdk", h.Source));

        // The app's "delivered" came after the sandbox's: one delivered in the history and the log, the first.
        Assert.Equal("sandbox", Assert.Single(m.History, h => h.Status == MessageStatus.Delivered).Source);
        var events = await EventsOfAsync(m.Id);
        Assert.Equal("tok-app-1", events.Single(e => e.Metric == MessageStatus.Opened).Recipient);
        Assert.Equal("ios", events.Single(e => e.Metric == MessageStatus.Delivered).Platform);
    }

    [GeneratedRegex("<img src=\"(https://nudge\\.example\\.com/e/o/[A-Za-z0-9_-]+)\"")]
    private static partial Regex Pixel();

    [GeneratedRegex("href=\"(https://nudge\\.example\\.com/e/c/[A-Za-z0-9_-]+)\"")]
    private static partial Regex ClickLink();
}
