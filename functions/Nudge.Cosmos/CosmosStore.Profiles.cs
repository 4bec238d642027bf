using Microsoft.Azure.Cosmos;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

// Profiles and identifier uniqueness.
//
// An identifier (id, email, anonymous id, merge alias) is one document in `identifiers`, created by the profile that
// claims it: creation fails (409) when someone else holds it, which is what makes identifiers unique across people.
// An identifier resolves to the profile its document names ONLY while that profile's document also lists it. Writes:
//   PutProfile:    1. check the version (read; nothing written yet)
//                  2. claim each identifier the profile gains (create, or take over a claim left by a crash)
//                  3. write the profile with If-Match (on a lost race: release the claims of step 2, throw)
//                  4. delete the claims of identifiers it dropped
//   DeleteProfile: 1. the person's devices, events, instances, messages   2. the profile   3. its identifier claims
// Step 2 may take an identifier from a profile in the writer's MergedFrom (an identity merge writes the primary before
// deleting the secondary): the claim then names the secondary as TakenFrom, and the secondary keeps resolving it until
// the primary's document lists it, so a crash between the two leaves it with the secondary, never with nobody.
// A crash after step 2 leaves claims the profile does not list: they resolve to nobody (step 3 never happened), and
// one older than the grace period is taken over by the next profile that claims it. A crash after step 3 leaves
// claims of identifiers the profile no longer lists: likewise unresolvable and free after the grace period. No
// crash can make an identifier resolve to two people (one document per identifier), nor to nobody for ever.
public sealed partial class CosmosStore
{
    internal async Task<Profile?> GetProfileCoreAsync(string key, CancellationToken ct) =>
        await ReadProfileAsync(key, ct) is { } d ? WithVersion(d) : null;

    internal async Task<string?> ResolveCoreAsync(Identifier identifier, CancellationToken ct)
    {
        if (identifier.Kind == IdentifierKind.CioId && await ReadProfileAsync(identifier.Value, ct) is not null)
        {
            return identifier.Value;
        }

        foreach (var kind in IdentifierIndex.KindsFor(identifier.Kind))
        {
            var id = CosmosIds.Identifier(kind, identifier.Value);
            if (await Identifiers.ReadAsync<IdentifierDoc>(id, id, ct) is not { } claim)
            {
                continue;
            }

            // The claim counts only if a profile confirms it (see the top of this file).
            if (await HolderAsync(claim, kind, identifier.Value, ct) is { } holder)
            {
                return holder;
            }
        }

        return null;
    }

    internal async Task PutProfileCoreAsync(Profile p)
    {
        var current = await ReadProfileAsync(p.Key, default);
        if (p.Version == 0 ? current is not null : current?.Version != p.Version)
        {
            throw new ConcurrencyException(p.Version == 0
                ? $"profile {p.Key} exists already"
                : $"profile {p.Key} changed since version {p.Version} was read");
        }

        var had = current is null ? [] : IdentifierIndex.Of(current.Doc).ToHashSet();
        var wants = IdentifierIndex.Of(p).Distinct().ToList();
        var claimed = new List<IdentifierDoc>();
        try
        {
            foreach (var (kind, value) in wants.Where(i => !had.Contains(i)))
            {
                if (await ClaimAsync(kind, value, p.Key, p.MergedFrom) is { } claim)
                {
                    claimed.Add(claim);
                }
                else if (!kind.StartsWith("alias_", StringComparison.Ordinal))
                {
                    throw new ConcurrencyException($"{kind} '{value}' belongs to another profile");
                }

                // A merge alias someone else holds stays theirs (as in the SQLite store): it just does not resolve here.
            }

            var doc = new PersonDoc<Profile> { Id = CosmosIds.Profile, Pk = p.Key, Type = DocType.Profile, Version = p.Version + 1, Phones = PhonesOf(p), Doc = p };
            var written = current is null
                ? await People.CreateAsync(doc, p.Key)
                : await People.ReplaceAsync(doc, CosmosIds.Profile, p.Key, current.ETag!);
            if (written is null)
            {
                throw new ConcurrencyException(current is null
                    ? $"profile {p.Key} exists already"
                    : $"profile {p.Key} changed since version {p.Version} was read");
            }
        }
        catch (ConcurrencyException)
        {
            // Nothing of a refused write may stay: give back what this call claimed (only if still as we left it).
            foreach (var c in claimed)
            {
                if (c.TakenFrom is { } from)
                {
                    // Handed over by a merge that did not happen: hand it back.
                    await Identifiers.ReplaceAsync(c with { ProfileKey = from, TakenFrom = null, ClaimedAt = NowMs(), ETag = null }, c.Id, c.Pk, c.ETag!);
                }
                else
                {
                    await Identifiers.DeleteAsync(c.Id, c.Pk, c.ETag);
                }
            }

            throw;
        }

        // The profile no longer lists these: free them for others now rather than after the grace period.
        foreach (var (kind, value) in had.Where(i => !wants.Contains(i)))
        {
            await ReleaseAsync(kind, value, p.Key);
        }

        p.Version++;
    }

    internal async Task DeleteProfileCoreAsync(string key)
    {
        var current = await ReadProfileAsync(key, default);

        // Everything in the partition first, while the profile still resolves: a crash here is finished by the retry.
        await DeleteDevicesOfAsync(key);
        await DeleteEventsOfAsync(key);
        await DeleteJourneysOfAsync(key);
        if (current is null)
        {
            return;
        }

        // Then the profile, which makes every identifier it listed resolve to nobody at once; then the claims themselves.
        await People.DeleteAsync(CosmosIds.Profile, key);
        foreach (var (kind, value) in IdentifierIndex.Of(current.Doc))
        {
            await ReleaseAsync(kind, value, key);
        }
    }

    internal async Task<IReadOnlyList<string>> FindProfilesByPhoneCoreAsync(string e164)
    {
        // Across people: one cross-partition query on the indexed phones field (inbound SMS are rare next to sends).
        var q = new QueryDefinition("SELECT VALUE c.pk FROM c WHERE c.type = @t AND ARRAY_CONTAINS(c.phones, @p)")
            .WithParameter("@t", DocType.Profile).WithParameter("@p", e164);
        return [.. (await People.QueryAllAsync<string>(q, null)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }

    /// <summary>The profile's phone numbers as stored (E.164), or null when it has none (the field is then left out).</summary>
    private static List<string>? PhonesOf(Profile p)
    {
        var phones = new[] { p.GetString(Consent.SmsPhoneAttr), p.GetString(Consent.PhoneAttr) }
            .Where(x => !string.IsNullOrEmpty(x)).Select(x => x!).Distinct(StringComparer.Ordinal).ToList();
        return phones.Count == 0 ? null : phones;
    }

    private Task<PersonDoc<Profile>?> ReadProfileAsync(string key, CancellationToken ct) =>
        People.ReadAsync<PersonDoc<Profile>>(CosmosIds.Profile, key, ct);

    private static Profile WithVersion(PersonDoc<Profile> d)
    {
        d.Doc.Version = d.Version ?? 0;
        return d.Doc;
    }

    /// <summary>
    /// Makes <paramref name="key"/> the holder of an identifier it does not hold yet, and returns the claim (with its
    /// ETag); null when another profile holds it (its profile lists it, or its claim is younger than the grace period:
    /// a writer between its claim and its profile write).
    /// </summary>
    private async Task<IdentifierDoc?> ClaimAsync(string kind, string value, string key, IReadOnlyCollection<string> mergedFrom)
    {
        var id = CosmosIds.Identifier(kind, value);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var mine = new IdentifierDoc { Id = id, Pk = id, Kind = kind, Value = value, ProfileKey = key, ClaimedAt = NowMs() };
            if (await Identifiers.CreateAsync(mine, id) is { } created)
            {
                return mine with { ETag = created };
            }

            var existing = await Identifiers.ReadAsync<IdentifierDoc>(id, id);
            if (existing is null)
            {
                continue; // released meanwhile: create again
            }

            var holder = await HolderAsync(existing, kind, value);
            if (holder is not null && holder != key)
            {
                if (!mergedFrom.Contains(holder))
                {
                    return null;
                }

                // An identity merge: the secondary's identifier passes to the primary. The claim remembers the
                // secondary, which resolves it until the primary's document lists it (a crash in between must not
                // leave it resolving to nobody: the retried merge has to find the secondary again).
                var taken = mine with { TakenFrom = holder };
                if (await Identifiers.ReplaceAsync(taken, id, id, existing.ETag!) is { } handedOver)
                {
                    return taken with { ETag = handedOver };
                }

                continue;
            }

            if (holder is null && existing.ProfileKey != key && !Abandoned(existing.ClaimedAt))
            {
                return null;
            }

            // Left by a crash (ours or another profile's): take it, with a fresh time, so that nobody takes it from us
            // while we write the profile that confirms it.
            if (await Identifiers.ReplaceAsync(mine, id, id, existing.ETag!) is { } replaced)
            {
                return mine with { ETag = replaced };
            }
        }

        throw new ConcurrencyException($"{kind} '{value}' is being claimed by several writers at once");
    }

    /// <summary>
    /// The profile an identifier claim resolves to, or null: the profile it names while that profile lists it; else,
    /// for a claim an identity merge handed over, the merged-away profile while it still lists it (the merge's primary
    /// is not written yet, and may never be if the writer crashed: the retried merge must find the secondary again).
    /// </summary>
    private async Task<string?> HolderAsync(IdentifierDoc claim, string kind, string value, CancellationToken ct = default)
    {
        if (await ReadProfileAsync(claim.ProfileKey, ct) is { } owner && Lists(owner.Doc, kind, value))
        {
            return claim.ProfileKey;
        }

        return claim.TakenFrom is { } from && await ReadProfileAsync(from, ct) is { } previous && Lists(previous.Doc, kind, value) ? from : null;
    }

    /// <summary>Deletes the claim if <paramref name="key"/> still holds it.</summary>
    private async Task ReleaseAsync(string kind, string value, string key)
    {
        var id = CosmosIds.Identifier(kind, value);
        if (await Identifiers.ReadAsync<IdentifierDoc>(id, id) is { } claim && claim.ProfileKey == key)
        {
            await Identifiers.DeleteAsync(id, id, claim.ETag);
        }
    }

    /// <summary>True when the profile lists the identifier (so a claim of it by this profile is confirmed).</summary>
    private static bool Lists(Profile p, string kind, string value) => kind switch
    {
        "id" => p.Id == value,
        "email" => p.Email == value,
        "anon" => p.AnonymousIds.Contains(value),
        "alias_id" => p.AliasIds.Contains(value),
        "alias_email" => p.AliasEmails.Contains(value),
        "alias_cio" => p.MergedFrom.Contains(value),
        _ => false,
    };

    /// <summary>Ids of the documents of one type in a person's partition.</summary>
    private Task<List<string>> IdsOfTypeAsync(string key, string type) =>
        People.QueryAllAsync<string>(new QueryDefinition("SELECT VALUE c.id FROM c WHERE c.pk = @pk AND c.type = @t")
            .WithParameter("@pk", key).WithParameter("@t", type), key);
}
