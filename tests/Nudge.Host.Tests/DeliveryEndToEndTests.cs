using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Apns;
using Nudge.Delivery.Tests.Apns;
using Nudge.Delivery.Tests.Email;
using Nudge.Delivery.Tests.Fcm;
using Nudge.Delivery.Tests.Support;
using Nudge.Delivery.Tests.Twilio;

namespace Nudge.Host.Tests;

/// <summary>
/// The cart-recovery journey in the embedded server with real providers configured: loopback APNs (HTTP/2 + TLS, ES256
/// JWT checked), an OAuth token endpoint + FCM, a Twilio Messages API peer, and maildev over SMTP. Push reaches both
/// platforms, then email and SMS; a dead FCM token is removed and the step falls back to SMS; the email's one-click
/// unsubscribe link works.
/// </summary>
public sealed partial class DeliveryEndToEndTests : IClassFixture<MaildevFixture>, IAsyncLifetime, IDisposable
{
    private const string KeyId = "KEY1234567";
    private const string TeamId = "TEAM987654";
    private const string BundleId = "com.example.shop";

    private readonly MaildevFixture _mail;
    private readonly ECDsa _apnsKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ServiceAccountKey _fcmKey = new();
    private readonly FakeTimeProvider _clock = new(JourneyServer.Monday14h);
    private ApnsPeer _apns = null!;
    private ApnsPeer _apnsSandbox = null!;
    private FcmPeer _fcm = null!;
    private TwilioPeer _twilio = null!;
    private JourneyServer _server = null!;

    public DeliveryEndToEndTests(MaildevFixture mail) => _mail = mail;

    public async Task InitializeAsync()
    {
        _apns = await ApnsPeer.StartAsync(_apnsKey, KeyId, TeamId, BundleId);
        _apns.Clock = _clock;
        _apnsSandbox = await ApnsPeer.StartAsync(_apnsKey, KeyId, TeamId, BundleId);
        _apnsSandbox.Clock = _clock;
        _fcm = await FcmPeer.StartAsync(_fcmKey, _clock);
        _twilio = await TwilioPeer.StartAsync();
        _server = await JourneyServer.StartAsync(
            name => name == "apns" ? ApnsPeerFixture.DefaultHandlerTrustingTestCertificate(new ApnsOptions()) : null,
            _clock, null, null,
            $"--Nudge:Providers:Apns:KeyId={KeyId}", $"--Nudge:Providers:Apns:TeamId={TeamId}", $"--Nudge:Providers:Apns:BundleId={BundleId}",
            $"--Nudge:Providers:Apns:PrivateKey={_apnsKey.ExportPkcs8PrivateKeyPem()}", $"--Nudge:Providers:Apns:ProductionUrl={_apns.Url}", $"--Nudge:Providers:Apns:SandboxUrl={_apnsSandbox.Url}",
            $"--Nudge:Providers:Fcm:ServiceAccountJson={_fcmKey.Json(_fcm.TokenUri)}", $"--Nudge:Providers:Fcm:BaseUrl={_fcm.BaseUrl}",
            $"--Nudge:Providers:Twilio:AccountSid={TwilioPeer.AccountSid}", $"--Nudge:Providers:Twilio:AuthToken={TwilioPeer.AuthToken}",
            $"--Nudge:Providers:Twilio:MessagingServiceSid={TwilioPeer.ServiceSid}", $"--Nudge:Providers:Twilio:BaseUrl={_twilio.BaseUrl}",
            "--Nudge:Providers:Email:Provider=smtp", "--Nudge:Providers:Email:From=shop@example.com", "--Nudge:Providers:Email:FromName=Shop",
            "--Nudge:Providers:Email:Smtp:Host=127.0.0.1", $"--Nudge:Providers:Email:Smtp:Port={_mail.SmtpPort}", "--Nudge:Providers:Email:Smtp:Security=none",
            "--Nudge:PublicBaseUrl=https://nudge.example.com");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
        await _apns.DisposeAsync();
        await _apnsSandbox.DisposeAsync();
        await _fcm.DisposeAsync();
        await _twilio.DisposeAsync();
    }

    public void Dispose()
    {
        _apnsKey.Dispose();
        _fcmKey.Dispose();
    }

    private async Task<string> ShopperAsync(string prefix, string platform, string token, string phone)
    {
        var id = _server.IdFor("cart_recovery", heldOut: false, prefix);
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}",
            $$"""{"email":"{{id}}@example.com","first_name":"Dana","phone":"{{phone}}","sms_consent":true,"timezone":"UTC"}""");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"{{{token}}}","platform":"{{{platform}}}"}}""");
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events",
            """{"name":"add_to_cart","data":{"cart_id":"cart-9","cart_value":150,"item_name":"serum"}}""");
        return id;
    }

    private async Task<List<JsonObject>> MessagesAsync(string id) =>
        (await _server.GetAsync($"/admin/v1/profiles/{id}/messages")).Select(m => m!.AsObject()).OrderBy(m => m["created_at"]!.GetValue<DateTimeOffset>()).ToList();

    private static JsonObject Delivery(JsonObject message) => Assert.Single(message["deliveries"]!.AsArray())!.AsObject();

    [Fact]
    public async Task CartRecovery_PushOnBothPlatformsThenEmailThenSms_ThroughTheRealProtocols()
    {
        var iosToken = ApnsPeerFixture.Token(1);
        var ios = await ShopperAsync("ios", "ios", iosToken, "+14155552671");
        var android = await ShopperAsync("android", "android", "fcm-token-android-1", "+14155552672");

        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));

        // iOS: APNs over HTTP/2 with the topic, an alert push type and the cart deep link; the record keeps the apns-id.
        var iosPush = Assert.Single(await MessagesAsync(ios));
        Assert.Equal(("push", "sent"), (iosPush["channel"]!.GetValue<string>(), iosPush["status"]!.GetValue<string>()));
        var note = Assert.Single(_apns.Accepted);
        Assert.Equal((iosToken, "2", BundleId, "alert"), (note.Token, note.Protocol[^1..], note.Headers["apns-topic"], note.Headers["apns-push-type"]));
        var payload = JsonNode.Parse(note.Payload)!;
        Assert.Equal(iosPush["id"]!.GetValue<string>(), payload["delivery_id"]!.GetValue<string>());
        Assert.Equal("shop://cart/cart-9", payload["link"]!.GetValue<string>());
        Assert.Equal("Your cart is waiting", payload["aps"]!["alert"]!["title"]!.GetValue<string>());
        var d = Delivery(iosPush);
        Assert.Equal(("apns", "sent", note.Headers["apns-id"]), (d["provider"]!.GetValue<string>(), d["status"]!.GetValue<string>(), d["provider_id"]!.GetValue<string>()));

        // Android: FCM v1 with an OAuth token; the record keeps FCM's message name.
        var androidPush = Assert.Single(await MessagesAsync(android));
        var body = JsonNode.Parse(Assert.Single(_fcm.AcceptedBodies))!["message"]!;
        Assert.Equal("fcm-token-android-1", body["token"]!.GetValue<string>());
        Assert.Equal(androidPush["id"]!.GetValue<string>(), body["data"]!["delivery_id"]!.GetValue<string>());
        Assert.Equal("cart-9", body["data"]!["cart_id"]!.GetValue<string>());
        d = Delivery(androidPush);
        Assert.Equal("fcm", d["provider"]!.GetValue<string>());
        Assert.StartsWith($"projects/{ServiceAccountKey.ProjectId}/messages/", d["provider_id"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(1, _fcm.TokensIssued);

        // +4 h: email over SMTP with the RFC 8058 one-click headers.
        await _server.AdvanceAsync(TimeSpan.FromHours(4));
        var email = (await MessagesAsync(ios))[1];
        Assert.Equal(("email", "sent", "smtp"), (email["channel"]!.GetValue<string>(), email["status"]!.GetValue<string>(), Delivery(email)["provider"]!.GetValue<string>()));
        var received = Assert.Single(await _mail.WaitForAsync($"{ios}@example.com"));
        Assert.Equal("Still thinking it over?", received.GetProperty("subject").GetString());
        var source = await _mail.SourceAsync(received);
        Assert.Contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click", source, StringComparison.Ordinal);
        Assert.True(UnsubscribeHeader().IsMatch(source), source);

        // +20 h: SMS through Twilio with the status callback carrying our message id, segments and cost recorded.
        await _server.AdvanceAsync(TimeSpan.FromHours(20));
        var sms = (await MessagesAsync(ios))[2];
        Assert.Equal(("sms", "sent"), (sms["channel"]!.GetValue<string>(), sms["status"]!.GetValue<string>()));
        d = Delivery(sms);
        Assert.Equal("twilio", d["provider"]!.GetValue<string>());
        Assert.StartsWith("SM", d["provider_id"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(1, sms["segments"]!.GetValue<int>());
        var form = _twilio.Requests.Select(r => r.Form.ToDictionary(f => f.Key, f => f.Value)).Single(f => f["To"] == "+14155552671");
        Assert.Equal(TwilioPeer.ServiceSid, form["MessagingServiceSid"]);
        Assert.Equal($"https://nudge.example.com/webhooks/twilio/status?message_id={Uri.EscapeDataString(sms["id"]!.GetValue<string>())}", form["StatusCallback"]);
    }

    [Fact]
    public async Task ApnsTooManyRequests_WithRetryAfter_IsRetriedAfterItAndSentOnce()
    {
        var token = ApnsPeerFixture.Token(3);
        _apns.Faults[token] = PeerFault.Reply(429, "TooManyRequests", retryAfter: "120", times: 1);
        var id = await ShopperAsync("throttled", "ios", token, "+14155552675");

        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));
        var push = Assert.Single(await MessagesAsync(id));
        Assert.Equal(("attempted", "rate_limited"), (push["status"]!.GetValue<string>(), Delivery(push)["reason"]!.GetValue<string>()));
        Assert.True(push["next_attempt_at"]!.GetValue<DateTimeOffset>() >= _clock.GetUtcNow().AddSeconds(120));
        Assert.Empty(_apns.Accepted);

        await _server.AdvanceAsync(TimeSpan.FromMinutes(1));
        Assert.Empty(_apns.Accepted); // not before Retry-After

        await _server.AdvanceAsync(TimeSpan.FromMinutes(2));
        push = Assert.Single(await MessagesAsync(id));
        Assert.Equal("sent", push["status"]!.GetValue<string>());
        Assert.Equal(2, Delivery(push)["attempts"]!.GetValue<int>());
        Assert.Single(_apns.Accepted);
    }

    [Fact]
    public async Task SandboxToken_BadDeviceTokenInProduction_IsSentViaSandboxAndTheDeviceRemembersIt()
    {
        var token = ApnsPeerFixture.Token(4);
        _apns.ForeignTokens[token] = 0; // a development build's token: production answers BadDeviceToken
        var id = await ShopperAsync("devbuild", "ios", token, "+14155552676");

        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));

        var push = Assert.Single(await MessagesAsync(id));
        Assert.Equal("sent", push["status"]!.GetValue<string>());
        Assert.Equal(token, Assert.Single(_apnsSandbox.Accepted).Token);
        var profile = JsonNode.Parse(await _server.Admin.GetStringAsync($"/admin/v1/profiles/{id}"))!;
        Assert.Equal("sandbox", profile["devices"]![0]!["attributes"]!["apns_environment"]!.GetValue<string>());

        // The next push goes straight to the sandbox: production sees no second request for the token.
        var before = _apns.RequestCount;
        await _server.AdvanceAsync(TimeSpan.FromHours(24));
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"cart-10","cart_value":20}}""");
        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));
        Assert.Equal(2, _apnsSandbox.Accepted.Count(n => n.Token == token));
        Assert.Equal(before, _apns.RequestCount);
    }

    [Fact]
    public async Task DeadFcmToken_IsRemovedAndTheStepFallsBackToSms()
    {
        _fcm.Faults["fcm-token-dead"] = FcmFault.Unregistered;
        var id = await ShopperAsync("dead", "android", "fcm-token-dead", "+14155552673");

        await _server.AdvanceAsync(TimeSpan.FromMinutes(30));

        var messages = await MessagesAsync(id);
        Assert.Equal(2, messages.Count);
        var push = messages.Single(m => m["channel"]!.GetValue<string>() == "push");
        Assert.Equal(("bounced", "invalid_token"), (push["status"]!.GetValue<string>(), push["reason"]!.GetValue<string>()));
        Assert.Equal("UNREGISTERED", Delivery(push)["detail"]!.GetValue<string>());
        var sms = messages.Single(m => m["channel"]!.GetValue<string>() == "sms");
        Assert.Equal(("sent", push["id"]!.GetValue<string>()), (sms["status"]!.GetValue<string>(), sms["fallback_of"]!.GetValue<string>()));
        Assert.Equal("invalid_token", sms["fallback_reasons"]!["push"]!.GetValue<string>());
        Assert.Contains(_twilio.Requests, r => r.Form.Any(f => f.Key == "To" && f.Value == "+14155552673"));

        var profile = JsonNode.Parse(await _server.Admin.GetStringAsync($"/admin/v1/profiles/{id}"))!;
        Assert.Empty(profile["devices"]!.AsArray());
    }

    [Fact]
    public async Task OneClickUnsubscribe_FromTheEmailHeader_UnsubscribesAndATamperedLinkChangesNothing()
    {
        var id = await ShopperAsync("unsub", "ios", ApnsPeerFixture.Token(2), "+14155552674");
        await _server.AdvanceAsync(TimeSpan.FromHours(4.5));
        var source = await _mail.SourceAsync(Assert.Single(await _mail.WaitForAsync($"{id}@example.com")));
        var url = new Uri(UnsubscribeHeader().Match(source).Groups[1].Value);
        var local = new Uri(_server.Admin.BaseAddress!, url.PathAndQuery);
        using var anonymous = new HttpClient();

        using (var tampered = await anonymous.PostAsync(new Uri(local.AbsoluteUri[..^2] + "xx"), new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")])))
        {
            Assert.Equal(System.Net.HttpStatusCode.NotFound, tampered.StatusCode);
        }

        using (var page = await anonymous.GetAsync(local))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, page.StatusCode); // a GET (link scanners) only shows the button
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        var before = JsonNode.Parse(await _server.Admin.GetStringAsync($"/admin/v1/profiles/{id}"))!;
        Assert.False(before["consent"]!["email_unsubscribed"]!.GetValue<bool>());

        using (var post = await anonymous.PostAsync(local, new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")])))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, post.StatusCode);
        }

        await _server.AdvanceAsync(TimeSpan.Zero);
        var after = JsonNode.Parse(await _server.Admin.GetStringAsync($"/admin/v1/profiles/{id}"))!;
        Assert.True(after["consent"]!["email_unsubscribed"]!.GetValue<bool>());
    }

    [GeneratedRegex(@"List-Unsubscribe:\s*<(https://nudge\.example\.com/u/[A-Za-z0-9_~.-]+)>")]
    private static partial Regex UnsubscribeHeader();
}
