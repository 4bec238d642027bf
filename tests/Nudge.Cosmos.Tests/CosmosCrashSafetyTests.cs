using System.Text.Json.Nodes;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Cosmos.Tests;

/// <summary>
/// The store dies between two writes of one operation (a fault injected into the client's pipeline stops the later
/// write), and what the earlier writes left must neither be visible as a wrong answer nor block anyone for ever.
/// </summary>
[Collection(CosmosCollection.Name)]
public sealed class CosmosCrashSafetyTests(CosmosEmulator emulator) : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly CosmosStoreOptions _options = emulator.NewDatabase();
    private readonly FaultInjector _faults = new();
    private readonly FakeTimeProvider _clock = new(T0);
    private CosmosStore _store = null!;

    private TimeSpan PastTheGrace => _options.HalfWriteGrace + TimeSpan.FromSeconds(1);

    public async Task InitializeAsync() =>
        _store = await CosmosStore.OpenAsync(_options, _clock, o => o.CustomHandlers.Add(_faults), default);

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await emulator.DeleteDatabaseAsync(_options.Database);
    }

    [Fact]
    public async Task IdentifierClaimed_ProfileNeverWritten_ResolvesToNobody_ThenIsTakenOverAfterTheGrace()
    {
        _faults.CrashBeforeNextWrite("people");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => PutAsync(NewProfile("k1", "u1", "ann@example.com")));
        Assert.Equal(2, await CountAsync("identifiers")); // claimed before the profile write that never happened

        Assert.Null(await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
        Assert.Null(await _store.ResolveAsync(Identifier.Email("ann@example.com")));

        // Within the grace period the claim may be a writer about to write its profile: nobody else takes it yet.
        await Assert.ThrowsAsync<ConcurrencyException>(() => PutAsync(NewProfile("k2", "u1")));
        _clock.Advance(PastTheGrace);
        await PutAsync(NewProfile("k2", "u1"));
        Assert.Equal("k2", await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));

        // The crashed writer's retry gets the identifier nobody took, and not the one that is k2's now.
        await Assert.ThrowsAsync<ConcurrencyException>(() => PutAsync(NewProfile("k1", "u1", "ann@example.com")));
        await PutAsync(NewProfile("k1", null, "ann@example.com"));
        Assert.Equal("k1", await _store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Equal("k2", await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
    }

    [Fact]
    public async Task IdentifierDropped_ClaimNeverReleased_ResolvesToNobody_AndIsFreeAfterTheGrace()
    {
        await PutAsync(NewProfile("k1", "u1"));
        var p = (await _store.GetProfileAsync("k1"))!;
        p.Id = "u1-new";
        _faults.CrashBeforeNextWrite("identifiers", "DELETE");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => PutAsync(p));

        Assert.Null(await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
        Assert.Equal("k1", await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1-new")));
        _clock.Advance(PastTheGrace);
        await PutAsync(NewProfile("k2", "u1"));
        Assert.Equal("k2", await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
    }

    [Fact]
    public async Task MergeHandOver_CutOffBeforeThePrimaryWasWritten_StaysWithTheSecondary_AndTheRetryFinishes()
    {
        await PutAsync(NewProfile("secondary", "u1", "ann@example.com"));
        var primary = NewProfile("primary", "u1", "ann@example.com");
        primary.MergedFrom = ["secondary"];
        _faults.CrashBeforeNextWrite("people");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => PutAsync(primary));

        // The claims now name the primary, which does not exist: they still resolve to the secondary, long after.
        _clock.Advance(PastTheGrace);
        Assert.Equal("secondary", await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
        Assert.Equal("secondary", await _store.ResolveAsync(Identifier.Email("ann@example.com")));
        await Assert.ThrowsAsync<ConcurrencyException>(() => PutAsync(NewProfile("someone-else", "u1")));

        // The retried merge writes the primary, then deletes the secondary.
        primary.Version = 0;
        await PutAsync(primary);
        await CommitAsync(s => s.DeleteProfileAsync("secondary"));
        Assert.Equal("primary", await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
        Assert.Equal("primary", await _store.ResolveAsync(Identifier.Email("ann@example.com")));
    }

    [Fact]
    public async Task MergeHandOver_PrimaryWriteRefused_HandsTheIdentifiersBack()
    {
        await PutAsync(NewProfile("secondary", "u1"), NewProfile("primary", null, "p@example.com"));
        var loser = (await _store.GetProfileAsync("primary"))!;
        var winner = (await _store.GetProfileAsync("primary"))!;
        winner.Attributes["plan"] = new AttributeValue { Value = "pro", SetAtMs = 1 };
        loser.Id = "u1";
        loser.MergedFrom = ["secondary"];
        await Assert.ThrowsAsync<ConcurrencyException>(() => PutAsync(loser, beforeProfileWrite: () => PutAsync(winner)));

        Assert.Equal("secondary", await _store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
        await Assert.ThrowsAsync<ConcurrencyException>(() => PutAsync(NewProfile("someone-else", "u1")));
    }

    [Fact]
    public async Task RefusedProfileWrite_GivesBackTheIdentifiersItClaimed()
    {
        await PutAsync(NewProfile("k1", "u1"));
        var loser = (await _store.GetProfileAsync("k1"))!;
        var winner = (await _store.GetProfileAsync("k1"))!;
        winner.Attributes["plan"] = new AttributeValue { Value = "pro", SetAtMs = 1 };
        await PutAsync(winner);

        // The version looked right when read, but the profile changed before the write: a race lost after claiming.
        loser.Version = 2;
        loser.Email = "ann@example.com";
        await Assert.ThrowsAsync<ConcurrencyException>(() => PutAsync(loser, beforeProfileWrite: () => PutAsync(winner)));

        Assert.Null(await _store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Equal(1, await CountAsync("identifiers"));
        await PutAsync(NewProfile("k2", null, "ann@example.com")); // free at once, no grace needed
    }

    [Fact]
    public async Task DeviceMove_CutOffBeforeTheTokenWasWritten_StaysWithItsOwner()
    {
        await PutAsync(NewProfile("a", "ua"), NewProfile("b", "ub"));
        await CommitAsync(s => s.PutDeviceAsync(NewDevice("tok-1", "a")));

        _faults.CrashBeforeNextWrite("tokens");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => CommitAsync(s => s.PutDeviceAsync(NewDevice("tok-1", "b"))));

        Assert.Equal("a", (await _store.GetDeviceAsync("tok-1"))?.ProfileKey);
        Assert.Equal(["tok-1"], (await _store.GetDevicesAsync("a")).Select(d => d.Token));
        Assert.Empty(await _store.GetDevicesAsync("b")); // b's copy is there, but the token does not name b
        Assert.Equal("a", Assert.Single(await _store.GetPushTargetsAsync(["tok-1"])).Value.Device.ProfileKey);
        Assert.Equal(1, (await _store.CountAsync()).Devices);

        await CommitAsync(s => s.PutDeviceAsync(NewDevice("tok-1", "b")));
        Assert.Empty(await _store.GetDevicesAsync("a"));
        Assert.Equal(["tok-1"], (await _store.GetDevicesAsync("b")).Select(d => d.Token));
    }

    [Fact]
    public async Task TimerEntryWritten_InstanceNeverWritten_NeverFires_AndIsRemovedAfterTheGrace()
    {
        _faults.CrashBeforeNextWrite("people");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => CommitAsync(s => s.PutInstanceAsync(NewInstance("i1", "k1", T0))));
        Assert.Equal(1, await CountAsync("timers"));

        Assert.Empty(await _store.DueInstancesAsync(T0.AddDays(1), 10));
        Assert.Null(await _store.NextWakeAsync());
        Assert.Equal(1, await CountAsync("timers")); // too young to be sure its writer is gone

        _clock.Advance(PastTheGrace);
        Assert.Empty(await _store.DueInstancesAsync(T0.AddDays(1), 10));
        Assert.Equal(0, await CountAsync("timers"));

        // The retried write works as if nothing had happened.
        await CommitAsync(s => s.PutInstanceAsync(NewInstance("i1", "k1", T0)));
        Assert.Equal([("i1", "k1")], await _store.DueInstancesAsync(T0, 10));
    }

    [Fact]
    public async Task Reschedule_CutOffBeforeTheInstanceWasWritten_KeepsTheOldWakeUp()
    {
        var i = NewInstance("i1", "k1", T0);
        await CommitAsync(s => s.PutInstanceAsync(i));
        i.WakeAt = T0.AddHours(1);

        _faults.CrashBeforeNextWrite("people");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => CommitAsync(s => s.PutInstanceAsync(i)));

        Assert.Equal([("i1", "k1")], await _store.DueInstancesAsync(T0, 10));
        Assert.Equal(T0, await _store.NextWakeAsync());
    }

    [Fact]
    public async Task Claim_CutOffBeforeTheMessageWasWritten_LeavesItDueAsBefore()
    {
        await CommitAsync(s => s.TryAddMessageAsync(NewMessage("m1")));

        _faults.CrashBeforeNextWrite("people");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => CommitAsync(s => s.ClaimReadyMessagesAsync(T0, T0.AddMinutes(5), 10)));

        Assert.Equal(["m1"], (await _store.ReadyMessagesAsync(T0, 10)).Select(m => m.Id));
        await using var s = await _store.OpenSessionAsync();
        Assert.True(await s.TryClaimMessageAsync("m1", T0, T0.AddMinutes(5)));
        Assert.Empty(await _store.ReadyMessagesAsync(T0.AddMinutes(1), 10));
    }

    [Fact]
    public async Task Outcome_CutOffAfterTheMessageWasWritten_LeavesOnlyAnIgnoredTimerEntry()
    {
        await CommitAsync(s => s.TryAddMessageAsync(NewMessage("m1")));
        IReadOnlyList<Message> taken = [];
        await CommitAsync(async s => taken = await s.ClaimReadyMessagesAsync(T0, T0.AddMinutes(5), 10));
        var m = Assert.Single(taken);
        m.Status = MessageStatus.Sent;
        m.Ready = false;

        // The claim's timer entry is deleted last; the crash keeps it, but the message no longer names it.
        _faults.CrashBeforeNextWrite("timers", "DELETE");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => CommitAsync(s => s.TryRecordSendOutcomeAsync(m, T0.AddMinutes(5))));

        Assert.Equal(MessageStatus.Sent, (await _store.GetMessageAsync("m1"))?.Status);
        Assert.Empty(await _store.ReadyMessagesAsync(T0.AddDays(1), 10));
        await using var s = await _store.OpenSessionAsync();
        Assert.Empty(await s.ClaimReadyMessagesAsync(T0.AddDays(1), T0.AddDays(2), 10));
    }

    [Fact]
    public async Task JourneyMove_CutOffMidway_StaysReadableById_AndIsFinishedByTheRetry()
    {
        await CommitAsync(async s =>
        {
            await s.PutInstanceAsync(NewInstance("i1", "from", T0));
            await s.TryAddMessageAsync(Moved(NewMessage("m1"), "from"));
        });

        // The instance's copy is in "to", but its lookup still names "from".
        _faults.CrashBeforeNextWrite("lookups");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => CommitAsync(s => s.MoveJourneysAsync("from", "to")));

        await using (var s = await _store.OpenSessionAsync())
        {
            Assert.Equal("from", (await s.GetInstanceAsync("i1"))?.ProfileKey);
        }

        Assert.Equal("i1", Assert.Single(await _store.DueInstancesAsync(T0, 10)).Id);
        Assert.Equal("from", (await _store.GetMessageAsync("m1"))?.ProfileKey);

        await CommitAsync(s => s.MoveJourneysAsync("from", "to"));

        Assert.Empty(await _store.GetInstancesAsync("from"));
        var moved = Assert.Single(await _store.GetInstancesAsync("to"));
        Assert.Equal(("i1", 2L), (moved.Id, moved.Version));
        await using (var s = await _store.OpenSessionAsync())
        {
            Assert.Equal("to", (await s.GetInstanceAsync("i1"))?.ProfileKey);
        }

        Assert.Equal([("i1", "to")], await _store.DueInstancesAsync(T0, 10));
        Assert.Equal("to", (await _store.GetMessageAsync("m1"))?.ProfileKey);
        Assert.Equal([("m1", "to")], (await _store.ReadyMessagesAsync(T0, 10)).Select(m => (m.Id, m.ProfileKey)));
    }

    [Fact]
    public async Task EventMove_CutOffMidway_IsFinishedByTheRetry()
    {
        await CommitAsync(async s =>
        {
            await s.AppendEventAsync(new StoredEvent("e1", "from", "viewed", "event", T0, T0, "track", new JsonObject()));
            await s.AppendEventAsync(new StoredEvent("e2", "from", "viewed", "event", T0.AddMinutes(1), T0, "track", new JsonObject()));
        });

        _faults.CrashBeforeNextWrite("people", "DELETE");
        await Assert.ThrowsAsync<SimulatedCrashException>(() => CommitAsync(s => s.MoveEventsAsync("from", "to")));
        Assert.Single(await _store.GetRecentEventsAsync("to", 10)); // copied, not yet deleted from "from"

        await CommitAsync(s => s.MoveEventsAsync("from", "to"));
        Assert.Empty(await _store.GetRecentEventsAsync("from", 10));
        Assert.Equal(["e2", "e1"], (await _store.GetRecentEventsAsync("to", 10)).Select(e => e.EventId));
        Assert.Equal(2, (await _store.CountAsync()).Events);
    }

    private async Task CommitAsync(Func<IStoreSession, Task> work)
    {
        await using var s = await _store.OpenSessionAsync();
        await work(s);
        await s.CommitAsync();
    }

    private Task PutAsync(params Profile[] profiles) => CommitAsync(async s =>
    {
        foreach (var p in profiles)
        {
            await s.PutProfileAsync(p);
        }
    });

    /// <summary>Puts <paramref name="p"/>, running <paramref name="beforeProfileWrite"/> once its identifiers are claimed.</summary>
    private async Task PutAsync(Profile p, Func<Task> beforeProfileWrite)
    {
        var raced = new RaceBeforeWrite("people", beforeProfileWrite);
        await using var racing = await CosmosStore.OpenAsync(_options, _clock, o => o.CustomHandlers.Add(raced), default);
        await using var s = await racing.OpenSessionAsync();
        await s.PutProfileAsync(p);
    }

    private async Task<long> CountAsync(string container)
    {
        using var it = emulator.Admin.GetContainer(_options.Database, container).GetItemQueryIterator<long>("SELECT VALUE COUNT(1) FROM c");
        long n = 0;
        while (it.HasMoreResults)
        {
            n += (await it.ReadNextAsync()).Sum();
        }

        return n;
    }

    private static Profile NewProfile(string key, string? id, string? email = null) =>
        new() { Key = key, Id = id, Email = email, CreatedAt = T0, UpdatedAt = T0 };

    private static Device NewDevice(string token, string profileKey) =>
        new() { Token = token, ProfileKey = profileKey, Platform = Platforms.Ios, LastUsed = T0, CreatedAt = T0, UpdatedAt = T0 };

    private static JourneyInstance NewInstance(string id, string profileKey, DateTimeOffset? wakeAt) => new()
    {
        Id = id,
        JourneyId = "cart",
        JourneyVersion = 1,
        ProfileKey = profileKey,
        Entry = 1,
        WakeAt = wakeAt,
        Trigger = new TriggerSnapshot("added_to_cart", "evt-1", T0, []),
    };

    private static Message Moved(Message m, string profileKey)
    {
        m.ProfileKey = profileKey;
        return m;
    }

    private static Message NewMessage(string id) => new()
    {
        Id = id,
        ProfileKey = "k1",
        InstanceId = "i1",
        JourneyId = "cart",
        StepId = "push",
        Channel = Channel.Push,
        Status = MessageStatus.Drafted,
        Ready = true,
        CreatedAt = T0,
        Recipients = ["tok"],
    };

    /// <summary>Runs another writer's work right before the next write to a container's documents (a race lost at the last moment).</summary>
    private sealed class RaceBeforeWrite(string container, Func<Task> race) : RequestHandler
    {
        private Func<Task>? _race = race;

        public override async Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            if (_race is { } run && FaultInjector.IsDocumentWrite(request, container))
            {
                _race = null;
                await run();
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }
}
