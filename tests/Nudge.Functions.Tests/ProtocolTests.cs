using System.Text.Json.Nodes;
using Nudge.Core.Profiles;

namespace Nudge.Functions.Tests;

/// <summary>The custom handler protocol itself: readiness, value encodings, and invocations that cannot be read.</summary>
public sealed class ProtocolTests(FunctionsHostFixture f) : IClassFixture<FunctionsHostFixture>
{
    [Fact]
    public async Task ReadinessProbe_GetRoot_Answers()
    {
        using var r = await f.Host.GetAsync("/");

        Assert.True(r.IsSuccessStatusCode);
        Assert.Equal("127.0.0.1", f.BaseAddress.Host);
    }

    [Theory]
    [InlineData(BodyEncoding.Quoted)]
    [InlineData(BodyEncoding.Unquoted)]
    [InlineData(BodyEncoding.Object)]
    [InlineData(BodyEncoding.Base64)]
    public async Task ProcessEvent_EveryBodyEncoding_IsRead(BodyEncoding encoding)
    {
        var person = "enc-" + encoding.ToString().ToLowerInvariant();
        var op = await f.IngestAsync("PUT", $"/api/v1/customers/{person}", """{"first_name":"Enc"}""");

        var r = await f.InvokeAsync("process-event", HostPayloads.ServiceBus("process-event", "event", op, encoding: encoding));

        Assert.Equal(200, r.Status);
        Assert.NotNull(await f.Store.ResolveAsync(new Identifier(IdentifierKind.Id, person)));
    }

    [Fact]
    public async Task StepMessage_FieldsQuotedOrNot_AreRead()
    {
        // The step refers to no instance: a no-op, which still proves the quoted field was read (else 400).
        var quotedField = new JsonObject { ["instanceId"] = HostPayloads.Quote("missing-instance"), ["profileKey"] = "p" };
        var r = await f.InvokeAsync("run-step", HostPayloads.ServiceBus("run-step", "step", quotedField, encoding: BodyEncoding.Unquoted));

        Assert.Equal(200, r.Status);
    }

    [Fact]
    public async Task Metadata_DeliveryCountAsNumberOrQuoted_IsRead()
    {
        var payload = JsonNode.Parse(HostPayloads.ServiceBus("send", "message", new JsonObject { ["messageId"] = "none" }))!.AsObject();
        payload["Metadata"]!["DeliveryCount"] = 3;
        var asNumber = await f.InvokeAsync("send", payload.ToJsonString());
        payload["Metadata"]!["DeliveryCount"] = HostPayloads.Quote("3");
        var quoted = await f.InvokeAsync("send", payload.ToJsonString());

        Assert.Equal(200, asNumber.Status);
        Assert.Equal(200, quoted.Status);
    }

    public static TheoryData<string, string> BadInvocations => new()
    {
        { "process-event", "this is not json" },
        { "process-event", "[1,2,3]" },
        { "process-event", """{"Metadata":{}}""" },
        { "process-event", """{"Data":{"other":"{}"},"Metadata":{}}""" },
        { "process-event", HostPayloads.ServiceBus("process-event", "event", new JsonObject { ["hello"] = "world" }) },
        { "process-event", HostPayloads.ServiceBus("process-event", "event", JsonNode.Parse("""{"kind":"identify","messageId":"m-bad-1","source":"track","timestamp":"2026-06-01T14:00:00Z","receivedAt":"2026-06-01T14:00:00Z"}""")!.AsObject()) },
        { "process-event", """{"Data":{"event":"\"not an object\""},"Metadata":{}}""" },
        { "run-step", HostPayloads.ServiceBus("run-step", "step", new JsonObject { ["profileKey"] = "p" }) },
        { "send", HostPayloads.ServiceBus("send", "message", new JsonObject { ["id"] = "x" }) },
        { "send", """{"Data":{"message":12},"Metadata":{}}""" },
        { "journey-timers", """{"Data":{},"Metadata":{}}""" },
        { "ingest", """{"Data":{"req":{"Method":"PUT"}},"Metadata":{}}""" },
        { "admin", """{"Data":{"req":{"Url":"https://x/health"}},"Metadata":{}}""" },
    };

    [Theory]
    [MemberData(nameof(BadInvocations))]
    public async Task BadInvocation_FailsWith400AndChangesNothing(string function, string payload)
    {
        var before = await f.Store.CountAsync();

        var r = await f.InvokeAsync(function, payload);

        Assert.Equal(400, r.Status);
        Assert.False(string.IsNullOrEmpty(r.Body["error"]!.GetValue<string>()));
        Assert.Empty(r.Outputs);
        Assert.Equal(before, await f.Store.CountAsync());
    }

    [Fact]
    public async Task EveryFunction_AnswersWithOutputsThatAreObjects()
    {
        // HostResponse checks every answer; this touches each function once more with a valid invocation.
        var op = await f.IngestAsync("PUT", "/api/v1/customers/shape-1", """{"email":"shape-1@example.com"}""");
        var answers = new[]
        {
            await f.InvokeAsync("process-event", HostPayloads.ServiceBus("process-event", "event", op)),
            await f.InvokeAsync("run-step", HostPayloads.ServiceBus("run-step", "step", new JsonObject { ["instanceId"] = "none", ["profileKey"] = "none" })),
            await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", new JsonObject { ["messageId"] = "none" })),
            await f.InvokeAsync("journey-timers", HostPayloads.Timer()),
            await f.InvokeAsync("admin", HostPayloads.Http("admin", "GET", "/health")),
            await f.InvokeAsync("webhooks", HostPayloads.Http("webhooks", "GET", "/u/not-a-token")),
        };

        Assert.All(answers, a => Assert.Equal(200, a.Status));
        Assert.All(answers, a => Assert.True(a.Body["Outputs"] is JsonObject));
        Assert.Equal(404, answers[^1].Res!["statusCode"]!.GetValue<int>());
    }
}
