using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

public sealed class SegmentApiTests(NudgeServerFixture server) : IClassFixture<NudgeServerFixture>
{
    private readonly string _run = Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task EveryCallType_IsAcceptedAndStored()
    {
        var user = $"{_run}-seg";
        await Ok(server.Segment.PostAsync("/v1/identify", Json($$$"""
            {"userId":"{{{user}}}","traits":{"email":"{{{_run}}}@Seg.test","plan":"pro","age":31},"messageId":"{{{_run}}}-m0"}
            """)));
        await Ok(server.Segment.PostAsync("/v1/track", Json($$$"""
            {"userId":"{{{user}}}","event":"add_to_cart","properties":{"cart_id":"c1","value":19.99},"messageId":"{{{_run}}}-m1","timestamp":"2026-11-20T10:00:00Z"}
            """)));
        await Ok(server.Segment.PostAsync("/v1/page", Json($$$"""{"userId":"{{{user}}}","name":"Home","properties":{"path":"/"}}""")));
        await Ok(server.Segment.PostAsync("/v1/screen", Json($$$"""{"userId":"{{{user}}}","name":"Cart"}""")));
        await Ok(server.Segment.PostAsync("/v1/group", Json($$$"""{"userId":"{{{user}}}","groupId":"acme","traits":{"seats":5}}""")));
        await server.DrainAsync();

        var p = (await server.ProfileAsync(user))!;
        Assert.Equal($"{_run}@seg.test", p["email"].Str());
        Assert.Equal(31, p["attributes"]!["age"]!.GetValue<int>());
        var cart = Assert.Single(p.Events("add_to_cart"));
        Assert.Equal(DateTimeOffset.Parse("2026-11-20T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture), cart["timestamp"]!.GetValue<DateTimeOffset>());
        Assert.Equal("segment", cart["source"].Str());
        Assert.Equal("page", Assert.Single(p.Events("Home"))["type"].Str());
        Assert.Equal("screen", Assert.Single(p.Events("Cart"))["type"].Str());
        Assert.Equal("acme", Assert.Single(p.Events("group"))["data"]!["groupId"].Str());
    }

    [Fact]
    public async Task Batch_BothShapesAccepted_WriteKeyInBody()
    {
        var user = $"{_run}-batch";
        var withKey = server.NoAuth;
        await Ok(withKey.PostAsync("/v1/batch", Json($$$"""
            {"writeKey":"{{{WriteKey}}}","sentAt":"2026-11-23T10:00:00Z","batch":[
              {"type":"identify","userId":"{{{user}}}","traits":{"tier":"a"}},
              {"type":"track","userId":"{{{user}}}","event":"one"}]}
            """)));
        await Ok(server.Segment.PostAsync("/v1/batch", Json($$$"""
            {"batch":[{"type":"track","userId":"{{{user}}}","event":"two"},{"type":"screen","userId":"{{{user}}}","name":"S"}]}
            """)));
        await server.DrainAsync();
        var p = (await server.ProfileAsync(user))!;
        Assert.Equal("a", p["attributes"]!["tier"].Str());
        Assert.Single(p.Events("one"));
        Assert.Single(p.Events("two"));
        Assert.Single(p.Events("S"));
    }

    [Fact]
    public async Task Batch_WithOneBadCall_IsRejectedWholeNamingTheCall()
    {
        await server.DrainAsync();
        var before = (await server.StatsAsync()).ToJsonString();
        var r = await server.Segment.PostAsync("/v1/batch", Json($$$"""
            {"batch":[{"type":"track","userId":"{{{_run}}}-whole","event":"fine"},{"type":"track","userId":"{{{_run}}}-whole","properties":{}},{"type":"launch","userId":"x"}]}
            """));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var body = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        var fields = body["errors"]!.AsArray().Select(e => e!["field"].Str()).ToList();
        Assert.Equal(["batch[1].event", "batch[2].type"], fields);
        Assert.False(body["success"]!.GetValue<bool>());
        await server.DrainAsync();
        Assert.Equal(before, (await server.StatsAsync()).ToJsonString());
        Assert.Null(await server.ProfileAsync($"{_run}-whole"));
    }

    [Fact]
    public async Task MessageId_ReplayedAcrossCalls_StoredOnce()
    {
        var user = $"{_run}-replay";
        var call = $$$"""{"userId":"{{{user}}}","event":"purchase","messageId":"{{{_run}}}-same"}""";
        await Ok(server.Segment.PostAsync("/v1/track", Json(call)));
        await Ok(server.Segment.PostAsync("/v1/batch", Json($$$"""{"batch":[{"type":"track","userId":"{{{user}}}","event":"purchase","messageId":"{{{_run}}}-same"}]}""")));
        await Ok(server.Segment.PostAsync("/v1/track", Json(call)));
        await server.DrainAsync();
        Assert.Single((await server.ProfileAsync(user))!.Events("purchase"));
    }

    [Fact]
    public async Task IdentifyWithAnonymousId_MergesAnonymousActivity()
    {
        var anon = $"{_run}-anon";
        await Ok(server.Segment.PostAsync("/v1/track", Json($$$"""{"anonymousId":"{{{anon}}}","event":"add_to_cart","properties":{"cart_id":"c7"}}""")));
        await server.DrainAsync();
        await Ok(server.Segment.PostAsync("/v1/identify", Json($$$"""{"userId":"{{{_run}}}-login","anonymousId":"{{{anon}}}","traits":{"name":"Lee"}}""")));
        await server.DrainAsync();
        var p = (await server.ProfileAsync($"{_run}-login"))!;
        Assert.Equal("c7", Assert.Single(p.Events("add_to_cart"))["data"]!["cart_id"].Str());
    }

    [Fact]
    public async Task Alias_MergesPreviousIdIntoUserId()
    {
        await Ok(server.Segment.PostAsync("/v1/identify", Json($$$"""{"userId":"{{{_run}}}-old","traits":{"color":"red"}}""")));
        await server.DrainAsync();
        await Ok(server.Segment.PostAsync("/v1/alias", Json($$$"""{"previousId":"{{{_run}}}-old","userId":"{{{_run}}}-new"}""")));
        await server.DrainAsync();
        var p = (await server.ProfileAsync($"{_run}-new"))!;
        Assert.Equal("red", p["attributes"]!["color"].Str());
        Assert.Equal(p["cio_id"].Str(), (await server.ProfileAsync($"{_run}-old"))!["cio_id"].Str());
    }

    [Fact]
    public async Task DeviceCreatedAndDeleted_RegisterAndRemoveTheDevice()
    {
        var user = $"{_run}-dev";
        await Ok(server.Segment.PostAsync("/v1/track", Json($$$$"""
            {"userId":"{{{{user}}}}","event":"Device Created or Updated","timestamp":"2026-11-22T08:00:00Z",
             "context":{"device":{"token":"{{{{_run}}}}-fcm-token","type":"android","id":"phone-9","model":"Pixel 9"},"os":{"version":"15"},"app":{"version":"3.2.0"},"locale":"en-GB"}}
            """)));
        await server.DrainAsync();
        var d = Assert.Single((await server.ProfileAsync(user))!.Devices());
        Assert.Equal("android", d["platform"].Str());
        Assert.Equal("phone-9", d["device_id"].Str());
        Assert.Equal("3.2.0", d["attributes"]!["app_version"].Str());
        Assert.Equal("15", d["attributes"]!["device_os"].Str());
        Assert.Equal("Pixel 9", d["attributes"]!["device_model"].Str());

        // Any later call carrying the token refreshes last_used.
        await Ok(server.Segment.PostAsync("/v1/screen", Json($$$$"""
            {"userId":"{{{{user}}}}","name":"Home","timestamp":"2026-11-23T09:00:00Z","context":{"device":{"token":"{{{{_run}}}}-fcm-token"}}}
            """)));
        await server.DrainAsync();
        d = Assert.Single((await server.ProfileAsync(user))!.Devices());
        Assert.Equal(DateTimeOffset.Parse("2026-11-23T09:00:00Z", System.Globalization.CultureInfo.InvariantCulture), d["last_used"]!.GetValue<DateTimeOffset>());

        await Ok(server.Segment.PostAsync("/v1/track", Json($$$$"""
            {"userId":"{{{{user}}}}","event":"Device Deleted","context":{"device":{"token":"{{{{_run}}}}-fcm-token"}}}
            """)));
        await server.DrainAsync();
        Assert.Empty((await server.ProfileAsync(user))!.Devices());
    }

    public static TheoryData<string, string, string> BadCalls => new()
    {
        { "/v1/track", """{"event":"x"}""", "userId" },
        { "/v1/track", """{"userId":"u"}""", "event" },
        { "/v1/track", """{"userId":{"id":1},"event":"x"}""", "userId" },
        { "/v1/track", """{"userId":"u","event":"x","timestamp":"last tuesday"}""", "timestamp" },
        { "/v1/track", """{"userId":"u","event":"x","properties":[1]}""", "properties" },
        { "/v1/track", """{"userId":"u","event":"Device Created or Updated","context":{"device":{"token":"t"}}}""", "context.device.type" },
        { "/v1/track", """{"userId":"u","event":"Device Created or Updated","context":{"device":{"token":"t","type":"blackberry"}}}""", "context.device.type" },
        { "/v1/track", """{"userId":"u","event":"Device Deleted"}""", "context.device.token" },
        { "/v1/track", """{"type":"identify","userId":"u","event":"x"}""", "type" },
        { "/v1/identify", """{"userId":"u","traits":{"email":"nope"}}""", "traits.email" },
        { "/v1/identify", """{"userId":"u","traits":"plain"}""", "traits" },
        { "/v1/alias", """{"userId":"u"}""", "previousId" },
        { "/v1/alias", """{"previousId":"p"}""", "userId" },
        { "/v1/group", """{"userId":"u"}""", "groupId" },
        { "/v1/batch", """{"batch":{}}""", "batch" },
        { "/v1/batch", """{"batch":[]}""", "batch" },
        { "/v1/batch", """{"batch":["x"]}""", "batch[0]" },
        { "/v1/batch", """{"batch":[{"userId":"u","event":"x"}]}""", "batch[0].type" },
    };

    [Theory]
    [MemberData(nameof(BadCalls))]
    public async Task BadCall_Gets400NamingTheField(string path, string body, string field)
    {
        await server.DrainAsync();
        var before = (await server.StatsAsync()).ToJsonString();
        var r = await server.Segment.PostAsync(path, Json(body));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var errors = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["errors"]!.AsArray();
        Assert.Contains(errors, e => e!["field"].Str() == field);
        await server.DrainAsync();
        Assert.Equal(before, (await server.StatsAsync()).ToJsonString());
    }

    [Fact]
    public async Task CallOver32KB_Is400()
    {
        var r = await server.Segment.PostAsync("/v1/track", Json($$$"""{"userId":"u","event":"x","properties":{"pad":"{{{new string('p', 33 * 1024)}}}"}}"""));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("the limit is 32768", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BatchOver500KB_Is400AndBatchItemOver32KB_Is400()
    {
        var item = $$$"""{"type":"track","userId":"u","event":"x","properties":{"pad":"{{{new string('p', 20 * 1024)}}}"}}""";
        var big = await server.Segment.PostAsync("/v1/batch", Json("{\"batch\":[" + string.Join(",", Enumerable.Repeat(item, 30)) + "]}"));
        Assert.Equal(HttpStatusCode.BadRequest, big.StatusCode);
        Assert.Contains("the limit is 512000", await big.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var fat = $$$"""{"batch":[{"type":"track","userId":"u","event":"x","properties":{"pad":"{{{new string('p', 33 * 1024)}}}"}}]}""";
        var r = await server.Segment.PostAsync("/v1/batch", Json(fat));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("batch[0]", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SentAtCorrectingOutOfTheCalendar_Is400NotAServerError()
    {
        var r = await server.Segment.PostAsync("/v1/track", Json("""{"userId":"u","event":"x","originalTimestamp":"9999-12-31T23:59:59Z","sentAt":"0001-01-01T00:00:00Z"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("sentAt: corrects originalTimestamp to a time outside years 1 to 9999", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var batch = await server.Segment.PostAsync("/v1/batch", Json("""{"sentAt":"9999-12-31T00:00:00Z","batch":[{"type":"track","userId":"u","event":"x","originalTimestamp":"0001-01-01T00:00:01Z"}]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, batch.StatusCode);
        Assert.Contains("batch[0].sentAt", await batch.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WronglyTypedSentAt_Is400EvenWithATimestamp()
    {
        var r = await server.Segment.PostAsync("/v1/identify", Json("""{"userId":"u","timestamp":"2026-06-01T00:00:00Z","sentAt":true,"originalTimestamp":{}}"""));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var text = await r.Content.ReadAsStringAsync();
        Assert.Contains("sentAt", text, StringComparison.Ordinal);
        Assert.Contains("originalTimestamp", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadWriteKey_Is401InHeaderOrBody()
    {
        var wrongHeader = server.Client(new AuthenticationHeaderValue("Basic", Basic("not-the-key", "")));
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrongHeader.PostAsync("/v1/track", Json("""{"userId":"u","event":"x"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.NoAuth.PostAsync("/v1/track", Json("""{"userId":"u","event":"x"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.NoAuth.PostAsync("/v1/batch", Json("""{"writeKey":"nope","batch":[{"type":"track","userId":"u","event":"x"}]}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.NoAuth.PostAsync("/v1/batch", Json("""{"writeKey":42,"batch":[]}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.NoAuth.PostAsync("/v1/track", Json("{broken"))).StatusCode);
        var trackApiKey = server.Client(new AuthenticationHeaderValue("Basic", Basic(SiteId, ApiKey)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await trackApiKey.PostAsync("/v1/track", Json("""{"userId":"u","event":"x"}"""))).StatusCode);
    }

    [Fact]
    public async Task WriteKeyInBody_WithBadFields_Is400Not401()
    {
        var r = await server.NoAuth.PostAsync("/v1/track", Json($$$"""{"writeKey":"{{{WriteKey}}}","userId":"u"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
    }

    private static async Task Ok(Task<HttpResponseMessage> call)
    {
        var r = await call;
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{(int)r.StatusCode}: {text}");
        Assert.Equal("""{"success":true}""", text);
    }
}
