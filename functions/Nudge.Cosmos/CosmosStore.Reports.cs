using Microsoft.Azure.Cosmos;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

// Reports read across people: cross-partition queries that project the few fields they need (reports are rare and
// read in bulk, so a scan per report is the right trade against an index kept on every write). Checkpoints live in the
// lookups container (point reads and ETag-checked writes by id, no index, no TTL), under ids no lookup can take.
public sealed partial class CosmosStore
{
    public async Task<IReadOnlyList<InstanceOutcome>> GetInstanceOutcomesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken ct = default)
    {
        // The start time sits in the (unindexed) document as ISO text: the range is applied here.
        var q = new QueryDefinition("SELECT c.doc.id, c.doc.journeyId, c.pk, c.doc.startedAt, c.doc.holdout, c.doc.stepVisits, c.doc.convertedAt, c.doc.currentStep, c.doc.status FROM c WHERE c.type = @t")
            .WithParameter("@t", DocType.Instance);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var list = new List<InstanceOutcome>();
        await foreach (var r in People.QueryAsync<OutcomeRow>(q, null, 1000, ct))
        {
            // A merge interrupted by a crash may leave a copy in both people's partitions for a while: count it once.
            if (r.StartedAt >= from && r.StartedAt < to && seen.Add(r.Id))
            {
                list.Add(new InstanceOutcome(r.Id, r.JourneyId, r.Pk, r.StartedAt, r.Holdout, r.StepVisits is { Count: > 0 }, r.ConvertedAt)
                {
                    Steps = r.StepVisits is { } v ? [.. v.Keys] : [],
                    CurrentStep = r.CurrentStep,
                    Ended = r.Status is not ("active" or "pending"),
                });
            }
        }

        return list;
    }

    public async Task<IReadOnlyList<PersonActivity>> GetActivePeopleAsync(DateTimeOffset since, CancellationToken ct = default)
    {
        var last = new Dictionary<string, long>(StringComparer.Ordinal);
        var events = new QueryDefinition("SELECT c.pk, c.ts FROM c WHERE c.type = @t AND c.ts >= @s")
            .WithParameter("@t", DocType.Event).WithParameter("@s", since.ToUnixTimeMilliseconds());
        await foreach (var e in People.QueryAsync<EventTime>(events, null, 1000, ct))
        {
            if (e.Pk != CosmosIds.Unattached && (!last.TryGetValue(e.Pk, out var t) || e.Ts > t))
            {
                last[e.Pk] = e.Ts;
            }
        }

        var devices = new List<Device>();
        var q = new QueryDefinition("SELECT * FROM c WHERE c.type = @t").WithParameter("@t", DocType.Device);
        await foreach (var d in People.QueryAsync<PersonDoc<Device>>(q, null, 1000, ct))
        {
            devices.Add(d.Doc);
        }

        return PersonActivities.Combine(last, devices, since);
    }

    public async Task<Checkpoint?> GetCheckpointAsync(string name, CancellationToken ct = default)
    {
        var id = CheckpointId(name);
        return await Lookups.ReadAsync<CheckpointDoc>(id, id, ct) is { } d ? new Checkpoint(name, d.Value, d.Version) : null;
    }

    internal async Task<bool> TryPutCheckpointCoreAsync(Checkpoint c)
    {
        var id = CheckpointId(c.Name);
        var doc = new CheckpointDoc { Id = id, Pk = id, Name = c.Name, Value = c.Value, Version = c.Version + 1 };
        if (c.Version == 0)
        {
            return await Lookups.CreateAsync(doc, id) is not null;
        }

        // The version check rides on the ETag: read, compare, replace only if nobody wrote in between.
        var current = await Lookups.ReadAsync<CheckpointDoc>(id, id);
        return current is not null && current.Version == c.Version && current.ETag is { } etag
            && await Lookups.ReplaceAsync(doc, id, id, etag) is not null;
    }

    /// <summary>Lookup ids are "i:..." and "m:...": "checkpoint:" never collides with them.</summary>
    private static string CheckpointId(string name) => "checkpoint:" + CosmosIds.Escape(name);

    private sealed record OutcomeRow(string Id, string JourneyId, string Pk, DateTimeOffset StartedAt, bool Holdout,
        Dictionary<string, int>? StepVisits, DateTimeOffset? ConvertedAt, string? CurrentStep, string? Status);

    private sealed record EventTime(string Pk, long Ts);
}
