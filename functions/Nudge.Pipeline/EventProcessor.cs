using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Pipeline;

/// <summary>
/// The process-event stage: applies one <see cref="IngestOp"/> to the store. Idempotent by <see cref="IngestOp.MessageId"/>:
/// an op seen before changes nothing. Writes profile, device and event changes and records device and identity
/// diagnostics on the person's timeline.
/// </summary>
public sealed partial class EventProcessor(IngestLimits limits, TimeProvider? time = null, JourneyRuntime? journeys = null)
{
    public async Task ProcessAsync(IStoreSession s, IngestOp op)
    {
        if (!await s.TryMarkProcessedAsync(op.MessageId, op.ReceivedAt))
        {
            PipelineTelemetry.EventProcessed(op.Kind, duplicate: true);
            return;
        }

        PipelineTelemetry.EventProcessed(op.Kind, duplicate: false);

        var run = new Run(s, op, limits, time ?? TimeProvider.System, journeys);
        switch (op.Kind)
        {
            case OpKind.Identify: await run.IdentifyAsync(); break;
            case OpKind.Track: await run.TrackAsync(); break;
            case OpKind.UpsertDevice: await run.UpsertDeviceAsync(); break;
            case OpKind.DeleteDevice: await run.DeleteDeviceAsync(); break;
            case OpKind.DeleteProfile: await run.DeleteProfileAsync(); break;
            case OpKind.Suppress or OpKind.Unsuppress: await run.SuppressAsync(op.Kind == OpKind.Suppress); break;
            case OpKind.Merge: await run.MergeAsync(); break;
            case OpKind.MessageReport: await ApplyReportAsync(s, op, (time ?? TimeProvider.System).GetUtcNow()); break;
            case OpKind.SmsKeyword: await ApplySmsKeywordAsync(s, op); break;
            default: throw new InvalidOperationException($"unknown op kind {op.Kind}");
        }
    }

    /// <summary>The state of one op being applied.</summary>
    private sealed class Run(IStoreSession s, IngestOp op, IngestLimits limits, TimeProvider time, JourneyRuntime? journeys)
    {
        private int _systemEvents;

        public async Task IdentifyAsync()
        {
            var p = await FindAsync(op.Target);
            if (p is null && (await FindAsync(Id(op.SetId)) ?? await FindAsync(Email(op.SetEmail))) is { } byBody)
            {
                // Found through the id or email in the body: the path/userId names the same person from now on.
                p = byBody;
                await AttachAsync(p, op.Target!);
            }

            if (p is null)
            {
                if (op.UpdateOnly)
                {
                    return;
                }

                p = await CreateAsync(op.Target!);
                if (p is null)
                {
                    return;
                }
            }

            if (op.AnonymousId is not null)
            {
                await AdoptAnonymousAsync(p, op.AnonymousId);
            }

            if (op.SetId is not null && op.SetId != p.Id)
            {
                var owner = await s.ResolveAsync(new Identifier(IdentifierKind.Id, op.SetId));
                if (owner is null || owner == p.Key)
                {
                    p.AliasIds.Remove(op.SetId);
                    p.Id = op.SetId;
                }
                else
                {
                    await SystemEventAsync(p.Key, "identify_conflict", new JsonObject { ["field"] = "id", ["value"] = op.SetId, ["reason"] = "id belongs to another person" });
                }
            }

            if (op.SetEmail is not null && op.SetEmail != p.Email)
            {
                var owner = await s.ResolveAsync(Identifier.Email(op.SetEmail));
                var other = owner is null || owner == p.Key ? null : await s.GetProfileAsync(owner);
                if (other is not null && other.Id is null && other.Email == op.SetEmail)
                {
                    // Known only by this email: the same person reached through another identifier.
                    await MergeIntoAsync(p, other.Key);
                }

                if (other is null || (other.Id is null && other.Email == op.SetEmail))
                {
                    p.AliasEmails.Remove(op.SetEmail);
                    p.Email = op.SetEmail;
                }
                else
                {
                    await SystemEventAsync(p.Key, "identify_conflict", new JsonObject { ["field"] = "email", ["value"] = op.SetEmail, ["reason"] = "email belongs to another person" });
                }
            }

            if (op.Attributes is { Count: > 0 })
            {
                var rejected = ProfileRules.ApplyAttributes(p, op.Attributes, op.Timestamp, op.Source, op.Ip, limits.MaxAttributes);
                if (rejected.Count > 0)
                {
                    await SystemEventAsync(p.Key, "attributes_rejected", new JsonObject
                    {
                        ["reason"] = $"person already has {limits.MaxAttributes} attributes",
                        ["names"] = new JsonArray(rejected.Select(n => (JsonNode)n).ToArray()),
                    });
                }
            }

            p.UpdatedAt = op.ReceivedAt;
            await s.PutProfileAsync(p);
            await TouchAsync(p.Key);
            if (journeys is not null)
            {
                await journeys.OnProfileChangedAsync(s, p, time.GetUtcNow());
            }
        }

        public async Task TrackAsync()
        {
            if (op.Target is null)
            {
                await AppendAsync(null);
                return;
            }

            // The common case, an event of a known person that no journey reacts to (a page or product view), needs the
            // person's key only: their profile is neither read nor written.
            if (op.AnonymousId is null && journeys?.ReactsTo(op.Event!.Name) != true && await s.ResolveAsync(op.Target) is { } known)
            {
                await AppendAsync(known);
                await TouchAsync(known);
                return;
            }

            var p = await FindAsync(op.Target) ?? await CreateAsync(op.Target);
            if (p is null)
            {
                return;
            }

            var dirty = p.Version == 0;
            if (op.AnonymousId is not null && !p.AnonymousIds.Contains(op.AnonymousId))
            {
                await AdoptAnonymousAsync(p, op.AnonymousId);
                dirty = true;
            }

            if (dirty)
            {
                p.UpdatedAt = op.ReceivedAt;
                await s.PutProfileAsync(p);
            }

            var stored = await AppendAsync(p.Key);
            await TouchAsync(p.Key);
            if (journeys is not null)
            {
                await journeys.OnEventAsync(s, p, stored, time.GetUtcNow());
            }
        }

        public async Task UpsertDeviceAsync()
        {
            var p = await FindAsync(op.Target) ?? await CreateAsync(op.Target!);
            if (p is null)
            {
                return;
            }

            if (p.Version == 0)
            {
                p.UpdatedAt = op.ReceivedAt;
                await s.PutProfileAsync(p);
            }

            var d = op.Device!;
            var existing = await s.GetDeviceAsync(d.Token);
            if (existing is not null && existing.ProfileKey != p.Key)
            {
                await SystemEventAsync(existing.ProfileKey, "device_removed", DeviceData(existing, "token_moved_to_another_person"));
                existing = null;
            }

            string? rotatedFrom = null;
            if (d.DeviceId is not null)
            {
                foreach (var old in await s.FindDevicesByPhysicalIdAsync(d.DeviceId))
                {
                    if (old.Token == d.Token)
                    {
                        continue;
                    }

                    await s.DeleteDeviceAsync(old.Token);
                    if (old.ProfileKey == p.Key)
                    {
                        rotatedFrom = old.TokenTail;
                        existing ??= old;
                    }
                    else
                    {
                        await SystemEventAsync(old.ProfileKey, "device_removed", DeviceData(old, "device_signed_in_as_another_person"));
                    }
                }
            }

            var attrs = (JsonObject?)existing?.Attributes.DeepClone() ?? [];
            foreach (var (k, v) in d.Attributes)
            {
                attrs[k] = v?.DeepClone();
            }

            var lastUsed = d.LastUsed ?? op.Timestamp;
            var device = new Device
            {
                Token = d.Token,
                ProfileKey = p.Key,
                Platform = d.Platform ?? existing?.Platform ?? Platforms.Ios,
                DeviceId = d.DeviceId ?? existing?.DeviceId,
                LastUsed = existing is not null && existing.LastUsed > lastUsed ? existing.LastUsed : lastUsed,
                Attributes = attrs,
                CreatedAt = existing?.CreatedAt ?? op.ReceivedAt,
                UpdatedAt = op.ReceivedAt,
            };
            await s.PutDeviceAsync(device);

            if (existing is null)
            {
                await SystemEventAsync(p.Key, "device_registered", DeviceData(device, null));
            }
            else if (rotatedFrom is not null || existing.Platform != device.Platform || !JsonNode.DeepEquals(existing.Attributes, device.Attributes))
            {
                var data = DeviceData(device, rotatedFrom is null ? "attributes_changed" : "token_rotated");
                if (rotatedFrom is not null)
                {
                    data["previous_token_tail"] = rotatedFrom;
                }

                await SystemEventAsync(p.Key, "device_updated", data);
            }

            await EvictOverflowAsync(p.Key);
        }

        public async Task DeleteDeviceAsync()
        {
            var p = await FindAsync(op.Target);
            var existing = await s.GetDeviceAsync(op.Device!.Token);
            if (p is null || existing is null || existing.ProfileKey != p.Key)
            {
                return;
            }

            await s.DeleteDeviceAsync(existing.Token);
            await SystemEventAsync(p.Key, "device_removed", DeviceData(existing, "deleted_by_client"));
        }

        public async Task DeleteProfileAsync()
        {
            if (await FindAsync(op.Target) is { } p)
            {
                await s.EraseProfileAsync(p.Key, time.GetUtcNow());
            }
        }

        public async Task SuppressAsync(bool suppress)
        {
            var p = await FindAsync(op.Target) ?? (suppress ? await CreateAsync(op.Target!) : null);
            if (p is null || p.Suppressed == suppress)
            {
                return;
            }

            p.Suppressed = suppress;
            p.SuppressedAt = suppress ? op.Timestamp : null;
            p.UpdatedAt = op.ReceivedAt;
            await s.PutProfileAsync(p);
            await SystemEventAsync(p.Key, suppress ? "suppressed" : "unsuppressed", new JsonObject { ["source"] = op.Source });
        }

        public async Task MergeAsync()
        {
            var secondaryKey = await s.ResolveAsync(op.Secondary!);
            var p = await FindAsync(op.Target);
            if (secondaryKey is null)
            {
                if (op.Secondary!.Kind == IdentifierKind.IdOrAnonymousId)
                {
                    // Segment alias of an id nobody has used yet: treat it as the anonymous id it usually is.
                    p ??= await CreateAsync(op.Target!);
                    if (p is not null)
                    {
                        p.AnonymousIds = [.. p.AnonymousIds.Append(op.Secondary.Value).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
                        p.UpdatedAt = op.ReceivedAt;
                        await s.PutProfileAsync(p);
                    }
                }

                return;
            }

            p ??= await CreateAsync(op.Target!);
            if (p is null || p.Key == secondaryKey)
            {
                return;
            }

            await MergeIntoAsync(p, secondaryKey);
            p.UpdatedAt = op.ReceivedAt;
            await s.PutProfileAsync(p);
            await EvictOverflowAsync(p.Key);
        }

        private async Task AttachAsync(Profile p, Identifier target)
        {
            switch (target.Kind)
            {
                case IdentifierKind.Id when p.Id is null && await s.ResolveAsync(target) is null:
                    p.Id = target.Value;
                    break;
                case IdentifierKind.Email when p.Email is null && await s.ResolveAsync(target) is null:
                    p.Email = target.Value;
                    break;
                case IdentifierKind.AnonymousId:
                    await AdoptAnonymousAsync(p, target.Value);
                    break;
            }
        }

        private async Task AdoptAnonymousAsync(Profile p, string anonymousId)
        {
            var owner = await s.ResolveAsync(new Identifier(IdentifierKind.AnonymousId, anonymousId));
            if (owner is null)
            {
                p.AnonymousIds = [.. p.AnonymousIds.Append(anonymousId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
                return;
            }

            if (owner == p.Key)
            {
                return;
            }

            var other = await s.GetProfileAsync(owner);
            if (other is { IsAnonymous: true })
            {
                await MergeIntoAsync(p, owner);
                await EvictOverflowAsync(p.Key);
            }
            else
            {
                // Two known people never merge implicitly; the anonymous id stays with its first owner.
                await SystemEventAsync(p.Key, "identify_conflict", new JsonObject
                {
                    ["field"] = "anonymous_id",
                    ["value"] = anonymousId,
                    ["reason"] = "anonymous id already belongs to another known person",
                });
            }
        }

        /// <summary>Moves everything of <paramref name="secondaryKey"/> into <paramref name="p"/> and deletes it. The caller stores p.</summary>
        private async Task MergeIntoAsync(Profile p, string secondaryKey)
        {
            var secondary = await s.GetProfileAsync(secondaryKey);
            if (secondary is null)
            {
                return;
            }

            ProfileRules.Merge(p, secondary, op.ReceivedAt);
            await s.MoveEventsAsync(secondary.Key, p.Key);
            await s.MoveJourneysAsync(secondary.Key, p.Key);
            foreach (var d in await s.GetDevicesAsync(secondary.Key))
            {
                d.ProfileKey = p.Key;
                await s.PutDeviceAsync(d);
            }

            if (p.Version == 0)
            {
                p.UpdatedAt = op.ReceivedAt;
            }

            // The merged primary is stored before the secondary is deleted: it takes over the secondary's identifiers
            // (the secondary is in its MergedFrom), so on a store whose sessions are not transactions a crash between
            // the two leaves them with the primary, never with nobody; the retried op then finds the secondary and
            // finishes. The other order lost the secondary's ids, emails and attributes in that window.
            await s.PutProfileAsync(p);
            await s.DeleteProfileAsync(secondary.Key);
            await SystemEventAsync(p.Key, "profiles_merged", new JsonObject
            {
                ["merged_cio_id"] = Identifier.CioPrefix + secondary.Key,
                ["merged_id"] = secondary.Id,
                ["merged_email"] = secondary.Email,
                ["was_anonymous"] = secondary.IsAnonymous,
            });
        }

        private async Task EvictOverflowAsync(string profileKey)
        {
            var devices = await s.GetDevicesAsync(profileKey);
            foreach (var d in devices.OrderByDescending(d => d.LastUsed).ThenBy(d => d.Token, StringComparer.Ordinal).Skip(limits.MaxDevicesPerPerson))
            {
                await s.DeleteDeviceAsync(d.Token);
                await SystemEventAsync(profileKey, "device_removed", DeviceData(d, "device_limit"));
            }
        }

        private async Task TouchAsync(string profileKey)
        {
            if (op.TouchDevice is not { } t || await s.GetDeviceAsync(t.Token) is not { } d || d.ProfileKey != profileKey)
            {
                return;
            }

            var at = t.LastUsed ?? op.Timestamp;
            if (at > d.LastUsed)
            {
                d.LastUsed = at;
                d.UpdatedAt = op.ReceivedAt;
                await s.PutDeviceAsync(d);
            }
        }

        private async Task<Profile?> FindAsync(Identifier? id)
        {
            if (id is null)
            {
                return null;
            }

            var key = await s.ResolveAsync(id);
            return key is null ? null : await s.GetProfileAsync(key);
        }

        private async Task<Profile?> CreateAsync(Identifier id)
        {
            if (id.Kind == IdentifierKind.CioId)
            {
                return null; // an internal id names someone who exists; it cannot create a person
            }

            var key = ProfileRules.NewKey(id);
            for (var n = 1; await s.GetProfileAsync(key) is not null; n++)
            {
                key = ProfileRules.NewKey(id with { Value = $"{id.Value}#{n}" });
            }

            var p = new Profile { Key = key, CreatedAt = op.ReceivedAt, UpdatedAt = op.ReceivedAt };
            switch (id.Kind)
            {
                case IdentifierKind.Email: p.Email = id.Value; break;
                case IdentifierKind.AnonymousId: p.AnonymousIds.Add(id.Value); break;
                default: p.Id = id.Value; break;
            }

            return p;
        }

        private async Task<StoredEvent> AppendAsync(string? profileKey)
        {
            var e = new StoredEvent(op.MessageId, profileKey, op.Event!.Name, op.Event.Type, op.Timestamp, op.ReceivedAt, op.Source, op.Event.Data);
            await s.AppendEventAsync(e);
            return e;
        }

        private Task SystemEventAsync(string profileKey, string name, JsonObject data) =>
            s.AppendEventAsync(new StoredEvent($"{op.MessageId}/{name}/{_systemEvents++}", profileKey, name, "system",
                op.ReceivedAt, op.ReceivedAt, op.Source, data));

        private static JsonObject DeviceData(Device d, string? reason)
        {
            var o = new JsonObject { ["token_tail"] = d.TokenTail, ["platform"] = d.Platform };
            if (d.DeviceId is not null)
            {
                o["device_id"] = d.DeviceId;
            }

            if (reason is not null)
            {
                o["reason"] = reason;
            }

            return o;
        }

        private static Identifier? Id(string? id) => id is null ? null : new Identifier(IdentifierKind.Id, id);

        private static Identifier? Email(string? email) => email is null ? null : Identifier.Email(email);
    }
}
