using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Xunit;

namespace Nudge.Store.Conformance;

/// <summary>What reports, alerts and reporting webhooks read and write: instance outcomes, active people, checkpoints.</summary>
public abstract partial class StoreConformance
{
    [Fact]
    public async Task InstanceOutcomes_InTheStartRange_WithHoldoutStartConversionAndSteps()
    {
        var converted = NewInstance("cart:a:1", "a", null);
        converted.Status = InstanceStatus.Converted;
        converted.ConvertedAt = T0.AddHours(2);
        converted.StepVisits = new(StringComparer.Ordinal) { ["wait"] = 1, ["push"] = 2, ["email"] = 1 };
        converted.CurrentStep = "email";
        var held = NewInstance("cart:b:1", "b", null);
        held.Holdout = true;
        var pending = NewInstance("winback:c:1", "c", T0.AddDays(30));
        pending.Status = InstanceStatus.Pending;
        pending.StepVisits = new(StringComparer.Ordinal);
        pending.StepResults = new(StringComparer.Ordinal);
        var early = NewInstance("cart:d:1", "d", null);
        early.StartedAt = T0.AddDays(-2);
        await CommitAsync(async s =>
        {
            foreach (var i in new[] { converted, held, pending, early })
            {
                await s.PutInstanceAsync(i);
            }
        });

        var outcomes = (await Store.GetInstanceOutcomesAsync(T0.AddDays(-1), T0.AddDays(1))).OrderBy(o => o.InstanceId, StringComparer.Ordinal).ToList();

        Assert.Equal(
        [
            new InstanceOutcome("cart:a:1", "cart", "a", T0, false, true, T0.AddHours(2)),
            new InstanceOutcome("cart:b:1", "cart", "b", T0, true, true, null),
            new InstanceOutcome("winback:c:1", "cart", "c", T0, false, false, null),
        ], outcomes.Select(o => o with { Steps = [], CurrentStep = null, Ended = false }));
        Assert.Equal(
        [
            ("email,push,wait", "email", true),
            ("push", "wait", false),
            ("", "wait", false),
        ], outcomes.Select(o => (string.Join(",", o.Steps.Order(StringComparer.Ordinal)), o.CurrentStep, o.Ended)));
        Assert.Empty(await Store.GetInstanceOutcomesAsync(T0.AddHours(1), T0.AddDays(1)));
    }

    [Fact]
    public async Task ActivePeople_ByEventOrDeviceUse_WithPushEnabledPlatforms()
    {
        var android = NewDevice("tok-android", "b");
        android.Platform = Platforms.Android;
        var revoked = NewDevice("tok-revoked", "c");
        revoked.Attributes = new JsonObject { ["push_enabled"] = "false" };
        revoked.LastUsed = T0.AddDays(-40);
        var used = NewDevice("tok-a", "a");
        used.LastUsed = T0.AddDays(-5);
        var stale = NewDevice("tok-stale", "d");
        stale.LastUsed = T0.AddDays(-90);
        await PutAsync(NewProfile("a"), NewProfile("b"), NewProfile("c"), NewProfile("d"), NewProfile("e"));
        await CommitAsync(async s =>
        {
            await s.AppendEventAsync(NewEvent("e-a", "a", T0.AddDays(-1)));
            await s.AppendEventAsync(NewEvent("e-a2", "a", T0.AddDays(-3)));
            await s.AppendEventAsync(NewEvent("e-c", "c", T0.AddDays(-2)));
            await s.AppendEventAsync(NewEvent("e-e", "e", T0.AddDays(-60)));
            await s.AppendEventAsync(NewEvent("e-nobody", null, T0));
            await s.PutDeviceAsync(used);
            await s.PutDeviceAsync(android);
            await s.PutDeviceAsync(revoked);
            await s.PutDeviceAsync(stale);
        });

        var people = await Store.GetActivePeopleAsync(T0.AddDays(-30));

        Assert.Equal(["a", "b", "c"], people.Select(p => p.ProfileKey));
        Assert.Equal([T0.AddDays(-1), T0, T0.AddDays(-2)], people.Select(p => p.LastActiveAt));
        Assert.Equal([["ios"], ["android"], []], people.Select(p => p.PushPlatforms.ToArray()));
    }

    [Fact]
    public async Task Checkpoints_CreateOnce_ThenReplaceOnlyAtTheReadVersion_AndSurviveReopening()
    {
        Assert.Null(await Store.GetCheckpointAsync("reporting-webhooks"));
        Assert.True(await TryPutAsync(new Checkpoint("reporting-webhooks", "one")));
        Assert.False(await TryPutAsync(new Checkpoint("reporting-webhooks", "again")));
        var read = await Store.GetCheckpointAsync("reporting-webhooks");
        Assert.Equal(new Checkpoint("reporting-webhooks", "one", 1), read);

        Assert.True(await TryPutAsync(read! with { Value = "two" }));
        Assert.False(await TryPutAsync(read with { Value = "stale writer" }));
        Assert.True(await TryPutAsync(new Checkpoint("alert:push/ios", """{"status":"firing"}""")));
        await ReopenAsync();

        Assert.Equal(new Checkpoint("reporting-webhooks", "two", 2), await Store.GetCheckpointAsync("reporting-webhooks"));
        Assert.Equal("""{"status":"firing"}""", (await Store.GetCheckpointAsync("alert:push/ios"))!.Value);
    }

    private async Task<bool> TryPutAsync(Checkpoint c)
    {
        await using var s = await Store.OpenSessionAsync();
        var ok = await s.TryPutCheckpointAsync(c);
        await s.CommitAsync();
        return ok;
    }
}
