using Microsoft.Azure.Cosmos;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

// Events: one document each in the person's partition (events of nobody in CosmosIds.Unattached), id from the event
// id, so appending the same event again (a retried input) changes nothing. A move copies each event to the new person
// before deleting it from the old one: a crash in between leaves a copy in both until the retried merge finishes.
public sealed partial class CosmosStore
{
    internal async Task AppendEventCoreAsync(StoredEvent e)
    {
        var pk = e.ProfileKey ?? CosmosIds.Unattached;

        // Times are kept to the millisecond in UTC, as the SQLite store keeps them, so both read back the same.
        var stored = e with
        {
            Timestamp = DateTimeOffset.FromUnixTimeMilliseconds(e.Timestamp.ToUnixTimeMilliseconds()),
            ReceivedAt = DateTimeOffset.FromUnixTimeMilliseconds(e.ReceivedAt.ToUnixTimeMilliseconds()),
        };
        await People.CreateAsync(new PersonDoc<StoredEvent>
        {
            Id = CosmosIds.Event(e.EventId),
            Pk = pk,
            Type = DocType.Event,
            Key = e.EventId,
            Ts = stored.Timestamp.ToUnixTimeMilliseconds(),
            Seq = NextSeq(),
            Doc = stored,
        }, pk);
    }

    internal async Task MoveEventsCoreAsync(string fromKey, string toKey)
    {
        if (fromKey == toKey)
        {
            return;
        }

        var events = await People.QueryAllAsync<PersonDoc<StoredEvent>>(new QueryDefinition("SELECT * FROM c WHERE c.pk = @pk AND c.type = @t")
            .WithParameter("@pk", fromKey).WithParameter("@t", DocType.Event), fromKey);
        foreach (var e in events)
        {
            // Upsert: a retried move finds its copy there already. Time and order of appending are kept.
            await People.UpsertAsync(e with { Pk = toKey, Doc = e.Doc with { ProfileKey = toKey }, ETag = null }, toKey);
            await People.DeleteAsync(e.Id, fromKey);
        }
    }

    internal async Task<IReadOnlyList<StoredEvent>> RecentEventsAsync(string pk, int limit, CancellationToken ct)
    {
        if (limit <= 0)
        {
            return [];
        }

        var q = new QueryDefinition("SELECT TOP @n * FROM c WHERE c.pk = @pk AND c.type = @t ORDER BY c.ts DESC, c.seq DESC")
            .WithParameter("@n", limit).WithParameter("@pk", pk).WithParameter("@t", DocType.Event);
        return [.. (await People.QueryAllAsync<PersonDoc<StoredEvent>>(q, pk, ct)).Select(d => d.Doc)];
    }

    internal async Task<IReadOnlyList<StoredEvent>> EventsSinceCoreAsync(string profileKey, DateTimeOffset since, int limit)
    {
        if (limit <= 0)
        {
            return [];
        }

        var q = new QueryDefinition("SELECT TOP @n * FROM c WHERE c.pk = @pk AND c.type = @t AND c.ts >= @since ORDER BY c.ts ASC, c.seq ASC")
            .WithParameter("@n", limit).WithParameter("@pk", profileKey).WithParameter("@t", DocType.Event)
            .WithParameter("@since", since.ToUnixTimeMilliseconds());
        return [.. (await People.QueryAllAsync<PersonDoc<StoredEvent>>(q, profileKey)).Select(d => d.Doc)];
    }

    private async Task DeleteEventsOfAsync(string key)
    {
        foreach (var id in await IdsOfTypeAsync(key, DocType.Event))
        {
            await People.DeleteAsync(id, key);
        }
    }
}
