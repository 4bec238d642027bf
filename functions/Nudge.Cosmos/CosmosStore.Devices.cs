using Microsoft.Azure.Cosmos;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

// Devices and push tokens.
//
// A device is stored in its owner's partition of `people` (so a person's devices are one partition query), and its
// token has a document in `tokens` naming the owner: that token document alone decides who has the token. Writes:
//   PutDevice:    1. the device in the new owner's partition   2. the token names the new owner (If-Match)
//                 3. the previous owner's copy is deleted
//   DeleteDevice: 1. the token names nobody (or goes, if it never bounced)   2. the device document
// A crash leaves at most a device document that its token does not name: readers check the token, so it belongs to
// nobody and the next write of that token or person removes it. The token never names someone without a device.
public sealed partial class CosmosStore
{
    internal async Task<Device?> GetDeviceCoreAsync(string token, CancellationToken ct)
    {
        var id = CosmosIds.Escape(token);
        if (await Tokens.ReadAsync<TokenDoc>(id, id, ct) is not { ProfileKey: { } owner })
        {
            return null;
        }

        return (await People.ReadAsync<PersonDoc<Device>>(CosmosIds.Device(token), owner, ct))?.Doc;
    }

    internal async Task<IReadOnlyList<Device>> GetDevicesCoreAsync(string profileKey, CancellationToken ct)
    {
        var docs = await People.QueryAllAsync<PersonDoc<Device>>(new QueryDefinition("SELECT * FROM c WHERE c.pk = @pk AND c.type = @t")
            .WithParameter("@pk", profileKey).WithParameter("@t", DocType.Device), profileKey, ct);
        if (docs.Count == 0)
        {
            return [];
        }

        // Only the devices whose token names this person: a copy left by a crash mid-move is not theirs.
        var owners = (await Tokens.ReadManyAsync<TokenDoc>(docs.Select(d => TokenKey(d.Doc.Token)), ct))
            .ToDictionary(t => t.Token, t => t.ProfileKey, StringComparer.Ordinal);
        return [.. docs.Where(d => owners.GetValueOrDefault(d.Doc.Token) == profileKey).Select(d => d.Doc).OrderBy(d => d.Token, StringComparer.Ordinal)];
    }

    internal async Task<IReadOnlyList<Device>> FindDevicesByPhysicalIdCoreAsync(string deviceId)
    {
        var tokens = await Tokens.QueryAllAsync<TokenDoc>(new QueryDefinition("SELECT * FROM c WHERE c.deviceId = @d AND IS_STRING(c.profileKey)")
            .WithParameter("@d", deviceId), null);
        return await DevicesOfTokensAsync(tokens, d => d.DeviceId == deviceId, default);
    }

    internal async Task PutDeviceCoreAsync(Device d)
    {
        var id = CosmosIds.Escape(d.Token);
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var token = await Tokens.ReadAsync<TokenDoc>(id, id);
            await People.UpsertAsync(new PersonDoc<Device> { Id = CosmosIds.Device(d.Token), Pk = d.ProfileKey, Type = DocType.Device, Key = d.Token, Doc = d }, d.ProfileKey);
            var next = new TokenDoc
            {
                Id = id,
                Pk = id,
                Token = d.Token,
                ProfileKey = d.ProfileKey,
                DeviceId = d.DeviceId,
                BouncedAt = token?.BouncedAt,
                BounceDetail = token?.BounceDetail,
            };
            var written = token is null ? await Tokens.CreateAsync(next, id) : await Tokens.ReplaceAsync(next, id, id, token.ETag!);
            if (written is null)
            {
                continue; // another writer changed the token meanwhile: read it again
            }

            if (token?.ProfileKey is { } previous && previous != d.ProfileKey)
            {
                await People.DeleteAsync(CosmosIds.Device(d.Token), previous);
            }

            return;
        }

        throw new ConcurrencyException($"push token {Device.TokenTailOf(d.Token)} is being written by several writers at once");
    }

    internal async Task DeleteDeviceCoreAsync(string tokenValue)
    {
        var id = CosmosIds.Escape(tokenValue);
        for (var attempt = 0; attempt < 10; attempt++)
        {
            if (await Tokens.ReadAsync<TokenDoc>(id, id) is not { ProfileKey: { } owner } token)
            {
                return;
            }

            // A bounced token keeps its document (without owner), so later sends to it are still dropped.
            var released = token.BouncedAt is null
                ? await Tokens.DeleteAsync(id, id, token.ETag)
                : await Tokens.ReplaceAsync(token with { ProfileKey = null, DeviceId = null, ETag = null }, id, id, token.ETag!) is not null;
            if (!released)
            {
                continue;
            }

            await People.DeleteAsync(CosmosIds.Device(tokenValue), owner);
            return;
        }

        throw new ConcurrencyException($"push token {Device.TokenTailOf(tokenValue)} is being written by several writers at once");
    }

    internal async Task MarkTokenBouncedCoreAsync(string tokenValue, DateTimeOffset at, string detail)
    {
        var id = CosmosIds.Escape(tokenValue);
        var atMs = at.ToUnixTimeMilliseconds();
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var token = await Tokens.ReadAsync<TokenDoc>(id, id);
            var next = (token ?? new TokenDoc { Id = id, Pk = id, Token = tokenValue }) with
            {
                // The latest bounce wins whatever order reports arrive in; the detail is the last one reported.
                BouncedAt = token?.BouncedAt is { } before ? Math.Max(before, atMs) : atMs,
                BounceDetail = detail,
                ETag = null,
            };
            var written = token is null ? await Tokens.CreateAsync(next, id) : await Tokens.ReplaceAsync(next, id, id, token.ETag!);
            if (written is not null)
            {
                return;
            }
        }

        throw new ConcurrencyException($"push token {Device.TokenTailOf(tokenValue)} is being written by several writers at once");
    }

    internal async Task<DateTimeOffset?> TokenBounceAsync(string tokenValue, CancellationToken ct)
    {
        var id = CosmosIds.Escape(tokenValue);
        return await Tokens.ReadAsync<TokenDoc>(id, id, ct) is { BouncedAt: { } ms } ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    internal async Task<IReadOnlyDictionary<string, (Device Device, DateTimeOffset? BouncedAt)>> PushTargetsAsync(IReadOnlyCollection<string> tokens, CancellationToken ct)
    {
        var found = new Dictionary<string, (Device, DateTimeOffset?)>(StringComparer.Ordinal);
        if (tokens.Count == 0)
        {
            return found;
        }

        // Two reads for the whole batch: the tokens (owner and bounce), then the owners' devices.
        var docs = (await Tokens.ReadManyAsync<TokenDoc>(tokens.Select(TokenKey), ct)).Where(t => t.ProfileKey is not null).ToList();
        var bounces = docs.ToDictionary(t => t.Token, t => t.BouncedAt, StringComparer.Ordinal);
        foreach (var device in await DevicesOfTokensAsync(docs, _ => true, ct))
        {
            found[device.Token] = (device, bounces[device.Token] is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null);
        }

        return found;
    }

    /// <summary>The devices the token documents name, read in one go, ordered by token.</summary>
    private async Task<IReadOnlyList<Device>> DevicesOfTokensAsync(IReadOnlyCollection<TokenDoc> tokens, Func<Device, bool> keep, CancellationToken ct)
    {
        var owners = tokens.Where(t => t.ProfileKey is not null).ToDictionary(t => t.Token, t => t.ProfileKey!, StringComparer.Ordinal);
        var docs = await People.ReadManyAsync<PersonDoc<Device>>(owners.Select(o => (CosmosIds.Device(o.Key), o.Value)), ct);
        return [.. docs.Where(d => owners.GetValueOrDefault(d.Doc.Token) == d.Pk && keep(d.Doc)).Select(d => d.Doc).OrderBy(d => d.Token, StringComparer.Ordinal)];
    }

    /// <summary>Removes the person's devices (each as <see cref="DeleteDeviceCoreAsync"/> does) and any stray copies in their partition.</summary>
    private async Task DeleteDevicesOfAsync(string key)
    {
        var docs = await People.QueryAllAsync<PersonDoc<Device>>(new QueryDefinition("SELECT * FROM c WHERE c.pk = @pk AND c.type = @t")
            .WithParameter("@pk", key).WithParameter("@t", DocType.Device), key);
        foreach (var d in docs)
        {
            var id = CosmosIds.Escape(d.Doc.Token);
            if (await Tokens.ReadAsync<TokenDoc>(id, id) is { } token && token.ProfileKey == key)
            {
                await DeleteDeviceCoreAsync(d.Doc.Token);
            }
            else
            {
                await People.DeleteAsync(d.Id, key); // a stray copy: the token is someone else's or nobody's
            }
        }
    }

    private static (string Id, string Pk) TokenKey(string token)
    {
        var id = CosmosIds.Escape(token);
        return (id, id);
    }
}
