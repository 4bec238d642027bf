using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

/// <summary>
/// A session of <see cref="CosmosStore"/>: each write is applied when it is made (so reads in the session, and
/// everyone else, see it at once), and nothing is rolled back. The one thing held until <see cref="CommitAsync"/> is
/// the idempotency keys: recording "this input was handled" before the handling is done would turn a crash in the
/// middle into lost work, whereas recording it at the end turns it into work done again, which every stage makes
/// harmless (idempotent writes). Not for use by several threads at once.
/// </summary>
internal sealed class CosmosSession(CosmosStore store) : IStoreSession
{
    private readonly Dictionary<string, DateTimeOffset> _keys = new(StringComparer.Ordinal);

    public async Task<bool> TryMarkProcessedAsync(string key, DateTimeOffset at)
    {
        if (_keys.ContainsKey(key))
        {
            return false;
        }

        var id = CosmosIds.Escape(key);
        if (await store.Processed.ReadAsync<ProcessedDoc>(id, id) is not null)
        {
            return false;
        }

        _keys[key] = at;
        return true;
    }

    public Task<string?> ResolveAsync(Identifier identifier) => store.ResolveCoreAsync(identifier, default);

    public Task<Profile?> GetProfileAsync(string key) => store.GetProfileCoreAsync(key, default);

    public Task PutProfileAsync(Profile profile) => store.PutProfileCoreAsync(profile);

    public Task DeleteProfileAsync(string key) => store.DeleteProfileCoreAsync(key);

    public Task EraseProfileAsync(string key, DateTimeOffset now) => store.EraseProfileCoreAsync(key, now);

    public Task AppendEventAsync(StoredEvent e) => store.AppendEventCoreAsync(e);

    public Task MoveEventsAsync(string fromKey, string toKey) => store.MoveEventsCoreAsync(fromKey, toKey);

    public Task<Device?> GetDeviceAsync(string token) => store.GetDeviceCoreAsync(token, default);

    public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey) => store.GetDevicesCoreAsync(profileKey, default);

    public Task<IReadOnlyList<Device>> FindDevicesByPhysicalIdAsync(string deviceId) => store.FindDevicesByPhysicalIdCoreAsync(deviceId);

    public Task PutDeviceAsync(Device device) => store.PutDeviceCoreAsync(device);

    public Task DeleteDeviceAsync(string token) => store.DeleteDeviceCoreAsync(token);

    public Task<IReadOnlyList<StoredEvent>> GetEventsSinceAsync(string profileKey, DateTimeOffset since, int limit) =>
        store.EventsSinceCoreAsync(profileKey, since, limit);

    public Task<JourneyInstance?> GetInstanceAsync(string id) => store.GetInstanceCoreAsync(id);

    public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey) => store.InstancesOfAsync(profileKey);

    public Task PutInstanceAsync(JourneyInstance instance) => store.PutInstanceCoreAsync(instance);

    public Task<bool> TryAddMessageAsync(Message message) => store.TryAddMessageCoreAsync(message);

    public Task PutMessageAsync(Message message) => store.PutMessageCoreAsync(message);

    public Task<Message?> GetMessageAsync(string id) => store.GetMessageCoreAsync(id);

    public Task<IReadOnlyList<Message>> GetMessagesSinceAsync(string profileKey, DateTimeOffset since) => store.MessagesSinceCoreAsync(profileKey, since);

    public Task MoveJourneysAsync(string fromKey, string toKey) => store.MoveJourneysCoreAsync(fromKey, toKey);

    public Task RecordOutboxAsync(OutboxEntry entry) => store.RecordOutboxCoreAsync(entry);

    public Task AppendDeliveryEventAsync(DeliveryEvent e) => store.AppendDeliveryEventCoreAsync(e);

    public Task<bool> TryPutCheckpointAsync(Checkpoint checkpoint) => store.TryPutCheckpointCoreAsync(checkpoint);

    public Task<bool> TryClaimMessageAsync(string id, DateTimeOffset now, DateTimeOffset until) => store.TryClaimMessageCoreAsync(id, now, until);

    public Task<IReadOnlyList<Message>> ClaimReadyMessagesAsync(DateTimeOffset now, DateTimeOffset until, int limit) =>
        store.ClaimReadyMessagesCoreAsync(now, until, limit);

    public Task<bool> TryRecordSendOutcomeAsync(Message message, DateTimeOffset claim) => store.TryRecordSendOutcomeCoreAsync(message, claim);

    public Task<bool> TryRenewClaimAsync(string id, string profileKey, DateTimeOffset claim, DateTimeOffset until) =>
        store.TryRenewClaimCoreAsync(id, profileKey, claim, until);

    public Task MarkTokenBouncedAsync(string token, DateTimeOffset at, string detail) => store.MarkTokenBouncedCoreAsync(token, at, detail);

    public Task<IReadOnlyList<string>> FindProfilesByPhoneAsync(string e164) => store.FindProfilesByPhoneCoreAsync(e164);

    /// <summary>Records the session's idempotency keys; every other write is in the store already.</summary>
    public async Task CommitAsync()
    {
        foreach (var (key, at) in _keys)
        {
            var id = CosmosIds.Escape(key);

            // Created already (409): another worker did the same work at the same time and recorded it first. Fine.
            await store.Processed.CreateAsync(new ProcessedDoc { Id = id, Pk = id, Key = key, At = at.ToUnixTimeMilliseconds() }, id);
        }

        _keys.Clear();
    }

    /// <summary>Nothing to undo (see the class summary): keys not committed are simply not recorded.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
