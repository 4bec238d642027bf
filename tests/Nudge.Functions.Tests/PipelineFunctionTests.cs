using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;

namespace Nudge.Functions.Tests;

/// <summary>
/// The queue- and timer-triggered functions chained as the Functions host would chain them: each output is fed, in the
/// host's encoding, to the function that its queue triggers.
/// </summary>
/// <summary>The stage functions end to end, on the SQLite store (the handler's default).</summary>
public sealed class PipelineFunctionTests(FunctionsHostFixture f) : PipelineFunctions(f), IClassFixture<FunctionsHostFixture>;

/// <summary>
/// The same stage functions on the Cosmos DB store (the emulator), as the Function App runs them in Azure: the same
/// handler code over the other store adapter.
/// </summary>
public sealed class CosmosPipelineFunctionTests(CosmosFunctionsHostFixture f) : PipelineFunctions(f), IClassFixture<CosmosFunctionsHostFixture>;

/// <summary>The stage functions, driven with the Functions host's payloads; each test class above picks the store.</summary>
public abstract class PipelineFunctions(FunctionsHostFixture f)
{
    [Fact]
    public async Task IngestOutput_ThroughProcessEventAndSend_StoresTheProfileAndSendsTheWelcome()
    {
        var identify = await f.IngestAndProcessAsync("PUT", "/api/v1/customers/ana", """{"email":"ana@example.com","first_name":"Ana"}""");
        Assert.Empty(identify.Messages("sends"));
        var key = await f.Store.ResolveAsync(new Identifier(IdentifierKind.Id, "ana"));
        var profile = await f.Store.GetProfileAsync(key!);
        Assert.Equal("ana@example.com", profile!.Email);

        var signedUp = await f.IngestAndProcessAsync("POST", "/api/v1/customers/ana/events", """{"name":"signed_up","id":"evt-ana-1"}""");

        var send = Assert.Single(signedUp.Messages("sends"));
        var messageId = send["messageId"]!.GetValue<string>();
        var drafted = await f.Store.GetMessageAsync(messageId);
        Assert.Equal(MessageStatus.Drafted, drafted!.Status);
        Assert.Equal(["ana@example.com"], drafted.Recipients);

        var sent = await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send));

        Assert.Equal(200, sent.Status);
        Assert.Empty(sent.Outputs);
        var message = await f.Store.GetMessageAsync(messageId);
        Assert.Equal(MessageStatus.Delivered, message!.Status); // sent, and the sandbox reports it delivered
        Assert.Contains(await f.Store.GetOutboxAsync(50), o => o.MessageId == messageId && o.Content["subject"]!.GetValue<string>() == "Welcome, Ana");
    }

    [Fact]
    public async Task ProcessEvent_SameOpDeliveredTwice_AppliesOnceAndEmitsSendsOnce()
    {
        await f.IngestAndProcessAsync("PUT", "/api/v1/customers/ben", """{"email":"ben@example.com"}""");
        var op = await f.IngestAsync("POST", "/api/v1/customers/ben/events", """{"name":"signed_up","id":"evt-ben-1"}""");

        var first = await f.InvokeAsync("process-event", HostPayloads.ServiceBus("process-event", "event", op, deliveryCount: 1));
        var again = await f.InvokeAsync("process-event", HostPayloads.ServiceBus("process-event", "event", op, deliveryCount: 2));

        Assert.Single(first.Messages("sends"));
        Assert.Equal(200, again.Status);
        Assert.Empty(again.Messages("sends"));
        var key = await f.Store.ResolveAsync(new Identifier(IdentifierKind.Id, "ben"));
        Assert.Single(await f.Store.GetRecentEventsAsync(key!, 50), e => e.Name == "signed_up");
    }

    [Fact]
    public async Task Reporting_TimerInvocation_RunsWithoutOutputs_EvenWhenNothingIsConfigured()
    {
        var r = await f.InvokeAsync("reporting", HostPayloads.Timer(pastDue: true));

        Assert.Equal(200, r.Status);
        Assert.Empty(r.Messages("steps"));
        Assert.Empty(r.Messages("sends"));
    }

    [Fact]
    public async Task Reporting_TimerInvocation_PurgesWhatIsPastRetention()
    {
        // Another invocation of this fixture may have taken this hour's turn: the next is due an hour on.
        if (await f.Store.GetCheckpointAsync(Nudge.Host.Workers.RetentionPurger.CheckpointName) is not null)
        {
            f.Clock.Advance(Nudge.Host.Workers.RetentionPurger.Interval);
        }

        var now = f.Clock.GetUtcNow();
        var (old, recent) = (Sent("retention-old", now.AddDays(-366)), Sent("retention-recent", now.AddDays(-364)));
        await using (var s = await f.Store.OpenSessionAsync())
        {
            await s.TryAddMessageAsync(old);
            await s.TryAddMessageAsync(recent);
            await s.CommitAsync();
        }

        var r = await f.InvokeAsync("reporting", HostPayloads.Timer(pastDue: false));

        Assert.Equal(200, r.Status);
        Assert.Null(await f.Store.GetMessageAsync(old.Id));
        Assert.NotNull(await f.Store.GetMessageAsync(recent.Id));
    }

    private static Message Sent(string id, DateTimeOffset created) => new()
    {
        Id = id,
        ProfileKey = "retention-k",
        InstanceId = "retention-i",
        JourneyId = "j",
        StepId = "s",
        Channel = Channel.Email,
        Status = MessageStatus.Sent,
        CreatedAt = created,
    };

    [Fact]
    public async Task JourneyTimers_DueInstance_EmitsAStepThatRunStepTurnsIntoASend()
    {
        await f.IngestAndProcessAsync("PUT", "/api/v1/customers/cleo", """{"email":"cleo@example.com"}""");
        var browsed = await f.IngestAndProcessAsync("POST", "/api/v1/customers/cleo/events", """{"name":"browsed","id":"evt-cleo-1"}""");
        Assert.Empty(browsed.Messages("sends"));
        var key = (await f.Store.ResolveAsync(new Identifier(IdentifierKind.Id, "cleo")))!;
        var instance = Assert.Single(await f.Store.GetInstancesAsync(key));
        Assert.Equal(f.Clock.GetUtcNow() + TimeSpan.FromMinutes(10), instance.WakeAt);

        var early = await f.InvokeAsync("journey-timers", HostPayloads.Timer());
        Assert.DoesNotContain(early.Messages("steps"), s => s["instanceId"]!.GetValue<string>() == instance.Id);

        f.Clock.Advance(TimeSpan.FromMinutes(10));
        var timers = await f.InvokeAsync("journey-timers", HostPayloads.Timer());

        Assert.Equal(200, timers.Status);
        var step = Assert.Single(timers.Messages("steps"), s => s["instanceId"]!.GetValue<string>() == instance.Id);
        Assert.Equal(key, step["profileKey"]!.GetValue<string>());

        var ran = await f.InvokeAsync("run-step", HostPayloads.ServiceBus("run-step", "step", step));

        Assert.Equal(200, ran.Status);
        var send = Assert.Single(ran.Messages("sends"));
        var message = await f.Store.GetMessageAsync(send["messageId"]!.GetValue<string>());
        Assert.Equal("followup", message!.StepId);

        // The same step delivered again (at least once) changes nothing and sends nothing more.
        var again = await f.InvokeAsync("run-step", HostPayloads.ServiceBus("run-step", "step", step, deliveryCount: 2));
        Assert.Equal(200, again.Status);
        Assert.Empty(again.Messages("sends"));

        // Until it is sent, the sweep offers the message again (a lost sends output costs one timer period).
        var sweep = await f.InvokeAsync("journey-timers", HostPayloads.Timer(pastDue: true));
        Assert.Contains(sweep.Messages("sends"), s => s["messageId"]!.GetValue<string>() == message.Id);
        Assert.DoesNotContain(sweep.Messages("steps"), s => s["instanceId"]!.GetValue<string>() == instance.Id);

        await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send));
        var after = await f.InvokeAsync("journey-timers", HostPayloads.Timer());
        Assert.DoesNotContain(after.Messages("sends"), s => s["messageId"]!.GetValue<string>() == message.Id);
        Assert.Equal(MessageStatus.Delivered, (await f.Store.GetMessageAsync(message.Id))!.Status);
        Assert.Equal(InstanceStatus.Completed, Assert.Single(await f.Store.GetInstancesAsync(key)).Status);
    }

    [Fact]
    public async Task Send_MessageAlreadySent_IsANoOp()
    {
        await f.IngestAndProcessAsync("PUT", "/api/v1/customers/dev", """{"email":"dev@example.com"}""");
        var r = await f.IngestAndProcessAsync("POST", "/api/v1/customers/dev/events", """{"name":"signed_up","id":"evt-dev-1"}""");
        var send = Assert.Single(r.Messages("sends"));
        await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send));
        var sentAt = (await f.Store.GetMessageAsync(send["messageId"]!.GetValue<string>()))!.SentAt;

        var again = await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send, deliveryCount: 2));

        Assert.Equal(200, again.Status);
        var message = await f.Store.GetMessageAsync(send["messageId"]!.GetValue<string>());
        Assert.Equal(MessageStatus.Delivered, message!.Status);
        Assert.Equal(1, message.Attempts);
        Assert.Equal(sentAt, message.SentAt);
    }

    [Fact]
    public async Task Send_UnknownMessage_IsANoOp()
    {
        var r = await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", new JsonObject { ["messageId"] = "no-such-message" }));

        Assert.Equal(200, r.Status);
        Assert.Empty(r.Outputs);
    }

    [Theory]
    [InlineData(false, MessageStatus.Delivered)]
    [InlineData(true, MessageStatus.Dropped)]
    public async Task Send_Push_GoesToThePersonsDeviceOrIsDroppedWhenItIsGone(bool removeDevice, string expected)
    {
        var person = removeDevice ? "eve-gone" : "eve";
        var token = (removeDevice ? "b" : "a") + new string('7', 63);
        await f.IngestAndProcessAsync("PUT", $"/api/v1/customers/{person}", """{"first_name":"Eve"}""");
        await f.IngestAndProcessAsync("PUT", $"/api/v1/customers/{person}/devices", $$$"""{"device":{"id":"{{{token}}}","platform":"ios"}}""");
        var installed = await f.IngestAndProcessAsync("POST", $"/api/v1/customers/{person}/events", $$"""{"name":"app_installed","id":"evt-{{person}}"}""");
        var send = Assert.Single(installed.Messages("sends"));
        if (removeDevice)
        {
            await f.IngestAndProcessAsync("DELETE", $"/api/v1/customers/{person}/devices/{token}", null);
        }

        var r = await f.InvokeAsync("send", HostPayloads.ServiceBus("send", "message", send));

        Assert.Equal(200, r.Status);
        var message = await f.Store.GetMessageAsync(send["messageId"]!.GetValue<string>());
        Assert.Equal(expected, message!.Status);
        Assert.Equal(token, Assert.Single(message.Deliveries).Recipient);
        Assert.Equal(!removeDevice, (await f.Store.GetOutboxAsync(100)).Any(o => o.MessageId == message.Id && o.Recipients.SequenceEqual([token])));
    }
}
