using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Azure.Cosmos;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

// Journey instances, messages and their timers.
//
// An instance or message is one document in its person's partition. Two index containers point at it:
//   lookups: its id -> the partition it is in (so it is read by id alone, with two point reads);
//   timers:  one entry per scheduled wake-up (an instance's wakeAt, a message's next send attempt), in the bucket of
//            its due time; the document names its current entry (Timer), and an entry counts only while it is named.
// Every write of such a document (WriteIndexedAsync) goes:
//   1. a new timer entry, when the due time changes
//   2. new: the lookup, then the document (Create) | changed: the document (If-Match) | moved to another person: the
//      copy in the new partition, then the lookup
//   3. moved: the old copy (If-Match)     4. the timer entry the document no longer names
// A crash after 1 leaves an entry the document does not name (ignored by sweeps, removed after the grace period); in
// 2, a lookup to a partition without the document yet (read as "no such document"), or a copy in both partitions
// until the retried move finishes (reads by id follow the lookup, which names a partition holding a copy at every
// moment); after 2 or 3, an old entry (ignored, removed). So the sweep never misses a due document (its entry exists
// before the document names it) and never acts on a stale entry (it checks the name). A move deletes the old copy
// with If-Match: a writer that changed it meanwhile wins, and the move is undone for the caller to retry.
// Message claims are the same write: the ready time becomes the claim's end, under If-Match, so one of two send
// stages wins and the other sees the message no longer due.
public sealed partial class CosmosStore
{
    internal async Task<JourneyInstance?> GetInstanceCoreAsync(string id) =>
        await LocateAsync<JourneyInstance>(DocType.Instance, id, null, default) is { } d ? WithVersion(d) : null;

    internal async Task<IReadOnlyList<JourneyInstance>> InstancesOfAsync(string profileKey, CancellationToken ct = default)
    {
        var docs = await OfTypeAsync<JourneyInstance>(profileKey, DocType.Instance, ct);
        return [.. docs.Select(WithVersion).OrderBy(i => i.Id, StringComparer.Ordinal)];
    }

    internal async Task PutInstanceCoreAsync(JourneyInstance i)
    {
        var current = await LocateAsync<JourneyInstance>(DocType.Instance, i.Id, i.ProfileKey, default);
        if (i.Version == 0 ? current is not null : current?.Version != i.Version)
        {
            throw new ConcurrencyException(i.Version == 0
                ? $"journey instance {i.Id} exists already"
                : $"journey instance {i.Id} changed since version {i.Version} was read");
        }

        if (!await WriteIndexedAsync(DocType.Instance, i.Id, current, InstanceDoc(i, i.Version + 1)))
        {
            throw new ConcurrencyException($"journey instance {i.Id} changed since version {i.Version} was read");
        }

        i.Version++;
    }

    internal async Task<bool> TryAddMessageCoreAsync(Message m)
    {
        if (await LocateAsync<Message>(DocType.Message, m.Id, m.ProfileKey, default) is not null)
        {
            return false;
        }

        // Create: when another writer adds the same message first, this one loses (a retried step) and says so.
        return await WriteIndexedAsync(DocType.Message, m.Id, null, MessageDoc(m));
    }

    internal async Task PutMessageCoreAsync(Message m)
    {
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var current = await LocateAsync<Message>(DocType.Message, m.Id, m.ProfileKey, default);
            if (await WriteIndexedAsync(DocType.Message, m.Id, current, MessageDoc(m)))
            {
                return;
            }
        }

        throw new ConcurrencyException($"message {m.Id} is being written by several writers at once");
    }

    internal async Task<Message?> GetMessageCoreAsync(string id) => (await LocateAsync<Message>(DocType.Message, id, null, default))?.Doc;

    internal async Task<IReadOnlyList<Message>> MessagesSinceCoreAsync(string profileKey, DateTimeOffset since)
    {
        var q = new QueryDefinition("SELECT * FROM c WHERE c.pk = @pk AND c.type = @t AND c.createdAt >= @since ORDER BY c.createdAt ASC, c.key ASC")
            .WithParameter("@pk", profileKey).WithParameter("@t", DocType.Message).WithParameter("@since", since.ToUnixTimeMilliseconds());
        return [.. (await People.QueryAllAsync<PersonDoc<Message>>(q, profileKey)).Select(d => d.Doc)];
    }

    internal async Task MoveJourneysCoreAsync(string fromKey, string toKey)
    {
        if (fromKey == toKey)
        {
            return;
        }

        // Each document read here is moved as it was read (If-Match on the old copy is what a concurrent writer races
        // against), not found again by id: after an interrupted move the new partition may hold a copy already, and the
        // old one stays the authority until its lookup names the new partition.
        foreach (var d in await OfTypeAsync<JourneyInstance>(fromKey, DocType.Instance, default))
        {
            d.Doc.ProfileKey = toKey;
            if (!await WriteIndexedAsync(DocType.Instance, d.Doc.Id, d, InstanceDoc(d.Doc, (d.Version ?? 0) + 1)))
            {
                throw new ConcurrencyException($"journey instance {d.Doc.Id} changed while it was being moved");
            }
        }

        foreach (var d in await OfTypeAsync<Message>(fromKey, DocType.Message, default))
        {
            d.Doc.ProfileKey = toKey;
            if (!await WriteIndexedAsync(DocType.Message, d.Doc.Id, d, MessageDoc(d.Doc)))
            {
                throw new ConcurrencyException($"message {d.Doc.Id} changed while it was being moved");
            }
        }
    }

    internal async Task RecordOutboxCoreAsync(OutboxEntry e) =>
        // Create: recorded before (a retried attempt) leaves the first record as it was.
        await People.CreateAsync(new PersonDoc<OutboxEntry>
        {
            Id = CosmosIds.Outbox(e.MessageId),
            Pk = e.ProfileKey,
            Type = DocType.Outbox,
            Key = e.MessageId,
            RecordedAt = e.RecordedAt.ToUnixTimeMilliseconds(),
            Doc = e,
        }, e.ProfileKey);

    internal async Task<bool> TryClaimMessageCoreAsync(string id, DateTimeOffset now, DateTimeOffset until)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var current = await LocateAsync<Message>(DocType.Message, id, null, default);
            if (current is null || !IsDue(current, now.ToUnixTimeMilliseconds()))
            {
                return false;
            }

            if (await ClaimAsync(current, until))
            {
                return true;
            }
        }

        return false; // lost to other writers every time: someone else has it
    }

    internal async Task<IReadOnlyList<Message>> ClaimReadyMessagesCoreAsync(DateTimeOffset now, DateTimeOffset until, int limit)
    {
        var taken = new List<Message>();
        if (limit <= 0)
        {
            return taken;
        }

        await foreach (var (_, doc) in DueAsync<Message>(DocType.Message, now.ToUnixTimeMilliseconds(), default, Math.Clamp(limit, 10, 100)))
        {
            // One attempt each: a message another send stage took meanwhile is theirs.
            if (await ClaimAsync(doc, until))
            {
                taken.Add(doc.Doc);
                if (taken.Count == limit)
                {
                    break;
                }
            }
        }

        return taken;
    }

    internal async Task<IReadOnlySet<string>> HeldClaimsCoreAsync(IReadOnlyCollection<HeldClaim> claims, CancellationToken ct)
    {
        // Point reads in the person's partition (the lookup when the message moved), side by side.
        var read = await Task.WhenAll(claims.Select(async h =>
            (h.MessageId, Held: await LocateAsync<Message>(DocType.Message, h.MessageId, h.ProfileKey, ct) is { } d
                && d.Ready == Math.Max(1, h.Claim.ToUnixTimeMilliseconds()))));
        return read.Where(x => x.Held).Select(x => x.MessageId).ToHashSet(StringComparer.Ordinal);
    }

    internal async Task<bool> TryRenewClaimCoreAsync(string id, string profileKey, DateTimeOffset claim, DateTimeOffset until)
    {
        var claimMs = Math.Max(1, claim.ToUnixTimeMilliseconds());
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var current = await LocateAsync<Message>(DocType.Message, id, profileKey, default);
            if (current is null || current.Ready != claimMs)
            {
                return false; // the claim ran out and someone else took the message, or it was handled
            }

            // Lost only to a writer that changed the document meanwhile: read again, and the claim check decides.
            if (await ClaimAsync(current, until))
            {
                return true;
            }
        }

        return false;
    }

    internal async Task<bool> TryRecordSendOutcomeCoreAsync(Message m, DateTimeOffset claim)
    {
        var claimMs = Math.Max(1, claim.ToUnixTimeMilliseconds());
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var current = await LocateAsync<Message>(DocType.Message, m.Id, m.ProfileKey, default);
            if (current is null || current.Ready != claimMs)
            {
                return false; // the claim ran out and someone else took the message, or it was handled
            }

            if (await WriteIndexedAsync(DocType.Message, m.Id, current, MessageDoc(m) with { Pk = current.Pk }))
            {
                return true;
            }
        }

        throw new ConcurrencyException($"message {m.Id} is being written by several writers at once");
    }

    /// <summary>
    /// Entries of <paramref name="kind"/> due at <paramref name="nowMs"/> (every one when null), earliest first (then by
    /// target id), each with the document that names it; entries no document names are skipped, and removed once
    /// abandoned. A target appears once.
    /// </summary>
    internal async IAsyncEnumerable<(TimerDoc Entry, PersonDoc<T> Doc)> DueAsync<T>(string kind, long? nowMs, [EnumeratorCancellation] CancellationToken ct, int batch = 100)
    {
        var q = new QueryDefinition("SELECT * FROM c WHERE c.kind = @k" + (nowMs is null ? "" : " AND c.due <= @now") + " ORDER BY c.due ASC, c.target ASC")
            .WithParameter("@k", kind);
        if (nowMs is { } now)
        {
            q = q.WithParameter("@now", now);
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<TimerDoc>(batch);
        await using var e = Timers.QueryAsync<TimerDoc>(q, null, batch, ct).GetAsyncEnumerator(ct);
        var more = true;
        while (more)
        {
            entries.Clear();
            while (entries.Count < batch && (more = await e.MoveNextAsync()))
            {
                entries.Add(e.Current);
            }

            if (entries.Count == 0)
            {
                break;
            }

            var docs = (await People.ReadManyAsync<PersonDoc<T>>(entries.Select(x => (DocId(kind, x.Target), x.ProfileKey)), ct))
                .ToDictionary(d => (d.Key!, d.Pk));
            foreach (var entry in entries)
            {
                if (docs.TryGetValue((entry.Target, entry.ProfileKey), out var doc) && doc.Timer?.Id == entry.Id)
                {
                    if (seen.Add(entry.Target))
                    {
                        yield return (entry, doc);
                    }
                }
                else if (Abandoned(entry.WrittenAt))
                {
                    // Left by a crash or a lost race: no writer will ever name it now.
                    await Timers.DeleteAsync(entry.Id, entry.Pk, entry.ETag, ct);
                }
            }
        }
    }

    /// <summary>Deletes the person's instances and messages with their timer entries and lookups.</summary>
    private async Task DeleteJourneysOfAsync(string key)
    {
        foreach (var type in new[] { DocType.Instance, DocType.Message })
        {
            foreach (var d in await People.QueryAllAsync<PersonDoc<JsonElement>>(new QueryDefinition("SELECT * FROM c WHERE c.pk = @pk AND c.type = @t")
                .WithParameter("@pk", key).WithParameter("@t", type), key))
            {
                // The document first; what pointed at it then points at nothing, which readers treat as nothing.
                await People.DeleteAsync(d.Id, key);
                if (d.Timer is { } t)
                {
                    await Timers.DeleteAsync(t.Id, t.Pk);
                }

                var lookupId = LookupId(type, d.Key!);
                if (await Lookups.ReadAsync<LookupDoc>(lookupId, lookupId) is { } lookup && lookup.ProfileKey == key)
                {
                    await Lookups.DeleteAsync(lookupId, lookupId);
                }
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="next"/> over <paramref name="current"/> (its stored state, with ETag; null when new) in the
    /// crash-safe order described at the top of this file. False, with nothing of this write left behind, when the
    /// document changed since <paramref name="current"/> was read or (when new) exists already.
    /// </summary>
    private async Task<bool> WriteIndexedAsync<T>(string kind, string targetId, PersonDoc<T>? current, PersonDoc<T> next)
    {
        TimerRef? timer = null;
        TimerRef? added = null;
        TimerDoc? addedEntry = null;
        if (DueOf(next) is { } due)
        {
            if (current is { Timer: { } kept } && current.Pk == next.Pk && DueOf(current) == due)
            {
                timer = kept; // same wake-up: its entry stays
            }
            else
            {
                var entry = new TimerDoc
                {
                    Id = $"{kind}-{Guid.NewGuid():N}",
                    Pk = CosmosIds.Bucket(due),
                    Kind = kind,
                    Due = due,
                    Target = targetId,
                    ProfileKey = next.Pk,
                    WrittenAt = NowMs(),
                };
                await Timers.UpsertAsync(entry, entry.Pk);
                timer = added = new TimerRef(entry.Id, entry.Pk);
                addedEntry = entry;
            }
        }

        next = next with { Timer = timer, ETag = null };
        var moved = current is not null && current.Pk != next.Pk;
        var lookupId = LookupId(kind, targetId);
        string? written;
        if (current is null)
        {
            // New: the lookup first, so the document is found by id as soon as it exists; Create, so that of two
            // writers adding it one loses.
            await Lookups.UpsertAsync(new LookupDoc { Id = lookupId, Pk = lookupId, ProfileKey = next.Pk }, lookupId);
            written = await People.CreateAsync(next, next.Pk);
        }
        else if (moved)
        {
            // Moved: the new copy first (Upsert: a copy there can only be one an interrupted move of this document
            // left), then the lookup, so a read by id finds a copy at every moment.
            written = await People.UpsertAsync(next, next.Pk);
            await Lookups.UpsertAsync(new LookupDoc { Id = lookupId, Pk = lookupId, ProfileKey = next.Pk }, lookupId);
        }
        else
        {
            written = await People.ReplaceAsync(next, next.Id, next.Pk, current.ETag!);
        }

        if (written is null)
        {
            if (added is not null)
            {
                await Timers.DeleteAsync(added.Id, added.Pk);
            }

            return false;
        }

        if (moved && !await People.DeleteAsync(current!.Id, current.Pk, current.ETag))
        {
            // The old copy changed (or went) after it was read: a writer raced the move. Undo it, so the copy that
            // writer made stays the one the lookup names, and let the caller read it again.
            await Lookups.UpsertAsync(new LookupDoc { Id = lookupId, Pk = lookupId, ProfileKey = current.Pk }, lookupId);
            await People.DeleteAsync(next.Id, next.Pk, written);
            if (added is not null)
            {
                await Timers.DeleteAsync(added.Id, added.Pk);
            }

            return false;
        }

        if (addedEntry is not null && NowMs() - addedEntry.WrittenAt > _graceMs / 2)
        {
            // This write was slow enough that a sweep may have taken its entry for abandoned and removed it before the
            // document named it: put it back (the document names it now, so no sweep removes it any more).
            await Timers.UpsertAsync(addedEntry, addedEntry.Pk);
        }

        if (current?.Timer is { } old && old != timer)
        {
            await Timers.DeleteAsync(old.Id, old.Pk);
        }

        return true;
    }

    /// <summary>The document wherever it is: in <paramref name="hintPk"/>'s partition if there, else where its lookup says.</summary>
    private async Task<PersonDoc<T>?> LocateAsync<T>(string kind, string id, string? hintPk, CancellationToken ct)
    {
        var docId = DocId(kind, id);
        if (hintPk is not null && await People.ReadAsync<PersonDoc<T>>(docId, hintPk, ct) is { } here)
        {
            return here;
        }

        var lookupId = LookupId(kind, id);
        if (await Lookups.ReadAsync<LookupDoc>(lookupId, lookupId, ct) is not { } lookup || lookup.ProfileKey == hintPk)
        {
            return null;
        }

        return await People.ReadAsync<PersonDoc<T>>(docId, lookup.ProfileKey, ct);
    }

    /// <summary>Takes a due message until <paramref name="until"/>: its ready time becomes the claim's end (the document itself is unchanged).</summary>
    private Task<bool> ClaimAsync(PersonDoc<Message> current, DateTimeOffset until) =>
        WriteIndexedAsync(DocType.Message, current.Doc.Id, current, current with { Ready = Math.Max(1, until.ToUnixTimeMilliseconds()) });

    private static bool IsDue(PersonDoc<Message> d, long nowMs) => d.Ready is > 0 and var r && r <= nowMs;

    private Task<List<PersonDoc<T>>> OfTypeAsync<T>(string key, string type, CancellationToken ct) =>
        People.QueryAllAsync<PersonDoc<T>>(new QueryDefinition("SELECT * FROM c WHERE c.pk = @pk AND c.type = @t")
            .WithParameter("@pk", key).WithParameter("@t", type), key, ct);

    private static PersonDoc<JourneyInstance> InstanceDoc(JourneyInstance i, long version) => new()
    {
        Id = CosmosIds.Instance(i.Id),
        Pk = i.ProfileKey,
        Type = DocType.Instance,
        Key = i.Id,
        Version = version,
        WakeAt = i.WakeAt?.ToUnixTimeMilliseconds(),
        Doc = i,
    };

    private static PersonDoc<Message> MessageDoc(Message m) => new()
    {
        Id = CosmosIds.Message(m.Id),
        Pk = m.ProfileKey,
        Type = DocType.Message,
        Key = m.Id,
        CreatedAt = m.CreatedAt.ToUnixTimeMilliseconds(),
        // As the SQLite store's ready column: 0 when the send stage has nothing to do, else the next attempt (at least 1).
        Ready = !m.Ready ? 0 : Math.Max(1, (m.NextAttemptAt ?? m.CreatedAt).ToUnixTimeMilliseconds()),
        JourneyId = m.JourneyId,
        StepId = m.StepId,
        Channel = m.Channel.ToString().ToLowerInvariant(),
        Status = m.Status,
        Reason = m.Reason,
        Platforms = m.Platforms,
        Doc = m,
    };

    private static JourneyInstance WithVersion(PersonDoc<JourneyInstance> d)
    {
        d.Doc.Version = d.Version ?? 0;
        return d.Doc;
    }

    /// <summary>When the document is due: a message's ready time (if any), an instance's wake-up time.</summary>
    private static long? DueOf<T>(PersonDoc<T> d) => d.Type == DocType.Message ? (d.Ready is > 0 ? d.Ready : null) : d.WakeAt;

    private static string DocId(string kind, string id) => kind == DocType.Instance ? CosmosIds.Instance(id) : CosmosIds.Message(id);

    private static string LookupId(string kind, string id) => (kind == DocType.Instance ? "i:" : "m:") + CosmosIds.Escape(id);
}
