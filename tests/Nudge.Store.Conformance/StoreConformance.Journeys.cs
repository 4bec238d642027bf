using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Storage;

namespace Nudge.Store.Conformance;

/// <summary>Journey instances, their timers, message listings and the sandbox outbox.</summary>
public abstract partial class StoreConformance
{
    protected static JourneyInstance NewInstance(string id, string profileKey, DateTimeOffset? wakeAt) => new()
    {
        Id = id,
        JourneyId = "cart",
        JourneyVersion = 1,
        ProfileKey = profileKey,
        Entry = 1,
        CurrentStep = "wait",
        StepEnteredAt = T0,
        WakeAt = wakeAt,
        StartedAt = T0,
        Trigger = new TriggerSnapshot("added_to_cart", "evt-1", T0, new JsonObject { ["cart_id"] = "c1", ["value"] = 129.9 }),
        StepResults = new(StringComparer.Ordinal) { ["push"] = new JsonObject { ["message_id"] = "m1" } },
        StepVisits = new(StringComparer.Ordinal) { ["push"] = 1 },
    };

    private static string Doc(JourneyInstance i) => JsonSerializer.Serialize(i, StoreJson.Options);

    private Task PutInstancesAsync(params JourneyInstance[] instances) => CommitAsync(async s =>
    {
        foreach (var i in instances)
        {
            await s.PutInstanceAsync(i);
        }
    });

    private async Task<JourneyInstance> GetInstanceAsync(string id)
    {
        await using var s = await Store.OpenSessionAsync();
        var i = await s.GetInstanceAsync(id);
        Assert.NotNull(i);
        return i;
    }

    [Fact]
    public async Task PutInstance_InsertsThenReplacesByVersion_AndRoundTrips()
    {
        var i = NewInstance("cart:k1:1", "k1", T0.AddMinutes(30));
        await PutInstancesAsync(i);
        Assert.Equal(1, i.Version);

        var stored = await GetInstanceAsync("cart:k1:1");
        Assert.Equal(Doc(i), Doc(stored));
        Assert.Equal(1, stored.Version);

        stored.CurrentStep = "email";
        stored.Status = InstanceStatus.Completed;
        await PutInstancesAsync(stored);
        Assert.Equal(2, stored.Version);
        var listed = Assert.Single(await Store.GetInstancesAsync("k1"));
        Assert.Equal(("email", InstanceStatus.Completed, 2L), (listed.CurrentStep, listed.Status, listed.Version));

        // A writer holding version 1 lost the race; inserting the same instance again is refused too.
        await using var s = await Store.OpenSessionAsync();
        await Assert.ThrowsAsync<ConcurrencyException>(() => s.PutInstanceAsync(i));
        await Assert.ThrowsAsync<ConcurrencyException>(() => s.PutInstanceAsync(NewInstance("cart:k1:1", "k1", null)));
        Assert.Null(await s.GetInstanceAsync("cart:k1:9"));
        Assert.Empty(await Store.GetInstancesAsync("k-unknown"));
    }

    [Fact]
    public async Task DueInstances_OnlyDueEarliestFirst_AndNextWakeFollowsTheirTimers()
    {
        Assert.Null(await Store.NextWakeAsync());
        await PutInstancesAsync(
            NewInstance("i-5m", "k1", T0.AddMinutes(5)), NewInstance("i-1m", "k1", T0.AddMinutes(1)),
            NewInstance("i-none", "k1", null), NewInstance("i-2m", "k2", T0.AddMinutes(2)));

        Assert.Equal([("i-1m", "k1"), ("i-2m", "k2")], await Store.DueInstancesAsync(T0.AddMinutes(3), 10));
        Assert.Equal([("i-1m", "k1")], await Store.DueInstancesAsync(T0.AddMinutes(3), 1));
        Assert.Empty(await Store.DueInstancesAsync(T0, 10));
        Assert.Equal(T0.AddMinutes(1), await Store.NextWakeAsync());

        // Woken and rescheduled: the old wake-up time no longer fires, the new one does.
        var i = await GetInstanceAsync("i-1m");
        i.WakeAt = T0.AddHours(1);
        var j = await GetInstanceAsync("i-2m");
        j.WakeAt = null;
        await PutInstancesAsync(i, j);

        Assert.Empty(await Store.DueInstancesAsync(T0.AddMinutes(3), 10));
        Assert.Equal(T0.AddMinutes(5), await Store.NextWakeAsync());
        Assert.Equal([("i-5m", "k1"), ("i-1m", "k1")], await Store.DueInstancesAsync(T0.AddDays(1), 10));
    }

    [Fact]
    public async Task MoveJourneys_MovesInstancesAndMessagesWithTheirTimers()
    {
        await PutAsync(NewProfile("from", "u1"), NewProfile("to", "u2"));
        var m = NewMessage("m1", T0);
        m.ProfileKey = "from";
        await PutInstancesAsync(NewInstance("i1", "from", T0.AddMinutes(5)), NewInstance("keep", "to", null));
        await CommitAsync(s => s.TryAddMessageAsync(m));

        await CommitAsync(s => s.MoveJourneysAsync("from", "to"));

        Assert.Empty(await Store.GetInstancesAsync("from"));
        Assert.Equal(["i1", "keep"], (await Store.GetInstancesAsync("to")).Select(i => i.Id));
        var moved = await GetInstanceAsync("i1");
        Assert.Equal(("to", 2L), (moved.ProfileKey, moved.Version));
        Assert.Equal([("i1", "to")], await Store.DueInstancesAsync(T0.AddHours(1), 10));
        Assert.Equal("to", (await Store.GetMessageAsync("m1"))?.ProfileKey);
        Assert.Empty(await Store.GetMessagesAsync("from", 10));
        Assert.Equal(["m1"], (await Store.GetMessagesAsync("to", 10)).Select(x => x.Id));
        var ready = Assert.Single(await Store.ReadyMessagesAsync(T0, 10));
        Assert.Equal(("m1", "to"), (ready.Id, ready.ProfileKey));

        // The moved instance carries on under its new person.
        moved.WakeAt = null;
        await PutInstancesAsync(moved);
        Assert.Empty(await Store.DueInstancesAsync(T0.AddHours(1), 10));
    }

    [Fact]
    public async Task Messages_ListedNewestFirst_SinceOldestFirst_AndAddedOnce()
    {
        var a = NewMessage("a", T0);
        var b = NewMessage("b", T0.AddMinutes(1));
        var c = NewMessage("c", T0.AddMinutes(1));
        var d = NewMessage("d", T0.AddMinutes(2));
        var other = NewMessage("other", T0.AddMinutes(3));
        other.ProfileKey = "k2";
        await CommitAsync(async s =>
        {
            foreach (var m in new[] { c, a, d, b, other })
            {
                Assert.True(await s.TryAddMessageAsync(m));
            }

            Assert.False(await s.TryAddMessageAsync(NewMessage("a", T0.AddHours(1))));
            Assert.Equal(["b", "c", "d"], (await s.GetMessagesSinceAsync("k1", T0.AddMinutes(1))).Select(m => m.Id));
        });

        Assert.Equal(["d", "b", "c", "a"], (await Store.GetMessagesAsync("k1", 10)).Select(m => m.Id));
        Assert.Equal(["d", "b"], (await Store.GetMessagesAsync("k1", 2)).Select(m => m.Id));
        Assert.Equal(T0, (await Store.GetMessageAsync("a"))?.CreatedAt);
        Assert.Null(await Store.GetMessageAsync("unknown"));
        await using var session = await Store.OpenSessionAsync();
        Assert.Equal(["a", "b", "c", "d"], (await session.GetMessagesSinceAsync("k1", T0)).Select(m => m.Id));
        Assert.Empty(await session.GetMessagesSinceAsync("k1", T0.AddHours(1)));
    }

    [Fact]
    public async Task Outbox_NewestFirst_OneRecordPerMessage()
    {
        OutboxEntry Entry(string id, string key, DateTimeOffset at) =>
            new(id, key, "push", at, new JsonObject { ["title"] = "Hi " + id }, ["tok-" + id]);

        await CommitAsync(async s =>
        {
            await s.RecordOutboxAsync(Entry("m1", "k1", T0));
            await s.RecordOutboxAsync(Entry("m3", "k2", T0.AddMinutes(2)));
            await s.RecordOutboxAsync(Entry("m2", "k1", T0.AddMinutes(1)));
            await s.RecordOutboxAsync(Entry("m1", "k1", T0.AddHours(1))); // a retried attempt
        });

        var outbox = await Store.GetOutboxAsync(10);
        Assert.Equal(["m3", "m2", "m1"], outbox.Select(o => o.MessageId));
        Assert.Equal(T0, outbox[2].RecordedAt);
        Assert.Equal(("k2", "push", "Hi m3", "tok-m3"), (outbox[0].ProfileKey, outbox[0].Channel, (string?)outbox[0].Content["title"], outbox[0].Recipients[0]));
        Assert.Equal(["m3"], (await Store.GetOutboxAsync(1)).Select(o => o.MessageId));
    }

    [Fact]
    public async Task EventsSince_OldestFirstFromTheGivenTime_UpToLimit()
    {
        await PutAsync(NewProfile("k1", "u1"));
        await CommitAsync(async s =>
        {
            await s.AppendEventAsync(NewEvent("e3", "k1", T0.AddMinutes(3)));
            await s.AppendEventAsync(NewEvent("e1", "k1", T0.AddMinutes(1)));
            await s.AppendEventAsync(NewEvent("e2", "k1", T0.AddMinutes(2)));
            await s.AppendEventAsync(NewEvent("old", "k1", T0));
        });

        await using var session = await Store.OpenSessionAsync();
        Assert.Equal(["e1", "e2", "e3"], (await session.GetEventsSinceAsync("k1", T0.AddMinutes(1), 10)).Select(e => e.EventId));
        Assert.Equal(["e1", "e2"], (await session.GetEventsSinceAsync("k1", T0.AddMinutes(1), 2)).Select(e => e.EventId));
        Assert.Empty(await session.GetEventsSinceAsync("k1", T0.AddHours(1), 10));
    }

    [Fact]
    public async Task DeleteProfile_RemovesTheirInstancesMessagesAndTimers()
    {
        await PutAsync(NewProfile("k1", "u1"), NewProfile("k2", "u2"));
        await PutInstancesAsync(NewInstance("i1", "k1", T0.AddMinutes(1)), NewInstance("i2", "k2", T0.AddMinutes(2)));
        await CommitAsync(s => s.TryAddMessageAsync(NewMessage("m1", T0)));

        await CommitAsync(s => s.DeleteProfileAsync("k1"));

        Assert.Empty(await Store.GetInstancesAsync("k1"));
        Assert.Null(await Store.GetMessageAsync("m1"));
        Assert.Empty(await Store.ReadyMessagesAsync(T0.AddDays(1), 10));
        Assert.Equal([("i2", "k2")], await Store.DueInstancesAsync(T0.AddDays(1), 10));
        Assert.Equal(T0.AddMinutes(2), await Store.NextWakeAsync());
        await using var s = await Store.OpenSessionAsync();
        Assert.Null(await s.GetInstanceAsync("i1"));
    }
}
