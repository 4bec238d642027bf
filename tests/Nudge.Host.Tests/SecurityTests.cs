using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Nudge.Host.Hosting;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// Credentials and rate limits end to end through the embedded server on loopback: every mapped endpoint is checked
/// (read from the app's own EndpointDataSource, so a new endpoint cannot be left out), and nothing a rejected call
/// carried may reach the queue or the store.
/// </summary>
public sealed class SecurityTests : IAsyncLifetime
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("nudge-security-").FullName;
    private WebApplication? _app;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        Directory.Delete(_dataDir, recursive: true);
    }

    private enum Family
    {
        Public,
        SignedLink,
        Webhook,
        Track,
        Segment,
        Admin,
    }

    /// <summary>A credential as a client would send it: an Authorization header and/or a writeKey in the body.</summary>
    private sealed record Credential(string Name, AuthenticationHeaderValue? Header, string? BodyWriteKey, Family? ValidFor = null);

    private static readonly Credential[] Presented =
    [
        new("none", null, null),
        new("garbage header", new AuthenticationHeaderValue("Basic", "not base64!"), null),
        new("wrong Track API key", new AuthenticationHeaderValue("Basic", Basic(SiteId, "wrong-api-key")), null),
        new("wrong site id", new AuthenticationHeaderValue("Basic", Basic("wrong-site", ApiKey)), null),
        new("wrong write key", new AuthenticationHeaderValue("Basic", Basic("wrong-write-key", "")), null),
        new("wrong admin key", new AuthenticationHeaderValue("Bearer", "wrong-admin-key"), null),
        new("wrong writeKey in body", null, "wrong-write-key"),
        new("Track API credential", new AuthenticationHeaderValue("Basic", Basic(SiteId, ApiKey)), null, Family.Track),
        new("Segment write key", new AuthenticationHeaderValue("Basic", Basic(WriteKey, "")), null, Family.Segment),
        new("Segment writeKey in body", null, WriteKey, Family.Segment),
        new("admin key", new AuthenticationHeaderValue("Bearer", AdminKey), null, Family.Admin),
        new("API key as bearer", new AuthenticationHeaderValue("Bearer", ApiKey), null),
        new("admin key as Basic user", new AuthenticationHeaderValue("Basic", Basic(AdminKey, "")), null),
        new("API key as writeKey in body", null, ApiKey),
    ];

    private async Task<Uri> StartAsync(params string[] extra)
    {
        _app = await NudgeServer.BuildAsync(
        [
            "--urls=http://127.0.0.1:0", $"--Nudge:DataDir={_dataDir}", $"--Nudge:Auth:SiteId={SiteId}", $"--Nudge:Auth:ApiKey={ApiKey}",
            $"--Nudge:Auth:SegmentWriteKey={WriteKey}", $"--Nudge:Auth:AdminKey={AdminKey}", "--Logging:LogLevel:Default=Warning",

            // Nothing is applied while the test runs: whatever a rejected call got into the queue stays countable there.
            "--Nudge:Workers:Enabled=false", .. extra,
        ]);
        await _app.StartAsync();
        return NudgeServer.BaseAddress(_app);
    }

    private static Family Classify(string pattern) => pattern switch
    {
        "/health" or "/dashboard" => Family.Public,
        _ when pattern.StartsWith("/dashboard/", StringComparison.Ordinal) => Family.Public,
        _ when pattern.StartsWith("/e/", StringComparison.Ordinal) || pattern.StartsWith("/u/", StringComparison.Ordinal) => Family.SignedLink,
        _ when pattern.StartsWith("/webhooks/", StringComparison.Ordinal) => Family.Webhook,
        _ when pattern.StartsWith("/api/v1/", StringComparison.Ordinal) => Family.Track,
        _ when pattern.StartsWith("/admin/v1/", StringComparison.Ordinal) => Family.Admin,
        _ when pattern.StartsWith("/v1/", StringComparison.Ordinal) => Family.Segment,
        _ => throw new InvalidOperationException($"{pattern} belongs to no credential family: decide how it is protected and add it to this test"),
    };

    private static HttpRequestMessage Request(Uri baseAddress, string method, string pattern, Credential credential)
    {
        // Route parameters get plausible values; the body would be accepted (or rejected only on its content) if authenticated.
        var path = System.Text.RegularExpressions.Regex.Replace(pattern, @"\{[^}]+\}", "probe");
        var r = new HttpRequestMessage(new HttpMethod(method), new Uri(baseAddress, path)) { Headers = { Authorization = credential.Header } };
        if (method is "POST" or "PUT")
        {
            var body = new JsonObject { ["userId"] = "probe", ["event"] = "probe", ["name"] = "probe", ["email"] = "probe@example.com" };
            if (credential.BodyWriteKey is { } key)
            {
                body["writeKey"] = key;
            }

            r.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        return r;
    }

    [Fact]
    public async Task EveryEndpoint_ExceptPublicOnes_Rejects401WithoutItsOwnCredential_AndNothingIsQueuedOrStored()
    {
        // The failed-authentication limit would turn this many 401s from one address into 429s; it has its own test.
        var baseAddress = await StartAsync("--Nudge:RateLimits:AuthFailures:PerSecond=1000000", "--Nudge:RateLimits:AuthFailures:Burst=10000000");
        var routes = _app!.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (Method: m, Pattern: e.RoutePattern.RawText!)))
            .Select(r => (r.Method, r.Pattern, Family: Classify(r.Pattern)))
            .ToList();
        var protectedRoutes = routes.Where(r => r.Family is Family.Track or Family.Segment or Family.Admin or Family.Webhook).ToList();
        Assert.Equal(3, routes.Count(r => r.Family == Family.Public));
        Assert.True(protectedRoutes.Count > 30, $"only {protectedRoutes.Count} protected routes found");

        using var http = new HttpClient();
        var wrong = new List<string>();
        foreach (var (method, pattern, family) in protectedRoutes)
        {
            foreach (var credential in Presented.Where(c => c.ValidFor != family))
            {
                using var r = await http.SendAsync(Request(baseAddress, method, pattern, credential));

                // Webhooks take no API credential at all: without their signature every call is 401.
                if (r.StatusCode != HttpStatusCode.Unauthorized)
                {
                    wrong.Add($"{method} {pattern} with {credential.Name}: {(int)r.StatusCode}");
                }
            }
        }

        Assert.Empty(wrong);
        var admin = new HttpClient { BaseAddress = baseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", AdminKey) } };
        var stats = await Stats(admin);
        Assert.Equal((0L, 0L, 0L, 0L), (stats["queued_events"]!.GetValue<long>(), stats["profiles"]!.GetValue<long>(), stats["events"]!.GetValue<long>(), stats["devices"]!.GetValue<long>()));

        // The control: each API route answers its own credential with something other than 401 (or a route miss), so the
        // 401s above came from the credential check, not from requests that could never have succeeded.
        foreach (var (method, pattern, family) in protectedRoutes.Where(r => r.Family != Family.Webhook))
        {
            var own = Presented.First(c => c.ValidFor == family);
            using var r = await http.SendAsync(Request(baseAddress, method, pattern, own));
            var body = await r.Content.ReadAsStringAsync();
            Assert.False(r.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.MethodNotAllowed
                || (r.StatusCode == HttpStatusCode.NotFound && body.Length == 0), $"{method} {pattern} with {own.Name}: {(int)r.StatusCode} {body}");
        }
    }

    [Fact]
    public async Task KeyOverItsLimit_Gets429WithRetryAfter_RejectedCallsAreNotQueued_OtherKeysWork_AndItRecovers()
    {
        var baseAddress = await StartAsync("--Nudge:RateLimits:Track:PerSecond=1", "--Nudge:RateLimits:Track:Burst=3");
        var track = new HttpClient { BaseAddress = baseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Basic", Basic(SiteId, ApiKey)) } };
        var segment = new HttpClient { BaseAddress = baseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Basic", Basic(WriteKey, "")) } };
        var admin = new HttpClient { BaseAddress = baseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", AdminKey) } };
        var anonymous = new HttpClient { BaseAddress = baseAddress };

        // Calls that fail authentication are answered 401 before they can spend the key's budget.
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/api/v1/customers/rl/events", Json("""{"name":"anonymous"}"""))).StatusCode);
        }

        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 10; i++)
        {
            answers.Add(await track.PostAsync("/api/v1/customers/rl/events", Json($$"""{"name":"burst","id":"burst-{{i}}"}""")));
        }

        // Three from the bucket, perhaps one more if the refill completed a token during the burst; the rest refused.
        var accepted = answers.TakeWhile(a => a.StatusCode == HttpStatusCode.OK).Count();
        Assert.InRange(accepted, 3, 4);
        var refused = answers.Skip(accepted).ToList();
        Assert.All(refused, a => Assert.Equal(HttpStatusCode.TooManyRequests, a.StatusCode));
        var last = refused[^1];
        var retryAfter = int.Parse(Assert.Single(last.Headers.GetValues("Retry-After")), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 2);
        var body = JsonNode.Parse(await last.Content.ReadAsStringAsync())!;
        Assert.Equal(("Nudge:RateLimits:Track", retryAfter), (body["limit"].Str(), body["retry_after"]!.GetValue<int>()));

        // Another key's bucket is untouched.
        Assert.Equal(HttpStatusCode.OK, (await segment.PostAsync("/v1/track", Json("""{"userId":"rl","event":"segment","messageId":"seg-1"}"""))).StatusCode);
        Assert.Equal(accepted + 1, (await Stats(admin))["queued_events"]!.GetValue<long>());

        await Task.Delay(TimeSpan.FromSeconds(retryAfter) + TimeSpan.FromMilliseconds(200));
        Assert.Equal(HttpStatusCode.OK, (await track.PostAsync("/api/v1/customers/rl/events", Json("""{"name":"after","id":"after-1"}"""))).StatusCode);
        Assert.Equal(accepted + 2, (await Stats(admin))["queued_events"]!.GetValue<long>());
    }

    [Fact]
    public async Task FailedAuthenticationFlood_BlocksTheAddress_EvenForTheRightKey_UntilRetryAfter()
    {
        var baseAddress = await StartAsync("--Nudge:RateLimits:AuthFailures:PerSecond=1", "--Nudge:RateLimits:AuthFailures:Burst=5");
        var guess = new HttpClient { BaseAddress = baseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Basic", Basic(SiteId, "guess")) } };
        var admin = new HttpClient { BaseAddress = baseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", AdminKey) } };
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await guess.PostAsync("/api/v1/customers/bf/events", Json("""{"name":"guess"}"""))).StatusCode);
        }

        // Once the address is over its budget, a right key is refused unchecked too: a guess that happens to be right is not
        // revealed. The budget refills by a token a second, which can complete between two calls: then spend it and look again.
        HttpResponseMessage? blocked = null;
        for (var round = 0; round < 3 && blocked is null; round++)
        {
            for (var i = 0; i < 5; i++)
            {
                if ((await guess.PostAsync("/api/v1/customers/bf/events", Json("""{"name":"guess"}"""))).StatusCode == HttpStatusCode.TooManyRequests)
                {
                    break;
                }
            }

            var right = await admin.GetAsync("/admin/v1/stats");
            blocked = right.StatusCode == HttpStatusCode.TooManyRequests ? right : null;
        }

        Assert.NotNull(blocked);
        var retryAfter = int.Parse(Assert.Single(blocked.Headers.GetValues("Retry-After")), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 2);
        Assert.Equal("Nudge:RateLimits:AuthFailures", JsonNode.Parse(await blocked.Content.ReadAsStringAsync())!["limit"].Str());

        await Task.Delay(TimeSpan.FromSeconds(retryAfter) + TimeSpan.FromMilliseconds(200));
        var stats = await Stats(admin);
        Assert.Equal((0L, 0L), (stats["queued_events"]!.GetValue<long>(), stats["events"]!.GetValue<long>()));
    }

    [Fact]
    public async Task InvalidRateLimitSettings_StopStartUpNamingThem()
    {
        var e = await Assert.ThrowsAsync<NudgeConfigurationException>(() =>
            StartAsync("--Nudge:RateLimits:Track:PerSecond=0", "--Nudge:RateLimits:Admin:PerSecond=10", "--Nudge:RateLimits:Admin:Burst=5"));
        Assert.Contains("Nudge:RateLimits:Track:PerSecond", e.Message, StringComparison.Ordinal);
        Assert.Contains("Nudge:RateLimits:Admin:Burst", e.Message, StringComparison.Ordinal);
    }
}
