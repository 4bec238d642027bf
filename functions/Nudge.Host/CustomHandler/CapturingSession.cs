using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// A store session that remembers the messages created through it, so a Functions stage can put them on the sends queue
/// without the pipeline knowing about queues (the embedded send worker finds them in the store instead). Everything
/// else passes straight through to the wrapped session.
/// </summary>
public sealed class CapturingSession(IStoreSession inner) : IStoreSession
{
    private readonly List<Message> _created = [];

    /// <summary>
    /// Ids of the messages this session created that the send stage may take at <paramref name="now"/>. A message
    /// deferred (quiet hours) or not to be sent (undeliverable, holdout) is left to the store: the timers sweep
    /// emits it when it becomes due.
    /// </summary>
    public IReadOnlyList<string> ReadyToSend(DateTimeOffset now) =>
        [.. _created.Where(m => m.Ready && (m.NextAttemptAt ?? m.CreatedAt) <= now).Select(m => m.Id).Distinct(StringComparer.Ordinal)];

    public async Task<bool> TryAddMessageAsync(Message message)
    {
        var added = await inner.TryAddMessageAsync(message);
        if (added)
        {
            _created.Add(message);
        }

        return added;
    }

    public Task<bool> TryMarkProcessedAsync(string key, DateTimeOffset at) => inner.TryMarkProcessedAsync(key, at);

    public Task<string?> ResolveAsync(Identifier identifier) => inner.ResolveAsync(identifier);

    public Task<Profile?> GetProfileAsync(string key) => inner.GetProfileAsync(key);

    public Task PutProfileAsync(Profile profile) => inner.PutProfileAsync(profile);

    public Task DeleteProfileAsync(string key) => inner.DeleteProfileAsync(key);

    public Task EraseProfileAsync(string key, DateTimeOffset now) => inner.EraseProfileAsync(key, now);

    public Task AppendEventAsync(StoredEvent e) => inner.AppendEventAsync(e);

    public Task MoveEventsAsync(string fromKey, string toKey) => inner.MoveEventsAsync(fromKey, toKey);

    public Task<Device?> GetDeviceAsync(string token) => inner.GetDeviceAsync(token);

    public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey) => inner.GetDevicesAsync(profileKey);

    public Task<IReadOnlyList<Device>> FindDevicesByPhysicalIdAsync(string deviceId) => inner.FindDevicesByPhysicalIdAsync(deviceId);

    public Task PutDeviceAsync(Device device) => inner.PutDeviceAsync(device);

    public Task DeleteDeviceAsync(string token) => inner.DeleteDeviceAsync(token);

    public Task<IReadOnlyList<StoredEvent>> GetEventsSinceAsync(string profileKey, DateTimeOffset since, int limit) => inner.GetEventsSinceAsync(profileKey, since, limit);

    public Task<JourneyInstance?> GetInstanceAsync(string id) => inner.GetInstanceAsync(id);

    public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey) => inner.GetInstancesAsync(profileKey);

    public Task PutInstanceAsync(JourneyInstance instance) => inner.PutInstanceAsync(instance);

    public Task PutMessageAsync(Message message) => inner.PutMessageAsync(message);

    public Task<Message?> GetMessageAsync(string id) => inner.GetMessageAsync(id);

    public Task<IReadOnlyList<Message>> GetMessagesSinceAsync(string profileKey, DateTimeOffset since) => inner.GetMessagesSinceAsync(profileKey, since);

    public Task MoveJourneysAsync(string fromKey, string toKey) => inner.MoveJourneysAsync(fromKey, toKey);

    public Task RecordOutboxAsync(OutboxEntry entry) => inner.RecordOutboxAsync(entry);

    public Task AppendDeliveryEventAsync(DeliveryEvent e) => inner.AppendDeliveryEventAsync(e);

    public Task<bool> TryPutCheckpointAsync(Checkpoint checkpoint) => inner.TryPutCheckpointAsync(checkpoint);

    public Task<bool> TryClaimMessageAsync(string id, DateTimeOffset now, DateTimeOffset until) => inner.TryClaimMessageAsync(id, now, until);

    public Task<IReadOnlyList<Message>> ClaimReadyMessagesAsync(DateTimeOffset now, DateTimeOffset until, int limit) => inner.ClaimReadyMessagesAsync(now, until, limit);

    public Task<bool> TryRecordSendOutcomeAsync(Message message, DateTimeOffset claim) => inner.TryRecordSendOutcomeAsync(message, claim);

    public Task<bool> TryRenewClaimAsync(string id, string profileKey, DateTimeOffset claim, DateTimeOffset until) =>
        inner.TryRenewClaimAsync(id, profileKey, claim, until);

    public Task MarkTokenBouncedAsync(string token, DateTimeOffset at, string detail) => inner.MarkTokenBouncedAsync(token, at, detail);

    public Task<IReadOnlyList<string>> FindProfilesByPhoneAsync(string e164) => inner.FindProfilesByPhoneAsync(e164);

    public Task CommitAsync() => inner.CommitAsync();

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
