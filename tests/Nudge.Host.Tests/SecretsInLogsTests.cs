using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Nudge.Delivery.Tests.Fcm;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// Nudge.Host as a real process logging at Trace, with a known value in every secret setting, driven through failed
/// authentication, forged webhooks, bad input, rate limiting and provider errors: no secret may appear in its output.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SecretsInLogsTests : IDisposable
{
    private const string Site = "site-logs";
    private const string Api = "SECRET-api-key-7f3a9c";
    private const string Write = "SECRET-write-key-41d2e8";
    private const string AdminSecret = "SECRET-admin-key-b05c77";
    private const string Link = "SECRET-link-key-0123456789abcdef0123456789abcdef";
    private const string TwilioToken = "SECRET-twilio-token-9e8d7c";
    private const string SendGridApiKey = "SG.SECRET-sendgrid-key-5a6b7c";
    private const string SmtpPassword = "SECRET-smtp-password-3c4d5e";
    private const string ReportingSecret = "SECRET-reporting-secret-1f2e3d";
    private const string AlertPathSecret = "SECRET-alert-path-6a7b8c";

    private readonly string _dataDir = Directory.CreateTempSubdirectory("nudge-logs-").FullName;
    private readonly ServiceAccountKey _fcmKey = new();
    private readonly ECDsa _apnsKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public void Dispose()
    {
        _fcmKey.Dispose();
        _apnsKey.Dispose();
        Directory.Delete(_dataDir, recursive: true);
    }

    /// <summary>A loopback port nothing listens on: every provider call fails to connect.</summary>
    private static int ClosedPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static void WriteJourneys(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var channel in new[] { "push", "sms", "email" })
        {
            File.WriteAllText(Path.Combine(dir, $"probe_{channel}.yaml"), $$"""
                id: probe_{{channel}}
                version: 1
                name: Probe {{channel}}
                transactional: true
                trigger:
                  event: probe
                steps:
                  - id: send
                    send:
                      channels: [{{channel}}]
                      devices: all
                      push: { title: "Probe", body: "probe" }
                      sms: { body: "probe" }
                      email: { subject: "Probe", html: "<p>probe</p>", text: "probe" }
                """);
        }
    }

    [Fact]
    public async Task NoConfiguredSecret_AppearsInTraceOutput_UnderFailedAuthForgedWebhooksAndProviderErrors()
    {
        var port = ClosedPort();
        var closed = $"http://127.0.0.1:{port}";
        var closedTls = $"https://127.0.0.1:{port}";
        await using var reporting = await LoopbackReceiver.StartAsync();
        reporting.StatusFor = _ => 500;
        var journeys = Path.Combine(_dataDir, "journeys");
        WriteJourneys(journeys);
        var apnsPem = _apnsKey.ExportPkcs8PrivateKeyPem();
        var fcmJson = _fcmKey.Json(new Uri(closed + "/token"));
        await using var nudge = await NudgeProcess.StartAsync(_dataDir,
        [
            "--Logging:LogLevel:Default=Trace", "--Logging:Console:LogLevel:Default=Trace", $"--Nudge:Journeys:Dir={journeys}",
            $"--Nudge:Auth:SiteId={Site}", $"--Nudge:Auth:ApiKey={Api}", $"--Nudge:Auth:SegmentWriteKey={Write}",
            $"--Nudge:Auth:AdminKey={AdminSecret}", $"--Nudge:Auth:LinkKey={Link}",
            "--Nudge:Providers:Apns:KeyId=ABC123DEFG", "--Nudge:Providers:Apns:TeamId=TEAM123456", "--Nudge:Providers:Apns:BundleId=com.example.shop",
            $"--Nudge:Providers:Apns:PrivateKey={apnsPem}", $"--Nudge:Providers:Apns:ProductionUrl={closedTls}", $"--Nudge:Providers:Apns:SandboxUrl={closedTls}",
            $"--Nudge:Providers:Fcm:ServiceAccountJson={fcmJson}", $"--Nudge:Providers:Fcm:BaseUrl={closed}",
            "--Nudge:Providers:Twilio:AccountSid=AC00000000000000000000000000000000", $"--Nudge:Providers:Twilio:AuthToken={TwilioToken}",
            "--Nudge:Providers:Twilio:MessagingServiceSid=MG00000000000000000000000000000000", $"--Nudge:Providers:Twilio:BaseUrl={closed}",
            "--Nudge:Providers:Email:Provider=sendgrid", "--Nudge:Providers:Email:From=shop@example.com",
            $"--Nudge:Providers:Email:SendGrid:ApiKey={SendGridApiKey}", $"--Nudge:Providers:Email:SendGrid:BaseUrl={closed}",
            "--Nudge:Providers:Email:Smtp:Host=127.0.0.1", "--Nudge:Providers:Email:Smtp:UserName=shop", $"--Nudge:Providers:Email:Smtp:Password={SmtpPassword}",
            $"--Nudge:ReportingWebhooks:Url={reporting.Url}", $"--Nudge:ReportingWebhooks:Secret={ReportingSecret}", "--Nudge:ReportingWebhooks:SettleSeconds=0",
            $"--Nudge:Alerts:WebhookUrl={closed}/alerts/{AlertPathSecret}",
            "--Nudge:PublicBaseUrl=https://nudge.example.com",

            // Room for the bad traffic below (about 20 failures), and a refill slow enough that guessing always outruns it.
            "--Nudge:RateLimits:AuthFailures:Burst=40", "--Nudge:RateLimits:AuthFailures:PerSecond=1",
        ]);

        var b = nudge.BaseAddress;
        HttpClient Client(string scheme, string parameter) => new() { BaseAddress = b, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue(scheme, parameter) } };
        var track = Client("Basic", Basic(Site, Api));
        var admin = Client("Bearer", AdminSecret);
        var anonymous = new HttpClient { BaseAddress = b };

        // Good traffic: a person on every channel, then the event that sends to all three providers (which cannot be reached).
        Assert.Equal(HttpStatusCode.OK, (await track.PutAsync("/api/v1/customers/p1", Json("""{"email":"p1@example.com","phone":"+14155550101","sms_consent":true}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await track.PutAsync("/api/v1/customers/p1/devices", Json("""{"device":{"id":"ios-token-p1","platform":"ios"}}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await track.PutAsync("/api/v1/customers/p1/devices", Json("""{"device":{"id":"android-token-p1","platform":"android"}}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client("Basic", Basic(Write, "")).PostAsync("/v1/identify", Json("""{"userId":"p2","traits":{"email":"p2@example.com"}}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.PostAsync("/v1/track", Json($$"""{"writeKey":"{{Write}}","userId":"p2","event":"seen"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await track.PostAsync("/api/v1/customers/p1/events", Json("""{"name":"probe"}"""))).StatusCode);

        // Bad traffic: near-miss credentials (each secret with a character changed), the right secret in the wrong place,
        // bad bodies, forged webhooks and a tampered link.
        foreach (var (scheme, parameter) in new[]
        {
            ("Basic", Basic(Site, Api + "x")), ("Basic", Basic(Write + "x", "")), ("Bearer", AdminSecret + "x"), ("Bearer", Api), ("Basic", Basic(AdminSecret, "")),
        })
        {
            using var c = Client(scheme, parameter);
            Assert.Equal(HttpStatusCode.Unauthorized, (await c.PostAsync("/api/v1/customers/p1/events", Json("""{"name":"x"}"""))).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await c.PostAsync("/v1/track", Json("""{"userId":"p1","event":"x"}"""))).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await c.GetAsync("/admin/v1/stats")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.BadRequest, (await track.PostAsync("/api/v1/customers/p1/events", Json("""{"name":"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/v1/track", Json($$"""{"writeKey":"{{Api}}","userId":"p2","event":"x"}"""))).StatusCode);
        var form = new FormUrlEncodedContent([new("From", "+14155550101"), new("Body", "STOP"), new("MessageSid", "SM1")]);
        using (var forged = new HttpRequestMessage(HttpMethod.Post, new Uri(b, "/webhooks/twilio/sms")) { Content = form, Headers = { { "X-Twilio-Signature", "AAAA" } } })
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await anonymous.SendAsync(forged)).StatusCode);
        }

        using (var forged = new HttpRequestMessage(HttpMethod.Post, new Uri(b, "/webhooks/sendgrid")) { Content = Json("[]") })
        {
            forged.Headers.Add("X-Twilio-Email-Event-Webhook-Signature", "MEUCIQ==");
            forged.Headers.Add("X-Twilio-Email-Event-Webhook-Timestamp", "1780322400");
            Assert.Equal(HttpStatusCode.Forbidden, (await anonymous.SendAsync(forged)).StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await anonymous.PostAsync("/u/not-a-token", new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")]))).StatusCode);

        // Wait until every provider has failed at least once: each message leaves "drafted" or records an attempt.
        // A few seconds on a quiet machine; generous for a loaded one.
        var deadline = DateTime.UtcNow.AddMinutes(2);
        JsonArray messages;
        while (true)
        {
            // 404 until the event worker has applied the person.
            using var r = await admin.GetAsync("/admin/v1/profiles/p1/messages");
            messages = r.IsSuccessStatusCode ? JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsArray() : [];
            if (messages.Count >= 3 && messages.All(m => m!["status"]!.GetValue<string>() != "drafted"))
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the sends did not fail in time: {messages.ToJsonString()}");
            await Task.Delay(100);
        }

        // Failed authentication from this address until the limit answers 429 (its log lines are among those checked). How
        // many guesses that takes depends on how fast they go, so keep guessing: 40 tokens refilled at 1 a second run out.
        using (var guess = Client("Basic", Basic(Site, "guess")))
        {
            var answers = new List<HttpStatusCode>();
            while (answers.LastOrDefault() != HttpStatusCode.TooManyRequests)
            {
                Assert.True(answers.Count < 1000, "1000 failed authentications from one address were never answered 429");
                answers.Add((await guess.PostAsync("/api/v1/customers/p1/events", Json("""{"name":"guess"}"""))).StatusCode);
            }

            Assert.All(answers[..^1], a => Assert.Equal(HttpStatusCode.Unauthorized, a));
        }

        // The console logger writes in order from one queue: once a last request's line is out, so is everything before it.
        var marker = $"/logs-flushed-{Guid.NewGuid():N}";
        using (await anonymous.GetAsync(marker))
        {
        }

        var flushed = System.Diagnostics.Stopwatch.StartNew();
        while (!nudge.Output.Contains(marker, StringComparison.Ordinal))
        {
            Assert.True(flushed.Elapsed < TimeSpan.FromMinutes(1), "the last request never appeared in the output");
            await Task.Delay(50);
        }

        var output = nudge.Output;
        Assert.Contains("Nudge is listening on", output, StringComparison.Ordinal);
        Assert.Contains("dbug:", output, StringComparison.Ordinal);

        var secrets = new Dictionary<string, string>
        {
            ["API key"] = Api,
            ["Segment write key"] = Write,
            ["admin key"] = AdminSecret,
            ["link key"] = Link,
            ["Twilio auth token"] = TwilioToken,
            ["SendGrid API key"] = SendGridApiKey,
            ["SMTP password"] = SmtpPassword,
            ["reporting webhook secret"] = ReportingSecret,
            ["alert webhook URL"] = AlertPathSecret,
            ["Track API Basic header"] = Basic(Site, Api),
            ["Segment Basic header"] = Basic(Write, ""),
            ["APNs private key"] = Body(apnsPem),
            ["FCM private key"] = _fcmKey.PrivateKeyBase64,
        };
        foreach (var (name, value) in secrets)
        {
            // Any 24-character slice catches a key printed in part, wrapped or escaped at its ends.
            var probe = value.Length > 24 ? value[^24..] : value;
            Assert.False(output.Contains(probe, StringComparison.Ordinal), $"the {name} appears in the output");
        }

        // Every secret in one place: also none of their base64 forms (headers, JSON-escaped PEM).
        Assert.DoesNotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes(AdminSecret)), output, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET-", output, StringComparison.Ordinal);
    }

    /// <summary>The base64 of a PEM without its armour lines, joined.</summary>
    private static string Body(string pem) => string.Concat(pem.Split('\n').Where(l => !l.StartsWith("-----", StringComparison.Ordinal)));
}
