using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.Logging;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Durable;
using Nudge.Pipeline;
using Nudge.Sqlite.Store;

namespace Nudge.Durable.Tests;

/// <summary>
/// The real orchestrator and activity under the in-process Durable Task host, against a SQLite store, with the real
/// engine and process-event stage. The test host has no virtual clock (its timers are real delays), so the journey
/// waits seconds, and every wait for an outcome is bounded generously rather than timed.
/// </summary>
public sealed class JourneyOrchestrationTests : IAsyncLifetime
{
    /// <summary>
    /// A cart journey: an email 2 s after the trigger, another <paramref name="secondDelay"/> later; a purchase of the
    /// cart exits it. With an hour before the second email, an orchestration that finishes within the test's patience
    /// was woken by the person's event, not by its timer.
    /// </summary>
    private static string Journey(string id, string trigger, string secondDelay) => $$$"""
        id: {{{id}}}
        version: 1
        name: Cart {{{id}}}
        trigger:
          events: [{{{trigger}}}]
          where:
            - { path: event.cart_id, op: exists }
        reentry: every_time
        exit:
          - event: purchase
            match: [cart_id]
        steps:
          - id: wait_first
            delay: 2s
          - id: first
            send:
              channel: email
              email: { subject: "Your cart {{ event.cart_id }}", html: "<p>first</p>" }
          - id: wait_second
            delay: {{{secondDelay}}}
          - id: second
            send:
              channel: email
              email: { subject: "Still there", html: "<p>second</p>" }
        """;

    /// <summary>Longest any outcome is waited for: generous, for a loaded machine; a healthy run takes seconds.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    private readonly string _dir = Directory.CreateTempSubdirectory("nudge-durable-").FullName;
    private readonly IngestLimits _limits = new();
    private SqliteStore _store = null!;
    private JourneyRuntime _runtime = null!;
    private EventProcessor _processor = null!;
    private DurableTaskTestHost _host = null!;
    private int _ops;

    public async Task InitializeAsync()
    {
        _store = await SqliteStore.OpenAsync(Path.Combine(_dir, "nudge.db"), durable: false);
        var journeys = JourneyLoader.LoadAll([("cart_seconds.yaml", Journey("cart_seconds", "add_to_cart", "2s")), ("cart_hour.yaml", Journey("cart_hour", "basket_add", "1h"))]);
        var engine = new JourneyEngine(new EngineOptions(new FrequencyCaps([]), new Schedule("UTC", null)), new Templates());

        // As in the Functions runtime: the activity and process-event run apart, so timers re-read the person's events.
        _runtime = new JourneyRuntime(journeys, engine, _limits, eventsAlwaysDelivered: false);
        _processor = new EventProcessor(_limits, TimeProvider.System, _runtime);
        var activity = new JourneyStepActivity(_store, _runtime, TimeProvider.System);
        _host = await DurableTaskTestHost.StartAsync(
            registry =>
            {
                registry.AddOrchestratorFunc<string>(JourneyOrchestration.Name, (context, id) => JourneyOrchestration.RunAsync(context, id!));
                registry.AddActivityFunc<string, JourneyStepResult>(JourneyOrchestration.StepActivity, (_, id) => activity.RunAsync(id!));
            },
            new DurableTaskTestHostOptions { Port = FreePort(), LoggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning)) });
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task TimerPath_SendsBothSteps_AtLeastTheirDelayApart_AndTheOrchestrationCompletes()
    {
        var (journeyInstance, key) = await EnterAsync("shopper-1", "cart-1");

        var orchestration = await StartAsync(journeyInstance);
        var done = await WaitAsync(orchestration);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        var instance = (await _store.GetInstancesAsync(key)).Single();
        Assert.Equal(InstanceStatus.Completed, instance.Status);
        var messages = (await _store.GetMessagesAsync(key, 10)).OrderBy(m => m.CreatedAt).ToList();
        Assert.Equal(["first", "second"], messages.Select(m => m.StepId));
        Assert.True(messages[1].CreatedAt - messages[0].CreatedAt >= TimeSpan.FromSeconds(2), $"{messages[0].CreatedAt:O} -> {messages[1].CreatedAt:O}");
        Assert.True(messages[0].CreatedAt - instance.StartedAt >= TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task APurchase_RaisedAsAnEvent_EndsTheOrchestrationLongBeforeItsTimer()
    {
        var (journeyInstance, key) = await EnterAsync("shopper-2", "cart-2", trigger: "basket_add");
        var orchestration = await StartAsync(journeyInstance);

        // Once the first email is drafted, the person buys: process-event records the exit in the store, then wakes the orchestration.
        await Until(async () => (await _store.GetMessagesAsync(key, 10)).Count == 1);
        await ProcessAsync(Track("shopper-2", "purchase", new JsonObject { ["cart_id"] = "cart-2" }));
        await _host.Client.RaiseEventAsync(orchestration, JourneyOrchestration.EventName, "purchase");
        var done = await WaitAsync(orchestration);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(InstanceStatus.Exited, (await _store.GetInstancesAsync(key)).Single().Status);
        Assert.Equal(["first"], (await _store.GetMessagesAsync(key, 10)).Select(m => m.StepId));
    }

    [Fact]
    public async Task AnEventForAnotherCart_WakesTheOrchestration_WhichSleepsAgainAndFinishes()
    {
        var (journeyInstance, key) = await EnterAsync("shopper-3", "cart-3");
        var orchestration = await StartAsync(journeyInstance);

        // A purchase of a different cart does not match the exit: the turn it causes finds nothing due and waits again.
        await ProcessAsync(Track("shopper-3", "purchase", new JsonObject { ["cart_id"] = "another-cart" }));
        await _host.Client.RaiseEventAsync(orchestration, JourneyOrchestration.EventName, "purchase");
        var done = await WaitAsync(orchestration);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(InstanceStatus.Completed, (await _store.GetInstancesAsync(key)).Single().Status);
        Assert.Equal(["first", "second"], (await _store.GetMessagesAsync(key, 10)).OrderBy(m => m.CreatedAt).Select(m => m.StepId));
    }

    [Fact]
    public async Task AThousandEntriesAtOnce_EachRunsBothStepsOnce()
    {
        const int shoppers = 1000;
        var entries = new List<(string Instance, string Key)>(shoppers);
        for (var n = 0; n < shoppers; n++)
        {
            entries.Add(await EnterAsync($"crowd-{n}", $"cart-{n}"));
        }

        foreach (var (instance, _) in entries)
        {
            await StartAsync(instance);
        }

        // Waited for one at a time: a thousand open waits would starve the client's channel.
        foreach (var (instance, _) in entries)
        {
            Assert.Equal(OrchestrationRuntimeStatus.Completed, (await WaitAsync(JourneyOrchestration.InstanceIdOf(instance))).RuntimeStatus);
        }

        foreach (var (_, key) in entries)
        {
            Assert.Equal(InstanceStatus.Completed, Assert.Single(await _store.GetInstancesAsync(key)).Status);
            Assert.Equal(["first", "second"], (await _store.GetMessagesAsync(key, 10)).OrderBy(m => m.CreatedAt).Select(m => m.StepId));
        }
    }

    private async Task<(string Instance, string ProfileKey)> EnterAsync(string customer, string cart, string trigger = "add_to_cart")
    {
        await ProcessAsync(Op(OpKind.Identify, customer) with { Attributes = new JsonObject { ["email"] = $"{customer}@example.com" } });
        await ProcessAsync(Track(customer, trigger, new JsonObject { ["cart_id"] = cart }));
        var key = (await _store.ResolveAsync(new Identifier(IdentifierKind.Id, customer)))!;
        var instance = Assert.Single(await _store.GetInstancesAsync(key));
        Assert.Equal(InstanceStatus.Active, instance.Status);
        return (instance.Id, key);
    }

    private async Task<string> StartAsync(string journeyInstance) =>
        await _host.Client.ScheduleNewOrchestrationInstanceAsync(JourneyOrchestration.Name, journeyInstance,
            new StartOrchestrationOptions(JourneyOrchestration.InstanceIdOf(journeyInstance)));

    private async Task<OrchestrationMetadata> WaitAsync(string orchestration)
    {
        using var patience = new CancellationTokenSource(Patience);
        return await _host.Client.WaitForInstanceCompletionAsync(orchestration, getInputsAndOutputs: false, patience.Token);
    }

    private static async Task Until(Func<Task<bool>> condition)
    {
        using var patience = new CancellationTokenSource(Patience);
        while (!await condition())
        {
            await Task.Delay(50, patience.Token);
        }
    }

    private async Task ProcessAsync(IngestOp op)
    {
        await using var s = await _store.OpenSessionAsync();
        await _processor.ProcessAsync(s, op);
        await s.CommitAsync();
    }

    private IngestOp Op(OpKind kind, string customer)
    {
        var now = DateTimeOffset.UtcNow;
        return new IngestOp
        {
            Kind = kind,
            MessageId = $"op-{Interlocked.Increment(ref _ops)}",
            Source = "track",
            Timestamp = now,
            ReceivedAt = now,
            Target = new Identifier(IdentifierKind.Id, customer),
        };
    }

    private IngestOp Track(string customer, string name, JsonObject data) =>
        Op(OpKind.Track, customer) with { Event = new EventData(name, "event", data) };

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}

