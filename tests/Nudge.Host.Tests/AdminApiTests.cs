using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

public sealed class AdminApiTests(NudgeServerFixture server) : IClassFixture<NudgeServerFixture>
{
    private readonly string _run = Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task Health_NeedsNoCredential()
    {
        var r = await server.NoAuth.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("ok", JsonNode.Parse(await r.Content.ReadAsStringAsync())!["status"].Str());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong")]
    [InlineData("Basic " + "c2l0ZS10ZXN0OmFwaS1rZXktdGVzdA==")] // the Track API credentials
    public async Task AdminEndpoints_RejectMissingOrWrongCredentials(string? authorization)
    {
        var c = server.Client(authorization is null ? null : AuthenticationHeaderValue.Parse(authorization));
        foreach (var url in new[] { "/admin/v1/stats", "/admin/v1/profiles/someone", "/admin/v1/profiles?email=a@b.co" })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await c.GetAsync(url)).StatusCode);
        }
    }

    [Fact]
    public async Task Profile_FoundByIdEmailCioIdAndQuery_404WhenUnknown()
    {
        var id = $"{_run}-who";
        await server.Track.PutAsync($"/api/v1/customers/{id}", Json($$$"""{"email":"{{{_run}}}@who.test","anonymous_id":"{{{_run}}}-a"}"""));
        await server.DrainAsync();
        var byId = (await server.ProfileAsync(id))!;
        var cio = byId["cio_id"].Str();
        Assert.StartsWith("cio_", cio, StringComparison.Ordinal);
        Assert.Equal(cio, (await server.ProfileAsync($"{_run}@who.test"))!["cio_id"].Str());
        Assert.Equal(cio, (await server.ProfileAsync(cio))!["cio_id"].Str());
        foreach (var q in new[] { $"email={_run}@WHO.test", $"id={id}", $"anonymous_id={_run}-a" })
        {
            var p = JsonNode.Parse(await server.Admin.GetStringAsync($"/admin/v1/profiles?{q}"))!;
            Assert.Equal(cio, p["cio_id"].Str());
        }

        var missing = await server.Admin.GetAsync($"/admin/v1/profiles/{_run}-nobody");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("no person", await missing.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Admin.GetAsync("/admin/v1/profiles")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Admin.GetAsync($"/admin/v1/profiles/{id}?events=9999")).StatusCode);
    }

    [Fact]
    public async Task Profile_RecentEventsAreNewestFirstAndLimited()
    {
        var id = $"{_run}-recent";
        for (var i = 0; i < 5; i++)
        {
            await server.Track.PostAsync($"/api/v1/customers/{id}/events", Json($$$"""{"name":"e{{{i}}}","timestamp":{{{1763000000 + i}}}}"""));
        }

        await server.DrainAsync();
        var p = JsonNode.Parse(await server.Admin.GetStringAsync($"/admin/v1/profiles/{id}?events=3"))!.AsObject();
        Assert.Equal(["e4", "e3", "e2"], p.Events().Select(e => e["name"].Str()));
    }

    [Fact]
    public async Task ConsentHistory_RecordsEachChangeWithSource()
    {
        var id = $"{_run}-consent";
        await server.Track.PutAsync($"/api/v1/customers/{id}", Json("""{"sms_consent":true,"phone":"+1 415 555 2671","_timestamp":1763000000}"""));
        await server.DrainAsync();
        await server.Segment.PostAsync("/v1/identify", Json($$$"""{"userId":"{{{id}}}","traits":{"sms_consent":false},"timestamp":"2026-11-22T00:00:00Z","context":{"ip":"203.0.113.7"}}"""));
        await server.DrainAsync();
        var consent = (await server.ProfileAsync(id))!["consent"]!;
        Assert.False(consent["sms_consent"]!.GetValue<bool>());
        Assert.Equal("203.0.113.7", consent["sms_consent_ip"].Str());
        var history = consent["history"]!.AsArray();
        Assert.Equal(2, history.Count);
        Assert.Equal("track", history[0]!["source"].Str());
        Assert.Equal("segment", history[1]!["source"].Str());
        Assert.False(history[1]!["value"]!.GetValue<bool>());
    }
}
