using System.Collections.Concurrent;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Functions.Tests;

/// <summary>
/// The real store with switchable faults: while an operation name is in <see cref="FailOn"/>, session calls of that name
/// throw, as a store outage would. Everything else reaches the real store.
/// </summary>
public sealed class FaultyStore(IStore inner) : IStore
{
    public ConcurrentDictionary<string, bool> FailOn { get; } = new(StringComparer.Ordinal);

    internal void Check(string operation)
    {
        if (FailOn.ContainsKey(operation))
        {
            throw new InvalidOperationException($"injected store fault in {operation}");
        }
    }

    public async Task<IStoreSession> OpenSessionAsync(CancellationToken ct = default) => new Session(this, await inner.OpenSessionAsync(ct));

    public Task<string?> ResolveAsync(Identifier identifier, CancellationToken ct = default) => inner.ResolveAsync(identifier, ct);

    public Task<Profile?> GetProfileAsync(string key, CancellationToken ct = default) => inner.GetProfileAsync(key, ct);

    public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey, CancellationToken ct = default) => inner.GetDevicesAsync(profileKey, ct);

    public Task<Device?> GetDeviceAsync(string token, CancellationToken ct = default) => inner.GetDeviceAsync(token, ct);

    public Task<IReadOnlyList<StoredEvent>> GetRecentEventsAsync(string profileKey, int limit, CancellationToken ct = default) => inner.GetRecentEventsAsync(profileKey, limit, ct);

    public Task<IReadOnlyList<StoredEvent>> GetUnattachedEventsAsync(int limit, CancellationToken ct = default) => inner.GetUnattachedEventsAsync(limit, ct);

    public Task<StoreCounts> CountAsync(CancellationToken ct = default) => inner.CountAsync(ct);

    public Task<IReadOnlyList<(string Id, string ProfileKey)>> DueInstancesAsync(DateTimeOffset now, int limit, CancellationToken ct = default) => inner.DueInstancesAsync(now, limit, ct);

    public Task<DateTimeOffset?> NextWakeAsync(CancellationToken ct = default) => inner.NextWakeAsync(ct);

    public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey, CancellationToken ct = default) => inner.GetInstancesAsync(profileKey, ct);

    public Task<IReadOnlyList<Message>> GetMessagesAsync(string profileKey, int limit, CancellationToken ct = default) => inner.GetMessagesAsync(profileKey, limit, ct);

    public Task<Message?> GetMessageAsync(string id, CancellationToken ct = default) => inner.GetMessageAsync(id, ct);

    public Task<IReadOnlyList<MessageSummary>> ListMessagesAsync(MessageListQuery query, CancellationToken ct = default) => inner.ListMessagesAsync(query, ct);

    public Task<IReadOnlyList<Message>> ReadyMessagesAsync(DateTimeOffset now, int limit, CancellationToken ct = default) => inner.ReadyMessagesAsync(now, limit, ct);

    public Task<DateTimeOffset?> GetTokenBounceAsync(string token, CancellationToken ct = default) => inner.GetTokenBounceAsync(token, ct);

    public Task<IReadOnlyDictionary<string, (Device Device, DateTimeOffset? BouncedAt)>> GetPushTargetsAsync(IReadOnlyCollection<string> tokens, CancellationToken ct = default) =>
        inner.GetPushTargetsAsync(tokens, ct);

    public Task<IReadOnlySet<string>> GetHeldClaimsAsync(IReadOnlyCollection<HeldClaim> claims, CancellationToken ct = default) =>
        inner.GetHeldClaimsAsync(claims, ct);

    public Task<IReadOnlyList<OutboxEntry>> GetOutboxAsync(int limit, CancellationToken ct = default) => inner.GetOutboxAsync(limit, ct);

    public Task<IReadOnlyDictionary<string, Profile>> GetProfilesAsync(IReadOnlyCollection<string> keys, CancellationToken ct = default) => inner.GetProfilesAsync(keys, ct);

    public Task<IReadOnlyList<DeliveryEvent>> GetDeliveryEventsAsync(DeliveryEventQuery query, CancellationToken ct = default) => inner.GetDeliveryEventsAsync(query, ct);


    public Task<IReadOnlyList<InstanceOutcome>> GetInstanceOutcomesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken ct = default) =>
        inner.GetInstanceOutcomesAsync(from, to, ct);

    public Task<IReadOnlyList<PersonActivity>> GetActivePeopleAsync(DateTimeOffset since, CancellationToken ct = default) => inner.GetActivePeopleAsync(since, ct);

    public async Task<Checkpoint?> GetCheckpointAsync(string name, CancellationToken ct = default)
    {
        Check(nameof(GetCheckpointAsync));
        return await inner.GetCheckpointAsync(name, ct);
    }

    public Task<PurgeCounts> PurgeAsync(DateTimeOffset eventsBefore, DateTimeOffset messagesBefore, int limit, CancellationToken ct = default) =>
        inner.PurgeAsync(eventsBefore, messagesBefore, limit, ct);

    private sealed class Session(FaultyStore store, IStoreSession s) : IStoreSession
    {
        public Task<bool> TryMarkProcessedAsync(string key, DateTimeOffset at) => s.TryMarkProcessedAsync(key, at);

        public Task<string?> ResolveAsync(Identifier identifier) => s.ResolveAsync(identifier);

        public Task<Profile?> GetProfileAsync(string key) => s.GetProfileAsync(key);

        public Task PutProfileAsync(Profile profile)
        {
            store.Check(nameof(PutProfileAsync));
            return s.PutProfileAsync(profile);
        }

        public Task DeleteProfileAsync(string key) => s.DeleteProfileAsync(key);

        public Task EraseProfileAsync(string key, DateTimeOffset now) => s.EraseProfileAsync(key, now);

        public Task AppendEventAsync(StoredEvent e) => s.AppendEventAsync(e);

        public Task MoveEventsAsync(string fromKey, string toKey) => s.MoveEventsAsync(fromKey, toKey);

        public Task<Device?> GetDeviceAsync(string token) => s.GetDeviceAsync(token);

        public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey)
        {
            store.Check(nameof(GetDevicesAsync));
            return s.GetDevicesAsync(profileKey);
        }

        public Task<IReadOnlyList<Device>> FindDevicesByPhysicalIdAsync(string deviceId) => s.FindDevicesByPhysicalIdAsync(deviceId);

        public Task PutDeviceAsync(Device device) => s.PutDeviceAsync(device);

        public Task DeleteDeviceAsync(string token) => s.DeleteDeviceAsync(token);

        public Task<IReadOnlyList<StoredEvent>> GetEventsSinceAsync(string profileKey, DateTimeOffset since, int limit) => s.GetEventsSinceAsync(profileKey, since, limit);

        public Task<JourneyInstance?> GetInstanceAsync(string id) => s.GetInstanceAsync(id);

        public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey) => s.GetInstancesAsync(profileKey);

        public Task PutInstanceAsync(JourneyInstance instance) => s.PutInstanceAsync(instance);

        public Task<bool> TryAddMessageAsync(Message message) => s.TryAddMessageAsync(message);

        public Task PutMessageAsync(Message message) => s.PutMessageAsync(message);

        public Task<Message?> GetMessageAsync(string id) => s.GetMessageAsync(id);

        public Task<IReadOnlyList<Message>> GetMessagesSinceAsync(string profileKey, DateTimeOffset since) => s.GetMessagesSinceAsync(profileKey, since);

        public Task MoveJourneysAsync(string fromKey, string toKey) => s.MoveJourneysAsync(fromKey, toKey);

        public Task RecordOutboxAsync(OutboxEntry entry) => s.RecordOutboxAsync(entry);

        public Task AppendDeliveryEventAsync(DeliveryEvent e) => s.AppendDeliveryEventAsync(e);

        public Task<bool> TryPutCheckpointAsync(Checkpoint checkpoint) => s.TryPutCheckpointAsync(checkpoint);

        public Task<bool> TryClaimMessageAsync(string id, DateTimeOffset now, DateTimeOffset until)
        {
            store.Check(nameof(TryClaimMessageAsync));
            return s.TryClaimMessageAsync(id, now, until);
        }

        public Task<IReadOnlyList<Message>> ClaimReadyMessagesAsync(DateTimeOffset now, DateTimeOffset until, int limit) => s.ClaimReadyMessagesAsync(now, until, limit);

        public Task<bool> TryRecordSendOutcomeAsync(Message message, DateTimeOffset claim)
        {
            store.Check(nameof(TryRecordSendOutcomeAsync));
            return s.TryRecordSendOutcomeAsync(message, claim);
        }

        public Task<bool> TryRenewClaimAsync(string id, string profileKey, DateTimeOffset claim, DateTimeOffset until)
        {
            store.Check(nameof(TryRenewClaimAsync));
            return s.TryRenewClaimAsync(id, profileKey, claim, until);
        }

        public Task MarkTokenBouncedAsync(string token, DateTimeOffset at, string detail) => s.MarkTokenBouncedAsync(token, at, detail);

        public Task<IReadOnlyList<string>> FindProfilesByPhoneAsync(string e164) => s.FindProfilesByPhoneAsync(e164);

        public Task CommitAsync() => s.CommitAsync();

        public ValueTask DisposeAsync() => s.DisposeAsync();
    }
}
