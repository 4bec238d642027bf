using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Nudge.Core.Ingest;
using Nudge.Core.Messages;
using Nudge.Core.Storage;
using Nudge.Delivery.Email;
using Nudge.Pipeline;

namespace Nudge.Functions.Tests;

/// <summary>
/// The HTTP functions (ingest, webhooks, admin): the host's Data.req runs through the embedded server's own endpoints,
/// the response comes back as Outputs.res, and what the endpoint enqueued comes back as the events output.
/// </summary>
public sealed class HttpFunctionTests(FunctionsHostFixture f) : IClassFixture<FunctionsHostFixture>
{
    private static Dictionary<string, string> Track => new() { ["Authorization"] = FunctionsHostFixture.TrackAuth };

    [Fact]
    public async Task Ingest_TrackIdentify_AnswersResOkAndEmitsTheOpOnEvents()
    {
        var r = await f.InvokeAsync("ingest", HostPayloads.Http("ingest", "PUT", "/api/v1/customers/dana-1",
            """{"email":"Dana@Example.com","first_name":"Dana","plan":"pro"}""", Track, routeParams: new JsonObject { ["api"] = "api", ["path"] = "v1/customers/dana-1" }));

        Assert.Equal(200, r.Status);
        Assert.Equal(200, r.Res!["statusCode"]!.GetValue<int>());
        Assert.Equal("{}", r.Res["body"]!.GetValue<string>());
        Assert.StartsWith("application/json", r.Res["headers"]!["Content-Type"]!.GetValue<string>());
        var op = IngestOpJson.Deserialize(Assert.Single(r.Messages("events")).ToJsonString());
        Assert.Equal(OpKind.Identify, op.Kind);
        Assert.Equal("dana-1", op.Target!.Value);
        Assert.Equal("dana@example.com", op.SetEmail);
        Assert.Equal("Dana", op.Attributes!["first_name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Ingest_WrongCredentials_AnswersRes401AndEmitsNothing()
    {
        var r = await f.InvokeAsync("ingest", HostPayloads.Http("ingest", "PUT", "/api/v1/customers/dana-2", """{"email":"x@example.com"}""",
            new Dictionary<string, string> { ["Authorization"] = "Basic " + Convert.ToBase64String("site-fn:wrong"u8.ToArray()) }));

        Assert.Equal(200, r.Status);
        Assert.Equal(401, r.Res!["statusCode"]!.GetValue<int>());
        Assert.Equal("Basic realm=\"track\"", r.Res["headers"]!["WWW-Authenticate"]!.GetValue<string>());
        Assert.Empty(r.Messages("events"));
    }

    [Fact]
    public async Task Ingest_InvalidBody_AnswersRes400WithTheErrorsAndEmitsNothing()
    {
        var r = await f.InvokeAsync("ingest", HostPayloads.Http("ingest", "POST", "/api/v1/customers/dana-3/events", """{"data":{}}""", Track));

        Assert.Equal(400, r.Res!["statusCode"]!.GetValue<int>());
        Assert.Contains("name", JsonNode.Parse(r.Res["body"]!.GetValue<string>())!["meta"]!["errors"]!.ToJsonString());
        Assert.Empty(r.Messages("events"));
    }

    [Fact]
    public async Task Ingest_SegmentBatch_EmitsOneOpPerCall()
    {
        var body = """
            {"batch":[
              {"type":"identify","userId":"seg-1","traits":{"email":"seg1@example.com"},"messageId":"m-seg-1"},
              {"type":"track","userId":"seg-1","event":"Product Viewed","properties":{"sku":"A1"},"messageId":"m-seg-2"}
            ]}
            """;
        var auth = new Dictionary<string, string> { ["Authorization"] = "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(FunctionsHostFixture.WriteKey + ":")) };

        var r = await f.InvokeAsync("ingest", HostPayloads.Http("ingest", "POST", "/v1/batch", body, auth, queryAsString: true));

        Assert.Equal(200, r.Res!["statusCode"]!.GetValue<int>());
        Assert.Equal(["m-seg-1", "m-seg-2"], r.Messages("events").Select(m => m["messageId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Ingest_EscapedSlashInPath_ReachesTheEndpointAsInTheEmbeddedServer()
    {
        var op = await f.IngestAsync("PUT", "/api/v1/customers/team%2F7", """{"first_name":"Slash"}""");

        Assert.Equal("team/7", op["target"]!["value"]!.GetValue<string>());
    }

    [Fact]
    public async Task Ingest_UnknownPath_Answers404()
    {
        var r = await f.InvokeAsync("ingest", HostPayloads.Http("ingest", "POST", "/api/v2/nothing", "{}", Track));

        Assert.Equal(404, r.Res!["statusCode"]!.GetValue<int>());
        Assert.Empty(r.Messages("events"));
    }

    [Fact]
    public async Task Ingest_UrlPointingAtAFunction_IsNotDispatchedToIt()
    {
        var r = await f.InvokeAsync("ingest", HostPayloads.Http("ingest", "POST", "/process-event", "{}", Track));

        Assert.Equal(404, r.Res!["statusCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task Webhooks_UnsubscribePost_EmitsTheConsentChangeOnEvents()
    {
        var token = f.App.Services.GetRequiredService<UnsubscribeLinks>().Create("abc123", "msg-1");

        var get = await f.InvokeAsync("webhooks", HostPayloads.Http("webhooks", "GET", "/u/" + token));
        var post = await f.InvokeAsync("webhooks", HostPayloads.Http("webhooks", "POST", "/u/" + token, "List-Unsubscribe=One-Click",
            contentType: "application/x-www-form-urlencoded"));

        Assert.Equal(200, get.Res!["statusCode"]!.GetValue<int>());
        Assert.Contains("<form method=\"post\"", get.Res["body"]!.GetValue<string>());
        Assert.Empty(get.Messages("events"));
        Assert.Equal(200, post.Res!["statusCode"]!.GetValue<int>());
        var op = IngestOpJson.Deserialize(Assert.Single(post.Messages("events")).ToJsonString());
        Assert.Equal("abc123", op.Target!.Value);
        Assert.True(op.Attributes!["unsubscribed"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Webhooks_EmailOpenPixel_EmitsAReportOnEventsThatProcessEventApplies()
    {
        await f.IngestAndProcessAsync("PUT", "/api/v1/customers/olga", """{"email":"olga@example.com","first_name":"Olga"}""");
        var signedUp = await f.IngestAndProcessAsync("POST", "/api/v1/customers/olga/events", """{"name":"signed_up","id":"evt-olga-1"}""");
        var send = Assert.Single(signedUp.Messages("sends"));
        var messageId = send["messageId"]!.GetValue<string>();
        Assert.Equal(200, (await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send))).Status);
        var token = f.App.Services.GetRequiredService<EmailTracking>().OpenToken(messageId);

        var bad = await f.InvokeAsync("webhooks", HostPayloads.Http("webhooks", "GET", "/e/o/" + token[..^2] + "xx"));
        var pixel = await f.InvokeAsync("webhooks", HostPayloads.Http("webhooks", "GET", "/e/o/" + token));

        Assert.Equal(200, bad.Res!["statusCode"]!.GetValue<int>());
        Assert.Empty(bad.Messages("events"));
        Assert.Equal(200, pixel.Res!["statusCode"]!.GetValue<int>());
        Assert.Equal("image/gif", pixel.Res["headers"]!["Content-Type"]!.GetValue<string>());
        var op = Assert.Single(pixel.Messages("events"));
        Assert.Equal(OpKind.MessageReport, IngestOpJson.Deserialize(op.ToJsonString()).Kind);

        var applied = await f.InvokeAsync("process-event", HostPayloads.ServiceBus("process-event", "event", op));

        Assert.Equal(200, applied.Status);
        var message = await f.Store.GetMessageAsync(messageId);
        Assert.Equal(MessageStatus.Opened, message!.Status);
        Assert.Contains(await f.Store.GetDeliveryEventsAsync(new DeliveryEventQuery(DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue, 1000)),
            e => e.MessageId == messageId && e.Metric == MessageStatus.Opened);
    }

    [Fact]
    public async Task Admin_DeleteProfile_Answers202AndEmitsTheEraseOnEvents_OnlyWithTheAdminKey()
    {
        var auth = new Dictionary<string, string> { ["Authorization"] = "Bearer " + FunctionsHostFixture.AdminKey };

        var r = await f.InvokeAsync("admin", HostPayloads.Http("admin", "DELETE", "/nudge-admin/v1/profiles/Erase.Me%40example.com", headers: auth));
        var noKey = await f.InvokeAsync("admin", HostPayloads.Http("admin", "DELETE", "/nudge-admin/v1/profiles/erase.me%40example.com"));

        Assert.Equal(202, r.Res!["statusCode"]!.GetValue<int>());
        var op = IngestOpJson.Deserialize(Assert.Single(r.Messages("events")).ToJsonString());
        Assert.Equal((OpKind.DeleteProfile, "erase.me@example.com", "admin"), (op.Kind, op.Target!.Value, op.Source));
        Assert.Equal(401, noKey.Res!["statusCode"]!.GetValue<int>());
        Assert.Empty(noKey.Messages("events"));
    }

    [Fact]
    public async Task Admin_PublicNudgeAdminPath_IsServedByTheAdminEndpoints()
    {
        var auth = new Dictionary<string, string> { ["Authorization"] = "Bearer " + FunctionsHostFixture.AdminKey };

        var stats = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/nudge-admin/v1/stats", headers: auth));
        var noKey = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/nudge-admin/v1/stats"));
        var health = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/health"));

        Assert.Equal(200, stats.Res!["statusCode"]!.GetValue<int>());
        Assert.NotNull(JsonNode.Parse(stats.Res["body"]!.GetValue<string>())!["profiles"]);
        Assert.Equal(401, noKey.Res!["statusCode"]!.GetValue<int>());
        Assert.Equal("""{"status":"ok","store":"ok"}""", health.Res!["body"]!.GetValue<string>());  // no queue counts: Service Bus holds the queues
        Assert.DoesNotContain(stats.Outputs, o => o.Key != "res");
    }

    [Fact]
    public async Task Health_StoreUnreachable_Is503NamingOnlyTheErrorType_ThenOkAgain()
    {
        f.Faults.FailOn[nameof(IStore.GetCheckpointAsync)] = true;
        HostResponse down;
        try
        {
            down = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/health"));
        }
        finally
        {
            f.Faults.FailOn.TryRemove(nameof(IStore.GetCheckpointAsync), out _);
        }

        var up = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/health"));

        Assert.Equal(503, down.Res!["statusCode"]!.GetValue<int>());
        Assert.Equal("""{"status":"unhealthy","store":"unreachable","error":"InvalidOperationException"}""", down.Res["body"]!.GetValue<string>());
        Assert.Equal(200, up.Res!["statusCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task Admin_MessageLog_IsServedUnderTheNudgeAdminPath()
    {
        var auth = new Dictionary<string, string> { ["Authorization"] = "Bearer " + FunctionsHostFixture.AdminKey };

        var list = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/nudge-admin/v1/messages?limit=5", headers: auth));
        var bad = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/nudge-admin/v1/messages?channel=fax", headers: auth));
        var noKey = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/nudge-admin/v1/messages"));

        Assert.Equal(200, list.Res!["statusCode"]!.GetValue<int>());
        Assert.NotNull(JsonNode.Parse(list.Res["body"]!.GetValue<string>())!["messages"]);
        Assert.Equal(400, bad.Res!["statusCode"]!.GetValue<int>());
        Assert.StartsWith("channel:", JsonNode.Parse(bad.Res["body"]!.GetValue<string>())!["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(401, noKey.Res!["statusCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task Admin_Dashboard_IsServedWithTheNudgeAdminApiBaseAndNoKey()
    {
        var page = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/dashboard"));
        var script = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/dashboard/dashboard.js"));

        Assert.Equal(200, page.Res!["statusCode"]!.GetValue<int>());
        var html = page.Res["body"]!.GetValue<string>();
        // The Functions host keeps /admin for itself: the page must call the admin API at its public path.
        Assert.Contains("data-api=\"/nudge-admin/v1\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain(FunctionsHostFixture.AdminKey, html, StringComparison.Ordinal);
        Assert.StartsWith("text/html", page.Res["headers"]!["Content-Type"]!.GetValue<string>());
        Assert.NotNull(page.Res["headers"]!["Content-Security-Policy"]);
        Assert.Equal(200, script.Res!["statusCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task HttpResponse_HasEveryFieldTheHostRequires()
    {
        var r = await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/health"));

        // HttpOutputBindingResponse marks StatusCode, Status, Body and Headers as required in current hosts.
        foreach (var field in new[] { "statusCode", "status", "headers", "body" })
        {
            Assert.NotNull(r.Res![field]);
        }

        Assert.IsType<JsonObject>(r.Res!["headers"]);
        Assert.Equal(System.Text.Json.JsonValueKind.String, r.Res["body"]!.GetValueKind());
    }
}
