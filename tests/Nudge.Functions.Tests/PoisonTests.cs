using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;

namespace Nudge.Functions.Tests;

/// <summary>
/// Failed invocations: a non-2xx answer makes Service Bus redeliver, up to MaxDeliveryCount (5 in these tests), then
/// dead-letter. On the last delivery, send and run-step record their message or instance as ended (dead_lettered).
/// </summary>
public sealed class PoisonTests(FunctionsHostFixture f) : IClassFixture<FunctionsHostFixture>
{
    private async Task<JsonObject> DraftWelcomeAsync(string person)
    {
        await f.IngestAndProcessAsync("PUT", $"/api/v1/customers/{person}", $$"""{"email":"{{person}}@example.com"}""");
        var r = await f.IngestAndProcessAsync("POST", $"/api/v1/customers/{person}/events", $$"""{"name":"signed_up","id":"evt-{{person}}"}""");
        return Assert.Single(r.Messages("sends"));
    }

    [Fact]
    public async Task Send_StoreFailsBeforeTheLastDelivery_FailsAndLeavesTheMessageToRetry()
    {
        var send = await DraftWelcomeAsync("poison-a");
        f.Faults.FailOn["TryClaimMessageAsync"] = true;
        HostResponse r;
        try
        {
            r = await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send, deliveryCount: FunctionsHostFixture.MaxDeliveryCount - 1));
        }
        finally
        {
            f.Faults.FailOn.TryRemove("TryClaimMessageAsync", out _);
        }

        Assert.Equal(500, r.Status);
        Assert.Contains("injected store fault", r.Body["error"]!.GetValue<string>());
        var message = await f.Store.GetMessageAsync(send["messageId"]!.GetValue<string>());
        Assert.Equal(MessageStatus.Drafted, message!.Status);
        Assert.True(message.Ready);

        // The redelivery succeeds once the store is back.
        var retry = await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send, deliveryCount: FunctionsHostFixture.MaxDeliveryCount));
        Assert.Equal(200, retry.Status);
        Assert.Equal(MessageStatus.Delivered, (await f.Store.GetMessageAsync(message.Id))!.Status);
    }

    [Fact]
    public async Task Send_FailsOnTheLastDelivery_RecordsTheMessageFailedAsDeadLettered()
    {
        var send = await DraftWelcomeAsync("poison-b");
        f.Faults.FailOn["TryClaimMessageAsync"] = true;
        HostResponse r;
        try
        {
            r = await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send, deliveryCount: FunctionsHostFixture.MaxDeliveryCount));
        }
        finally
        {
            f.Faults.FailOn.TryRemove("TryClaimMessageAsync", out _);
        }

        Assert.Equal(500, r.Status);
        var message = await f.Store.GetMessageAsync(send["messageId"]!.GetValue<string>());
        Assert.Equal(MessageStatus.Failed, message!.Status);
        Assert.Equal("dead_lettered", message.Reason);
        Assert.False(message.Ready);
        Assert.Contains(message.History, h => h.Status == MessageStatus.Failed && h.Reason!.StartsWith("dead_lettered: InvalidOperationException: injected store fault", StringComparison.Ordinal));

        // Nothing offers it again.
        var sweep = await f.InvokeAsync("journey-timers", HostPayloads.Timer());
        Assert.DoesNotContain(sweep.Messages("sends"), s => s["messageId"]!.GetValue<string>() == message.Id);
    }

    [Fact]
    public async Task Send_RecordingFailsOnTheLastDelivery_MessageClaimedButStillEndsFailed()
    {
        var send = await DraftWelcomeAsync("poison-c");
        f.Faults.FailOn["TryRecordSendOutcomeAsync"] = true;
        HostResponse r;
        try
        {
            r = await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send, deliveryCount: FunctionsHostFixture.MaxDeliveryCount + 3));
        }
        finally
        {
            f.Faults.FailOn.TryRemove("TryRecordSendOutcomeAsync", out _);
        }

        Assert.Equal(500, r.Status);
        var message = await f.Store.GetMessageAsync(send["messageId"]!.GetValue<string>());
        Assert.Equal(MessageStatus.Failed, message!.Status);
        Assert.Equal("dead_lettered", message.Reason);
    }

    [Fact]
    public async Task RunStep_FailsOnTheLastDelivery_EndsTheInstanceAsDeadLettered()
    {
        await f.IngestAndProcessAsync("PUT", "/api/v1/customers/poison-d", """{"email":"poison-d@example.com"}""");
        await f.IngestAndProcessAsync("POST", "/api/v1/customers/poison-d/events", """{"name":"browsed","id":"evt-poison-d"}""");
        var key = (await f.Store.ResolveAsync(new Identifier(IdentifierKind.Id, "poison-d")))!;
        var instance = Assert.Single(await f.Store.GetInstancesAsync(key));
        f.Clock.Advance(TimeSpan.FromMinutes(11));
        var step = new JsonObject { ["instanceId"] = instance.Id, ["profileKey"] = key };

        f.Faults.FailOn["GetDevicesAsync"] = true;
        HostResponse early, last;
        try
        {
            early = await f.InvokeAsync("run-step", HostPayloads.ServiceBus("run-step", "step", step, deliveryCount: 1));
            Assert.NotNull((await f.Store.GetInstancesAsync(key)).Single().WakeAt);
            last = await f.InvokeAsync("run-step", HostPayloads.ServiceBus("run-step", "step", step, deliveryCount: FunctionsHostFixture.MaxDeliveryCount));
        }
        finally
        {
            f.Faults.FailOn.TryRemove("GetDevicesAsync", out _);
        }

        Assert.Equal(500, early.Status);
        Assert.Equal(500, last.Status);
        var ended = Assert.Single(await f.Store.GetInstancesAsync(key));
        Assert.Equal(InstanceStatus.Exited, ended.Status);
        Assert.Equal("dead_lettered", ended.EndReason);
        Assert.Null(ended.WakeAt);
        Assert.Contains("injected store fault", ended.StepResults.Values.Last()["error"]!.GetValue<string>());
        var sweep = await f.InvokeAsync("journey-timers", HostPayloads.Timer());
        Assert.DoesNotContain(sweep.Messages("steps"), s => s["instanceId"]!.GetValue<string>() == instance.Id);
    }

    [Fact]
    public async Task ProcessEvent_StoreFails_FailsAndChangesNothing()
    {
        var before = await f.Store.CountAsync();
        var op = await f.IngestAsync("PUT", "/api/v1/customers/poison-e", """{"email":"poison-e@example.com"}""");
        f.Faults.FailOn["PutProfileAsync"] = true;
        HostResponse r;
        try
        {
            r = await f.InvokeAsync("process-event", HostPayloads.ServiceBus("process-event", "event", op, deliveryCount: FunctionsHostFixture.MaxDeliveryCount));
        }
        finally
        {
            f.Faults.FailOn.TryRemove("PutProfileAsync", out _);
        }

        Assert.Equal(500, r.Status);
        Assert.Equal(before, await f.Store.CountAsync());
        Assert.Null(await f.Store.ResolveAsync(new Identifier(IdentifierKind.Id, "poison-e")));
    }
}
