using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

public sealed class TrackApiTests(NudgeServerFixture server) : IClassFixture<NudgeServerFixture>
{
    private readonly string _run = Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task IdentifyThenDeviceThenEvent_ProfileHasAttributesDeviceAndEvent()
    {
        var id = $"{_run}-u1";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}", Json("""
            {"email":"Shopper@Example.com","first_name":"Sam","orders":3,"vip":true,"phone":"+44 20 7946 0958","sms_consent":true,"created_at":1700000000}
            """)));
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}/devices", Json("""
            {"device":{"id":"tok-1-abcdefghijkl","platform":"android","last_used":1763000000,"attributes":{"app_version":"2.4.1","push_enabled":"true"}}}
            """)));
        await Ok(server.Track.PostAsync($"/api/v1/customers/{id}/events", Json($$$"""
            {"name":"add_to_cart","id":"{{{_run}}}-e1","timestamp":1763000100,"data":{"cart_id":"c-1","value":89.5}}
            """)));
        await server.DrainAsync();

        var p = (await server.ProfileAsync(id))!;
        Assert.Equal(id, p["id"].Str());
        Assert.Equal("shopper@example.com", p["email"].Str());
        Assert.Equal(3, p["attributes"]!["orders"]!.GetValue<int>());
        Assert.True(p["attributes"]!["vip"]!.GetValue<bool>());
        Assert.Equal("+442079460958", p["consent"]!["sms_phone"].Str());
        Assert.True(p["consent"]!["sms_consent"]!.GetValue<bool>());
        Assert.NotNull(p["consent"]!["sms_consent_at"]);
        var device = Assert.Single(p.Devices());
        Assert.Equal("android", device["platform"].Str());
        Assert.Equal("2.4.1", device["attributes"]!["app_version"].Str());
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1763000000), device["last_used"]!.GetValue<DateTimeOffset>());
        var e = Assert.Single(p.Events("add_to_cart"));
        Assert.Equal(89.5, e["data"]!["value"]!.GetValue<double>());
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1763000100), e["timestamp"]!.GetValue<DateTimeOffset>());
        Assert.Single(p.Events("device_registered"));
    }

    [Fact]
    public async Task ResponseShape_IsCustomerIosEmptyObject()
    {
        var r = await server.Track.PutAsync($"/api/v1/customers/{_run}-shape", Json("{}"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("application/json", r.Content.Headers.ContentType!.MediaType);
        Assert.Equal("{}", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Addressing_ByEmailAndByCioId_ReachesTheSamePerson()
    {
        var id = $"{_run}-addr";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}", Json($$$"""{"email":"{{{_run}}}@shop.test"}""")));
        await server.DrainAsync();
        var cio = (await server.ProfileAsync(id))!["cio_id"].Str();

        await Ok(server.Track.PutAsync($"/api/v1/customers/{_run}@SHOP.test", Json("""{"tier":"gold"}""")));
        await Ok(server.Track.PostAsync($"/api/v1/customers/{cio}/events", Json("""{"name":"viewed"}""")));
        await server.DrainAsync();

        var p = (await server.ProfileAsync($"{_run}@shop.test"))!;
        Assert.Equal(id, p["id"].Str());
        Assert.Equal("gold", p["attributes"]!["tier"].Str());
        Assert.Single(p.Events("viewed"));
    }

    [Fact]
    public async Task Identify_ByEmailWithBodyId_SetsTheId()
    {
        await Ok(server.Track.PutAsync($"/api/v1/customers/{_run}-e@shop.test", Json($$$"""{"id":"{{{_run}}}-later"}""")));
        await server.DrainAsync();
        var p = (await server.ProfileAsync($"{_run}-later"))!;
        Assert.Equal($"{_run}-e@shop.test", p["email"].Str());
    }

    [Fact]
    public async Task Event_ReplayedWithSameId_StoredOnce()
    {
        var id = $"{_run}-dedupe";
        var body = $$$"""{"name":"purchase","id":"{{{_run}}}-order-1","data":{"order_id":"o1"}}""";
        for (var i = 0; i < 3; i++)
        {
            await Ok(server.Track.PostAsync($"/api/v1/customers/{id}/events", Json(body)));
        }

        await server.DrainAsync();
        Assert.Single((await server.ProfileAsync(id))!.Events("purchase"));
    }

    [Fact]
    public async Task AnonymousEvents_MergeIntoPersonOnIdentifyWithAnonymousId()
    {
        var anon = $"{_run}-anon";
        await Ok(server.Track.PostAsync("/api/v1/events", Json($$$"""{"name":"viewed_product","anonymous_id":"{{{anon}}}","data":{"sku":"S1"}}""")));
        await Ok(server.Track.PostAsync("/api/v1/events", Json($$$"""{"name":"add_to_cart","anonymous_id":"{{{anon}}}","data":{"cart_id":"c"}}""")));
        await server.DrainAsync();
        var anonProfile = (await server.Admin.GetStringAsync($"/admin/v1/profiles?anonymous_id={anon}"));
        Assert.Contains("viewed_product", anonProfile, StringComparison.Ordinal);

        await Ok(server.Track.PutAsync($"/api/v1/customers/{_run}-known", Json($$$"""{"anonymous_id":"{{{anon}}}","name":"Kim"}""")));
        await server.DrainAsync();

        var p = (await server.ProfileAsync($"{_run}-known"))!;
        Assert.Single(p.Events("viewed_product"));
        Assert.Single(p.Events("add_to_cart"));
        Assert.Contains(anon, p["anonymous_ids"]!.AsArray().Select(a => a.Str()));
        Assert.Single(p.Events("profiles_merged"));

        // Later anonymous activity with the same anonymous id lands on the known person.
        await Ok(server.Track.PostAsync("/api/v1/events", Json($$$"""{"name":"app_opened","anonymous_id":"{{{anon}}}"}""")));
        await server.DrainAsync();
        Assert.Single((await server.ProfileAsync($"{_run}-known"))!.Events("app_opened"));
    }

    [Fact]
    public async Task AnonymousDevice_FollowsThePersonOnIdentify()
    {
        var anon = $"{_run}-anon-dev";
        await Ok(server.Segment.PostAsync("/v1/track", Json($$$$"""
            {"anonymousId":"{{{{anon}}}}","event":"Device Created or Updated","context":{"device":{"token":"{{{{_run}}}}-anon-token","type":"ios"}}}
            """)));
        await Ok(server.Track.PutAsync($"/api/v1/customers/{_run}-devowner", Json($$$"""{"anonymous_id":"{{{anon}}}"}""")));
        await server.DrainAsync();
        var device = Assert.Single((await server.ProfileAsync($"{_run}-devowner"))!.Devices());
        Assert.Equal($"{_run}-anon-token", device["token"].Str());
    }

    [Fact]
    public async Task EventWithoutAnonymousId_IsAcceptedAndBelongsToNobody()
    {
        var before = (await server.StatsAsync())["profiles"]!.GetValue<long>();
        await Ok(server.Track.PostAsync("/api/v1/events", Json("""{"name":"store_opened"}""")));
        await server.DrainAsync();
        Assert.Equal(before, (await server.StatsAsync())["profiles"]!.GetValue<long>());
    }

    [Fact]
    public async Task Device_RegisteredForAnotherPerson_MovesToThem()
    {
        var token = $"{_run}-shared-token";
        var body = Json($$$"""{"device":{"id":"{{{token}}}","platform":"ios"}}""");
        await Ok(server.Track.PutAsync($"/api/v1/customers/{_run}-alice/devices", body));
        await server.DrainAsync();
        await Ok(server.Track.PutAsync($"/api/v1/customers/{_run}-bob/devices", Json($$$"""{"device":{"id":"{{{token}}}","platform":"ios"}}""")));
        await server.DrainAsync();

        var alice = (await server.ProfileAsync($"{_run}-alice"))!;
        var bob = (await server.ProfileAsync($"{_run}-bob"))!;
        Assert.Empty(alice.Devices());
        Assert.Equal(token, Assert.Single(bob.Devices())["token"].Str());
        var removed = Assert.Single(alice.Events("device_removed"));
        Assert.Equal("token_moved_to_another_person", removed["data"]!["reason"].Str());
        Assert.Single(bob.Events("device_registered"));
    }

    [Fact]
    public async Task Device_RotatedTokenWithSamePhysicalId_KeepsOneDevice()
    {
        var id = $"{_run}-rotate";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}/devices", Json("""{"device":{"id":"old-token-000001","platform":"ios","attributes":{"device_id":"phone-A"}}}""")));
        await server.DrainAsync();
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}/devices", Json("""{"device":{"id":"new-token-000002","platform":"ios","attributes":{"device_id":"phone-A"}}}""")));
        await server.DrainAsync();

        var p = (await server.ProfileAsync(id))!;
        Assert.Equal("new-token-000002", Assert.Single(p.Devices())["token"].Str());
        var updated = Assert.Single(p.Events("device_updated"));
        Assert.Equal("token_rotated", updated["data"]!["reason"].Str());
    }

    [Fact]
    public async Task DeleteDevice_RemovesItAndRecordsIt()
    {
        var id = $"{_run}-deldev";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}/devices", Json("""{"device":{"id":"tok/with+chars","platform":"android"}}""")));
        await server.DrainAsync();
        await Ok(server.Track.DeleteAsync($"/api/v1/customers/{id}/devices/{Uri.EscapeDataString("tok/with+chars")}"));
        await server.DrainAsync();
        var p = (await server.ProfileAsync(id))!;
        Assert.Empty(p.Devices());
        Assert.Equal("deleted_by_client", Assert.Single(p.Events("device_removed"))["data"]!["reason"].Str());
    }

    [Fact]
    public async Task SuppressAndUnsuppress_ToggleTheFlag()
    {
        var id = $"{_run}-supp";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}", Json("{}")));
        await Ok(server.Track.PostAsync($"/api/v1/customers/{id}/suppress", null));
        await server.DrainAsync();
        Assert.True((await server.ProfileAsync(id))!["suppressed"]!.GetValue<bool>());
        await Ok(server.Track.PostAsync($"/api/v1/customers/{id}/unsuppress", null));
        await server.DrainAsync();
        Assert.False((await server.ProfileAsync(id))!["suppressed"]!.GetValue<bool>());
    }

    [Fact]
    public async Task DeleteCustomer_RemovesProfileDevicesAndEvents()
    {
        var id = $"{_run}-gone";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}/devices", Json($$$"""{"device":{"id":"{{{_run}}}-gone-tok","platform":"ios"}}""")));
        await Ok(server.Track.PostAsync($"/api/v1/customers/{id}/events", Json("""{"name":"x"}""")));
        await server.DrainAsync();
        await Ok(server.Track.DeleteAsync($"/api/v1/customers/{id}"));
        await server.DrainAsync();
        Assert.Null(await server.ProfileAsync(id));
        var r = await server.Admin.GetAsync($"/admin/v1/profiles/{id}");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
    }

    [Fact]
    public async Task MergeCustomers_MovesEventsDevicesAndNewerAttributesWin()
    {
        var primary = $"{_run}-primary";
        var secondary = $"{_run}-secondary";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{primary}", Json("""{"plan":"basic","_timestamp":1700000000,"city":"Oslo"}""")));
        await Ok(server.Track.PutAsync($"/api/v1/customers/{secondary}", Json("""{"plan":"pro","_timestamp":1700000500,"shoe_size":44}""")));
        await Ok(server.Track.PutAsync($"/api/v1/customers/{secondary}/devices", Json($$$"""{"device":{"id":"{{{_run}}}-sec-token","platform":"android"}}""")));
        await Ok(server.Track.PostAsync($"/api/v1/customers/{secondary}/events", Json("""{"name":"wishlisted"}""")));
        await server.DrainAsync();

        await Ok(server.Track.PostAsync("/api/v1/merge_customers", Json($$$"""{"primary":{"id":"{{{primary}}}"},"secondary":{"id":"{{{secondary}}}"}}""")));
        await server.DrainAsync();

        var p = (await server.ProfileAsync(primary))!;
        Assert.Equal("pro", p["attributes"]!["plan"].Str());
        Assert.Equal("Oslo", p["attributes"]!["city"].Str());
        Assert.Equal(44, p["attributes"]!["shoe_size"]!.GetValue<int>());
        Assert.Single(p.Devices());
        Assert.Single(p.Events("wishlisted"));
        Assert.Contains(secondary, p["alias_ids"]!.AsArray().Select(a => a.Str()));

        // The secondary's id now resolves to the primary: nothing is split again by a late event.
        Assert.Equal(p["cio_id"].Str(), (await server.ProfileAsync(secondary))!["cio_id"].Str());
    }

    [Fact]
    public async Task OutOfOrderUpdates_NewerTimestampWins()
    {
        var id = $"{_run}-ooo";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}", Json("""{"tier":"gold","_timestamp":1700000900}""")));
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}", Json("""{"tier":"silver","_timestamp":1700000100}""")));
        await server.DrainAsync();
        Assert.Equal("gold", (await server.ProfileAsync(id))!["attributes"]!["tier"].Str());
    }

    [Fact]
    public async Task EmptyValue_RemovesAttribute()
    {
        var id = $"{_run}-rm";
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}", Json("""{"nickname":"Bo","_timestamp":1700000000}""")));
        await Ok(server.Track.PutAsync($"/api/v1/customers/{id}", Json("""{"nickname":"","_timestamp":1700000001}""")));
        await server.DrainAsync();
        Assert.Null((await server.ProfileAsync(id))!["attributes"]!["nickname"]);
    }

    [Fact]
    public async Task UpdateOnly_DoesNotCreateAPerson()
    {
        await Ok(server.Track.PutAsync($"/api/v1/customers/{_run}-nobody", Json("""{"_update":true,"a":1}""")));
        await server.DrainAsync();
        Assert.Null(await server.ProfileAsync($"{_run}-nobody"));
    }

    public static TheoryData<string, string, string, string> BadRequests => new()
    {
        { "PUT", "/customers/{id}", "{not json", "request body is not valid JSON" },
        { "PUT", "/customers/{id}", "[1,2]", "request body must be a JSON object" },
        { "PUT", "/customers/{id}", """{"sms_consent":"maybe"}""", "attributes.sms_consent: must be a boolean" },
        { "PUT", "/customers/{id}", """{"phone":"12"}""", "attributes.phone:" },
        { "PUT", "/customers/{id}", """{"email":"not-an-email"}""", "email: 'not-an-email' is not an email address" },
        { "PUT", "/customers/{id}", """{"id":"someone-else"}""", "id: 'someone-else' differs from the identifier in the path" },
        { "PUT", "/customers/{id}", """{"_timestamp":"yesterday"}""", "_timestamp: must be a Unix timestamp in seconds" },
        { "PUT", "/customers/{id}", "{\"" + new string('a', 151) + "\":1}", "attribute name is 151 bytes, the limit is 150" },
        { "PUT", "/customers/{id}", "{\"bio\":\"" + new string('b', 1001) + "\"}", "attributes.bio: value is 1001 bytes, the limit is 1000" },
        { "PUT", "/customers/{id}", "{" + string.Join(",", Enumerable.Range(0, 301).Select(i => $"\"a{i}\":{i}")) + "}", "attributes: has 301 attributes, the limit is 300" },
        { "POST", "/customers/{id}/events", """{"data":{}}""", "name: is required" },
        { "POST", "/customers/{id}/events", """{"name":42}""", "name: must be a string, got a number" },
        { "POST", "/customers/{id}/events", "{\"name\":\"" + new string('n', 101) + "\"}", "name: is 101 bytes, the limit is 100" },
        { "POST", "/customers/{id}/events", """{"name":"x","timestamp":1763000000000}""", "timestamp: 1763000000000 looks like milliseconds" },
        { "POST", "/customers/{id}/events", """{"name":"x","type":"click"}""", "type: 'click' is not one of event, page, screen" },
        { "POST", "/customers/{id}/events", """{"name":"x","data":"text"}""", "data: must be an object, got a string" },
        { "POST", "/customers/{id}/events", "{\"name\":\"x\",\"data\":{\"blob\":\"" + new string('d', 100_001) + "\"}}", "data: is 100012 bytes, the limit is 100000" },
        { "POST", "/events", """{"anonymous_id":"a1"}""", "name: is required" },
        { "PUT", "/customers/{id}/devices", """{"id":"tok","platform":"ios"}""", "device: is required" },
        { "PUT", "/customers/{id}/devices", """{"device":{"platform":"ios"}}""", "device.id: is required" },
        { "PUT", "/customers/{id}/devices", """{"device":{"id":"tok","platform":"windows"}}""", "device.platform: 'windows' is not a supported platform; use ios or android" },
        { "PUT", "/customers/{id}/devices", """{"device":{"id":"tok"}}""", "device.platform: is required (ios or android)" },
        { "PUT", "/customers/{id}/devices", """{"device":{"id":"tok","platform":"ios","last_used":"now"}}""", "device.last_used: must be a Unix timestamp" },
        { "POST", "/merge_customers", """{"primary":{"id":"a","email":"a@b.co"},"secondary":{"id":"b"}}""", "primary: must hold exactly one of id, email or cio_id, got 2 keys" },
        { "POST", "/merge_customers", """{"primary":{"id":"a"}}""", "secondary: is required" },
        { "POST", "/merge_customers", """{"primary":{"phone":"a"},"secondary":{"id":"b"}}""", "primary: 'phone' is not an identifier" },
        { "POST", "/merge_customers", """{"primary":{"id":"a"},"secondary":{"id":"a"}}""", "secondary: is the same person as primary" },
        { "POST", "/customers/{id}/events", """{"name":"x","name":"y"}""", "request body has the key 'name' more than once" },
        { "POST", "/customers/{id}/events", """{"name":"x","data":{"a":1,"a":2}}""", "data: has the key 'a' more than once" },
        { "PUT", "/customers/{id}", """{"plan":"\ud800"}""", "plan: is not valid Unicode text" },
        { "POST", "/customers/{id}/events", """{"name":"x","data":{"items":[{"sku":"\udc00"}]}}""", "data.items[0].sku: is not valid Unicode text" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadInput_Gets400NamingTheFieldAndChangesNothing(string method, string path, string body, string expected)
    {
        await server.DrainAsync();
        var before = await server.StatsAsync();
        var url = "/api/v1" + path.Replace("{id}", $"{_run}-bad", StringComparison.Ordinal);
        var r = await server.Track.SendAsync(new HttpRequestMessage(new HttpMethod(method), url) { Content = Json(body) });

        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var json = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        var errors = json["meta"]!["errors"]!.AsArray().Select(e => e.Str()).ToList();
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
        await server.DrainAsync();
        Assert.Equal(before.ToJsonString(), (await server.StatsAsync()).ToJsonString());
        Assert.Null(await server.ProfileAsync($"{_run}-bad"));
    }

    [Fact]
    public async Task InvalidUtf8InAnUnreadField_Is400NamingIt_NotAServerError()
    {
        await server.DrainAsync();
        var before = await server.StatsAsync();
        byte[] body = [.. "{\"name\":\"x\",\"data\":{\"note\":\"a"u8, 0xC3, .. "\"}}"u8];
        var r = await server.Track.PostAsync($"/api/v1/customers/{_run}-utf8/events", new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } });

        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("data.note: is not valid Unicode text", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await server.DrainAsync();
        Assert.Equal(before.ToJsonString(), (await server.StatsAsync()).ToJsonString());
    }

    [Fact]
    public async Task PathIdentifierOver150Bytes_Is400()
    {
        var r = await server.Track.PutAsync($"/api/v1/customers/{new string('x', 151)}", Json("{}"));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("identifier: is 151 bytes, the limit is 150", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BodyOverOneMebibyte_Is413()
    {
        var r = await server.Track.PostAsync($"/api/v1/customers/{_run}-big/events", Json("{\"name\":\"x\",\"pad\":\"" + new string('p', 1024 * 1024) + "\"}"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
        Assert.Contains("over the limit", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    public static TheoryData<string?> BadCredentials => new()
    {
        null,
        "Basic " + Basic(SiteId, "wrong-key"),
        "Basic " + Basic("wrong-site", ApiKey),
        "Basic " + Basic(WriteKey, ""),
        "Bearer " + AdminKey,
        "Basic !!!not-base64",
    };

    [Theory]
    [MemberData(nameof(BadCredentials))]
    public async Task EveryTrackEndpoint_RejectsBadCredentialsWith401AndChangesNothing(string? authorization)
    {
        var client = server.Client(authorization is null ? null : AuthenticationHeaderValue.Parse(authorization));
        await server.DrainAsync();
        var before = (await server.StatsAsync()).ToJsonString();
        var id = $"{_run}-intruder";
        var calls = new (HttpMethod, string, string?)[]
        {
            (HttpMethod.Put, $"/api/v1/customers/{id}", "{}"),
            (HttpMethod.Delete, $"/api/v1/customers/{id}", null),
            (HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"x"}"""),
            (HttpMethod.Post, "/api/v1/events", """{"name":"x","anonymous_id":"a"}"""),
            (HttpMethod.Put, $"/api/v1/customers/{id}/devices", """{"device":{"id":"t","platform":"ios"}}"""),
            (HttpMethod.Delete, $"/api/v1/customers/{id}/devices/t", null),
            (HttpMethod.Post, $"/api/v1/customers/{id}/suppress", null),
            (HttpMethod.Post, $"/api/v1/customers/{id}/unsuppress", null),
            (HttpMethod.Post, "/api/v1/merge_customers", """{"primary":{"id":"a"},"secondary":{"id":"b"}}"""),
        };
        foreach (var (method, url, body) in calls)
        {
            var r = await client.SendAsync(new HttpRequestMessage(method, url) { Content = body is null ? null : Json(body) });
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Contains("Unauthorized", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await server.DrainAsync();
        Assert.Equal(before, (await server.StatsAsync()).ToJsonString());
    }

    private static async Task Ok(Task<HttpResponseMessage> call)
    {
        var r = await call;
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{(int)r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
    }
}
