using System.Text.Json;
using Microsoft.Azure.Cosmos;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

// Erasing a person, and retention purges.
//
// Erase writes in an order that a retry finishes after a crash at any point (the erase op is retried because its
// idempotency key is recorded only at commit, and it finds the person because the profile goes last):
//   1. the erase's salt, in lookups (id erasing:<key>), so a retry gives the same ids the same pseudonyms
//   2. each delivery event of the person: its scrubbed copy (Create: a retry's copy is a no-op), then the original
//   3. each journey instance: its scrubbed copy in the ~erased partition (Create), then (step 5) the original
//   4. token records of the person's tokens that name them or nobody (a bounce record keeps the token itself)
//   5. everything in the person's partitions but the profile: devices, events, instances, messages with their timers
//      and look-ups, outbox entries
//   6. the profile, then its identifier claims and any claim still naming one of their keys
//   7. the salt
// A crash inside step 2 between a copy and its original leaves both until the retry; the copy's id is the
// original's pseudonym, so the retry does not copy it twice.
public sealed partial class CosmosStore
{
    internal async Task EraseProfileCoreAsync(string key, DateTimeOffset now)
    {
        var profile = (await ReadProfileAsync(key, default))?.Doc;
        var keys = Erasure.KeysOf(key, profile);
        var salt = await EraseSaltAsync(key);

        var recipients = new HashSet<string>(StringComparer.Ordinal);
        foreach (var k in keys)
        {
            foreach (var m in await OfTypeAsync<Message>(k, DocType.Message, default))
            {
                recipients.UnionWith(m.Doc.Recipients.Concat(m.Doc.Deliveries.Select(d => d.Recipient)).Concat(m.Doc.Fallbacks.SelectMany(f => f.Recipients)));
            }

            foreach (var d in await OfTypeAsync<Device>(k, DocType.Device, default))
            {
                recipients.Add(d.Doc.Token);
            }
        }

        var secrets = Erasure.SecretsOf(keys, profile, recipients);

        // Delivery events span day partitions and their documents are not indexed: a scan, which an erase (rare) can afford.
        var events = await DeliveryEvents.QueryAllAsync<DeliveryEventDoc>(
            new QueryDefinition("SELECT * FROM c WHERE ARRAY_CONTAINS(@keys, c.doc.profileKey)").WithParameter("@keys", keys), null);
        foreach (var d in events)
        {
            var scrubbed = Erasure.Scrub(d.Doc, salt, secrets);
            await DeliveryEvents.CreateAsync(d with { Id = scrubbed.Id, Doc = scrubbed }, d.Pk);
            await DeliveryEvents.DeleteAsync(d.Id, d.Pk);
        }

        foreach (var k in keys)
        {
            foreach (var i in await OfTypeAsync<JourneyInstance>(k, DocType.Instance, default))
            {
                await People.CreateAsync(InstanceDoc(Erasure.Scrub(i.Doc, salt, now), 1), Erasure.ErasedKey);
            }
        }

        foreach (var token in recipients)
        {
            var id = CosmosIds.Escape(token);
            if (await Tokens.ReadAsync<TokenDoc>(id, id) is { } t && (t.ProfileKey is null || keys.Contains(t.ProfileKey)))
            {
                await Tokens.DeleteAsync(id, id);
            }
        }

        foreach (var k in keys)
        {
            await DeleteDevicesOfAsync(k);
            await DeleteEventsOfAsync(k);
            await DeleteJourneysOfAsync(k);
            var rest = await People.QueryAllAsync<string>(new QueryDefinition("SELECT VALUE c.id FROM c WHERE c.pk = @pk AND c.id != @profile")
                .WithParameter("@pk", k).WithParameter("@profile", CosmosIds.Profile), k);
            foreach (var id in rest)
            {
                await People.DeleteAsync(id, k);
            }
        }

        foreach (var k in keys)
        {
            await DeleteProfileCoreAsync(k);
        }

        // Claims the profiles no longer list (left by a crash, or handed over in a merge) still hold the values.
        var claims = await Identifiers.QueryAllAsync<IdentifierDoc>(
            new QueryDefinition("SELECT * FROM c WHERE ARRAY_CONTAINS(@keys, c.profileKey)").WithParameter("@keys", keys), null);
        foreach (var c in claims)
        {
            await Identifiers.DeleteAsync(c.Id, c.Pk, c.ETag);
        }

        await Lookups.DeleteAsync(EraseSaltId(key), EraseSaltId(key));
    }

    public async Task<PurgeCounts> PurgeAsync(DateTimeOffset eventsBefore, DateTimeOffset messagesBefore, int limit, CancellationToken ct = default)
    {
        var events = await People.QueryAllAsync<IdPk>(new QueryDefinition("SELECT TOP @n c.id, c.pk FROM c WHERE c.type = @t AND c.ts < @b")
            .WithParameter("@n", limit).WithParameter("@t", DocType.Event).WithParameter("@b", eventsBefore.ToUnixTimeMilliseconds()), null, ct);
        foreach (var e in events)
        {
            await People.DeleteAsync(e.Id, e.Pk, ct: ct);
        }

        var beforeMs = messagesBefore.ToUnixTimeMilliseconds();
        var messages = await People.QueryAllAsync<PersonDoc<JsonElement>>(new QueryDefinition("SELECT TOP @n * FROM c WHERE c.type = @t AND c.createdAt < @b")
            .WithParameter("@n", limit).WithParameter("@t", DocType.Message).WithParameter("@b", beforeMs), null, ct);
        foreach (var m in messages)
        {
            // The document first, then what pointed at it (as a person's delete does).
            await People.DeleteAsync(m.Id, m.Pk, ct: ct);
            if (m.Timer is { } timer)
            {
                await Timers.DeleteAsync(timer.Id, timer.Pk, ct: ct);
            }

            var lookupId = "m:" + CosmosIds.Escape(m.Key!);
            if (await Lookups.ReadAsync<LookupDoc>(lookupId, lookupId, ct) is { } lookup && lookup.ProfileKey == m.Pk)
            {
                await Lookups.DeleteAsync(lookupId, lookupId, ct: ct);
            }
        }

        var outbox = await People.QueryAllAsync<IdPk>(new QueryDefinition("SELECT TOP @n c.id, c.pk FROM c WHERE c.type = @t AND c.recordedAt < @b")
            .WithParameter("@n", limit).WithParameter("@t", DocType.Outbox).WithParameter("@b", beforeMs), null, ct);
        foreach (var o in outbox)
        {
            await People.DeleteAsync(o.Id, o.Pk, ct: ct);
        }

        var delivery = await DeliveryEvents.QueryAllAsync<IdPk>(new QueryDefinition("SELECT TOP @n c.id, c.pk FROM c WHERE c.at < @b")
            .WithParameter("@n", limit).WithParameter("@b", beforeMs), null, ct);
        foreach (var d in delivery)
        {
            await DeliveryEvents.DeleteAsync(d.Id, d.Pk, ct: ct);
        }

        return new PurgeCounts(events.Count, messages.Count, outbox.Count, delivery.Count);
    }

    /// <summary>The salt of the erase of <paramref name="key"/>: the one a cut-off erase stored, else a new one, stored.</summary>
    private async Task<string> EraseSaltAsync(string key)
    {
        var id = EraseSaltId(key);
        while (true)
        {
            if (await Lookups.ReadAsync<EraseSaltDoc>(id, id) is { } stored)
            {
                return stored.Salt;
            }

            var salt = new EraseSaltDoc { Id = id, Pk = id, Salt = Erasure.NewSalt() };
            if (await Lookups.CreateAsync(salt, id) is not null)
            {
                return salt.Salt;
            }
        }
    }

    private static string EraseSaltId(string key) => "erasing:" + CosmosIds.Escape(key);

    /// <summary>A document's id and partition (a query's projection).</summary>
    private sealed record IdPk(string Id, string Pk);

    /// <summary>The salt of an erase in progress (lookups, id = pk = erasing:key); deleted when the erase ends.</summary>
    private sealed record EraseSaltDoc
    {
        public required string Id { get; init; }

        public required string Pk { get; init; }

        public required string Salt { get; init; }
    }
}
