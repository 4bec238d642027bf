using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;

namespace Nudge.Core.Storage;

/// <summary>
/// The profile store. Reads go straight to the store; writes go through an <see cref="IStoreSession"/>, which an
/// implementation may make atomic (SQLite) or apply as it goes (stores without multi-document transactions), so
/// callers must keep every write idempotent.
/// </summary>
public interface IStore
{
    Task<IStoreSession> OpenSessionAsync(CancellationToken ct = default);

    /// <summary>
    /// Opens a session like <see cref="OpenSessionAsync"/> whose commit a power loss right after may undo (SQLite commits
    /// it without fsync; the next durable commit makes it durable too). Only for writes whose loss costs nothing but a
    /// redone piece of work, such as claim renewals. Stores without such a mode open a session as usual.
    /// </summary>
    Task<IStoreSession> OpenUnsyncedSessionAsync(CancellationToken ct = default) => OpenSessionAsync(ct);

    Task<string?> ResolveAsync(Identifier identifier, CancellationToken ct = default);

    Task<Profile?> GetProfileAsync(string key, CancellationToken ct = default);

    /// <summary>The profiles of <paramref name="keys"/> that exist, by key: one read for a batch (the send stage's consent check).</summary>
    Task<IReadOnlyDictionary<string, Profile>> GetProfilesAsync(IReadOnlyCollection<string> keys, CancellationToken ct = default);

    Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey, CancellationToken ct = default);

    Task<Device?> GetDeviceAsync(string token, CancellationToken ct = default);

    /// <summary>The person's newest events first (by event timestamp), at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<StoredEvent>> GetRecentEventsAsync(string profileKey, int limit, CancellationToken ct = default);

    /// <summary>Events that belong to nobody, newest first.</summary>
    Task<IReadOnlyList<StoredEvent>> GetUnattachedEventsAsync(int limit, CancellationToken ct = default);

    Task<StoreCounts> CountAsync(CancellationToken ct = default);

    /// <summary>Instances whose timer is due at <paramref name="now"/>, earliest first: (instance id, profile key).</summary>
    Task<IReadOnlyList<(string Id, string ProfileKey)>> DueInstancesAsync(DateTimeOffset now, int limit, CancellationToken ct = default);

    /// <summary>The earliest pending timer, or null when nothing waits.</summary>
    Task<DateTimeOffset?> NextWakeAsync(CancellationToken ct = default);

    Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey, CancellationToken ct = default);

    /// <summary>The person's messages, newest first.</summary>
    Task<IReadOnlyList<Message>> GetMessagesAsync(string profileKey, int limit, CancellationToken ct = default);

    Task<Message?> GetMessageAsync(string id, CancellationToken ct = default);

    /// <summary>One page of the message log: every person's messages, newest first; see <see cref="MessageListQuery"/>.</summary>
    Task<IReadOnlyList<MessageSummary>> ListMessagesAsync(MessageListQuery query, CancellationToken ct = default);

    /// <summary>
    /// Messages the send stage has to handle whose next attempt is due at <paramref name="now"/>, earliest first:
    /// drafted ones, and ones waiting to retry.
    /// </summary>
    Task<IReadOnlyList<Message>> ReadyMessagesAsync(DateTimeOffset now, int limit, CancellationToken ct = default);

    /// <summary>When a push token last bounced (the provider said it is invalid), or null if it never did.</summary>
    Task<DateTimeOffset?> GetTokenBounceAsync(string token, CancellationToken ct = default);

    /// <summary>
    /// For each of <paramref name="tokens"/> that is registered, its device and, if it ever bounced, when: one read for a
    /// whole batch of pushes.
    /// </summary>
    Task<IReadOnlyDictionary<string, (Device Device, DateTimeOffset? BouncedAt)>> GetPushTargetsAsync(IReadOnlyCollection<string> tokens, CancellationToken ct = default);

    /// <summary>
    /// Which of <paramref name="claims"/> still hold, read from the store: the ids of the messages that exist and are
    /// claimed until exactly the given value. A read, not a write: the send stage checks its claims with it right before
    /// provider calls (a claim no other stage can take before it runs out, and that is far from running out, needs no
    /// renewal to be proven its own).
    /// </summary>
    Task<IReadOnlySet<string>> GetHeldClaimsAsync(IReadOnlyCollection<HeldClaim> claims, CancellationToken ct = default);

    /// <summary>What the sandbox channel recorded, newest first.</summary>
    Task<IReadOnlyList<OutboxEntry>> GetOutboxAsync(int limit, CancellationToken ct = default);

    /// <summary>One page of delivery events (reports, alerts, reporting webhooks); see <see cref="DeliveryEventQuery"/>.</summary>
    Task<IReadOnlyList<DeliveryEvent>> GetDeliveryEventsAsync(DeliveryEventQuery query, CancellationToken ct = default);

    /// <summary>
    /// What became of every journey instance whose <see cref="JourneyInstance.StartedAt"/> is in [<paramref name="from"/>,
    /// <paramref name="to"/>), in no particular order (holdout lift). Small records; a report reads them all at once.
    /// </summary>
    Task<IReadOnlyList<InstanceOutcome>> GetInstanceOutcomesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken ct = default);

    /// <summary>
    /// Everyone active at or after <paramref name="since"/> (an event with a timestamp from then on, or a device used from
    /// then on), with the platforms of their push-enabled devices, ordered by profile key (token coverage, segments).
    /// </summary>
    Task<IReadOnlyList<PersonActivity>> GetActivePeopleAsync(DateTimeOffset since, CancellationToken ct = default);

    /// <summary>A named checkpoint (reporting-webhook cursor, alert state), or null when none was written.</summary>
    Task<Checkpoint?> GetCheckpointAsync(string name, CancellationToken ct = default);

    /// <summary>
    /// Retention: deletes up to <paramref name="limit"/> events whose timestamp is before <paramref name="eventsBefore"/>,
    /// and up to <paramref name="limit"/> each of messages created, sandbox outbox entries recorded and delivery events
    /// that happened before <paramref name="messagesBefore"/>, oldest first. Returns how many of each went; a caller
    /// repeats until a call deletes fewer than the limit of each. Journey instances, profiles and devices stay.
    /// </summary>
    Task<PurgeCounts> PurgeAsync(DateTimeOffset eventsBefore, DateTimeOffset messagesBefore, int limit, CancellationToken ct = default);
}

/// <summary>What one <see cref="IStore.PurgeAsync"/> call deleted.</summary>
public sealed record PurgeCounts(long Events, long Messages, long Outbox, long DeliveryEvents)
{
    /// <summary>True when some kind reached <paramref name="limit"/>: more may be left to purge.</summary>
    public bool More(int limit) => Events >= limit || Messages >= limit || Outbox >= limit || DeliveryEvents >= limit;
}

/// <summary>
/// Delivery events whose time is in [<see cref="From"/>, <see cref="To"/>), ordered by (time, id), at most
/// <see cref="Limit"/>, after the keyset <see cref="After"/> (the last event of the page before). The time is
/// <see cref="DeliveryEvent.At"/> (when it happened: reports), or <see cref="DeliveryEvent.RecordedAt"/> when
/// <see cref="ByRecordedAt"/> (when Nudge learnt it: reporting webhooks, which must not miss a late-reported event).
/// </summary>
public sealed record DeliveryEventQuery(DateTimeOffset From, DateTimeOffset To, int Limit, bool ByRecordedAt = false, DeliveryEventCursor? After = null);

/// <summary>
/// Messages whose <see cref="Message.CreatedAt"/> is in [<see cref="From"/>, <see cref="To"/>), newest first: ordered by
/// (creation time, id) descending, times compared to the millisecond. At most <see cref="Limit"/>, after the keyset
/// <see cref="After"/> (the last message of the page before), so pages neither skip nor repeat a message even when many
/// share a creation time. Each filter that is not null must equal the message's current value exactly (ordinal);
/// <see cref="Platform"/> matches a message when any of its recipients is on that platform.
/// </summary>
public sealed record MessageListQuery(DateTimeOffset From, DateTimeOffset To, int Limit, MessageListCursor? After = null)
{
    public string? JourneyId { get; init; }

    public string? StepId { get; init; }

    /// <summary>"push", "sms" or "email".</summary>
    public string? Channel { get; init; }

    public string? Platform { get; init; }

    /// <summary>A <see cref="MessageStatus"/> value: the message's current status.</summary>
    public string? Status { get; init; }

    public string? Reason { get; init; }
}

/// <summary>A position in a <see cref="MessageListQuery"/> ordering: the creation time and id of the last message read.</summary>
public sealed record MessageListCursor(DateTimeOffset CreatedAt, string Id);

/// <summary>
/// A message as the message log lists it: where it came from, where it went and where it stands now.
/// <see cref="UpdatedAt"/> is the time of the newest entry of its status history (its creation time when it has none).
/// </summary>
public sealed record MessageSummary(
    string Id,
    string ProfileKey,
    string JourneyId,
    string StepId,
    string Channel,
    IReadOnlyList<string> Platforms,
    string Status,
    string? Reason,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    IReadOnlyList<string> Recipients)
{
    public static MessageSummary Of(Message m) => new(m.Id, m.ProfileKey, m.JourneyId, m.StepId, m.Channel.ToString().ToLowerInvariant(),
        m.Platforms, m.Status, m.Reason, m.CreatedAt, m.History.Count == 0 ? m.CreatedAt : m.History.Max(h => h.At), m.Recipients);
}

/// <summary>A position in a <see cref="DeliveryEventQuery"/> ordering: the time and id of the last event read.</summary>
public sealed record DeliveryEventCursor(DateTimeOffset Time, string Id);

/// <summary>
/// A journey instance as holdout lift sees it. <see cref="Started"/> is false for an instance that was scheduled but never
/// ran a step (a pending start that was cancelled).
/// </summary>
/// <remarks>
/// <see cref="Steps"/> lists the steps the instance entered (each once); <see cref="CurrentStep"/> is where it is now, or,
/// once it has ended (<see cref="Ended"/>), where it left the journey early (an exit, a goal, a removed journey); null
/// when it ran to the end.
/// </remarks>
public sealed record InstanceOutcome(string InstanceId, string JourneyId, string ProfileKey, DateTimeOffset StartedAt, bool Holdout, bool Started, DateTimeOffset? ConvertedAt)
{
    public IReadOnlyList<string> Steps { get; init; } = [];

    public string? CurrentStep { get; init; }

    public bool Ended { get; init; }
}

/// <summary>A person active since some time: when last active, and the platform of each push-enabled device (empty: no token).</summary>
public sealed record PersonActivity(string ProfileKey, DateTimeOffset LastActiveAt, IReadOnlyList<string> PushPlatforms);

/// <summary>
/// A small named value kept by the store for background work that must survive restarts and be shared by every
/// process (a cursor, an alert's state). <see cref="Version"/> is the stored version (0: not stored yet).
/// </summary>
public sealed record Checkpoint(string Name, string Value, long Version = 0);

/// <summary>A message the sandbox channel "sent": recorded instead of handed to a provider.</summary>
public sealed record OutboxEntry(string MessageId, string ProfileKey, string Channel, DateTimeOffset RecordedAt, System.Text.Json.Nodes.JsonObject Content, IReadOnlyList<string> Recipients);

/// <summary>Row counts, for health output and tests that prove rejected input changed nothing.</summary>
public sealed record StoreCounts(long Profiles, long Devices, long Events, long ProcessedKeys);

/// <summary>
/// A unit of work. Reads inside a session see the session's own writes. Nothing is durable before
/// <see cref="CommitAsync"/> on stores that support transactions.
/// </summary>
public interface IStoreSession : IAsyncDisposable
{
    /// <summary>Records an idempotency key; false when it was recorded before (the work was done already).</summary>
    Task<bool> TryMarkProcessedAsync(string key, DateTimeOffset at);

    /// <summary>Finds the profile key for an identifier, following merge aliases.</summary>
    Task<string?> ResolveAsync(Identifier identifier);

    Task<Profile?> GetProfileAsync(string key);

    /// <summary>
    /// Inserts (Version 0) or replaces (Version must equal the stored one) a profile and makes its id, email,
    /// anonymous ids and aliases resolve to it. Increments <see cref="Profile.Version"/>. An identifier held by a
    /// profile listed in <see cref="Profile.MergedFrom"/> passes to this one (an identity merge stores the primary
    /// before it deletes the secondary).
    /// </summary>
    /// <exception cref="ConcurrencyException">The stored version differs, or an identifier belongs to another profile.</exception>
    Task PutProfileAsync(Profile profile);

    /// <summary>Deletes a profile with its identifiers, devices and events (an identity merge's secondary).</summary>
    Task DeleteProfileAsync(string key);

    /// <summary>
    /// Erases a person (Track API and admin delete): everything stored about the profile of <paramref name="key"/> and
    /// of every profile merged into it goes — profile, identifiers, devices and their token records (bounces too),
    /// events, messages, outbox entries, timers and look-ups — except what reports count, which is kept as
    /// <see cref="Erasure"/> describes (delivery events and journey instance outcomes, with nothing that identifies
    /// the person). Open journey instances end at <paramref name="now"/>. Idempotent: erasing again, or a key nobody
    /// has, changes nothing.
    /// </summary>
    Task EraseProfileAsync(string key, DateTimeOffset now);

    Task AppendEventAsync(StoredEvent e);

    /// <summary>Moves every event of one person to another (identity merge).</summary>
    Task MoveEventsAsync(string fromKey, string toKey);

    Task<Device?> GetDeviceAsync(string token);

    Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey);

    Task<IReadOnlyList<Device>> FindDevicesByPhysicalIdAsync(string deviceId);

    /// <summary>Inserts or replaces the device with this token; the token's owner becomes <see cref="Device.ProfileKey"/>.</summary>
    Task PutDeviceAsync(Device device);

    Task DeleteDeviceAsync(string token);

    /// <summary>The person's events with a timestamp at or after <paramref name="since"/>, oldest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<StoredEvent>> GetEventsSinceAsync(string profileKey, DateTimeOffset since, int limit);

    Task<JourneyInstance?> GetInstanceAsync(string id);

    Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey);

    /// <summary>Inserts (Version 0) or replaces (Version must match) an instance; increments its Version.</summary>
    /// <exception cref="ConcurrencyException">The stored version differs, or an instance with this id exists already.</exception>
    Task PutInstanceAsync(JourneyInstance instance);

    /// <summary>Inserts a message unless one with its id exists (a retried step); false when it existed.</summary>
    Task<bool> TryAddMessageAsync(Message message);

    /// <summary>Replaces a stored message (status changes).</summary>
    Task PutMessageAsync(Message message);

    Task<Message?> GetMessageAsync(string id);

    /// <summary>The person's messages created at or after <paramref name="since"/>, oldest first.</summary>
    Task<IReadOnlyList<Message>> GetMessagesSinceAsync(string profileKey, DateTimeOffset since);

    /// <summary>Moves every journey instance and message of one person to another (identity merge).</summary>
    Task MoveJourneysAsync(string fromKey, string toKey);

    /// <summary>Records a sandbox delivery (idempotent by message id).</summary>
    Task RecordOutboxAsync(OutboxEntry entry);

    /// <summary>
    /// Takes a ready message due at <paramref name="now"/> for one send attempt: it stops being due until
    /// <paramref name="until"/>, so a second send stage running at the same time does not take it too. False when the
    /// message is not ready or not due (another stage took it, or it was handled). If the stage dies, the message is
    /// due again at <paramref name="until"/>.
    /// </summary>
    Task<bool> TryClaimMessageAsync(string id, DateTimeOffset now, DateTimeOffset until);

    /// <summary>
    /// Takes up to <paramref name="limit"/> ready messages due at <paramref name="now"/>, earliest first, for one send
    /// attempt each (as <see cref="TryClaimMessageAsync"/> does for one), and returns them as they were when taken.
    /// </summary>
    Task<IReadOnlyList<Message>> ClaimReadyMessagesAsync(DateTimeOffset now, DateTimeOffset until, int limit);

    /// <summary>
    /// Records what a send attempt made of a message it claimed until <paramref name="claim"/> (the send stage changes
    /// only the send fields: status, reason, sent time, ready and next attempt, deliveries, attempts, history, warnings,
    /// segments, cost, fallback message id). False, and nothing written, when the claim no longer holds.
    /// </summary>
    Task<bool> TryRecordSendOutcomeAsync(Message message, DateTimeOffset claim);

    /// <summary>
    /// Extends a claim the caller holds: when the message <paramref name="id"/> (of the person <paramref name="profileKey"/>)
    /// is still claimed until exactly <paramref name="claim"/>, it becomes claimed until <paramref name="until"/>, which is
    /// the claim's new value from then on. False, and nothing written, when the claim no longer holds (it ran out and
    /// another send stage took the message, or the message was handled): the caller must not call a provider for it.
    /// </summary>
    /// <remarks><paramref name="until"/> is not earlier than <paramref name="claim"/>.</remarks>
    Task<bool> TryRenewClaimAsync(string id, string profileKey, DateTimeOffset claim, DateTimeOffset until);

    /// <summary>
    /// Keeps a delivery event (from <see cref="StatusTransitions.Apply"/>). Idempotent: an event with the same
    /// <see cref="DeliveryEvent.Id"/> and <see cref="DeliveryEvent.At"/> as a stored one changes nothing (the first stays).
    /// One event per message and metric is StatusTransitions' guarantee, which checks the message's history.
    /// </summary>
    Task AppendDeliveryEventAsync(DeliveryEvent e);

    /// <summary>
    /// Writes a checkpoint if nobody else did since it was read: <see cref="Checkpoint.Version"/> 0 creates it (false when
    /// it exists), any other version replaces it only while the stored one has that version (false otherwise). Several
    /// processes sharing a store (Function instances) use this to take turns; the stored version is one more on success.
    /// </summary>
    Task<bool> TryPutCheckpointAsync(Checkpoint checkpoint);

    /// <summary>Remembers that a push token bounced at <paramref name="at"/>, so later sends to it are dropped.</summary>
    Task MarkTokenBouncedAsync(string token, DateTimeOffset at, string detail);

    /// <summary>
    /// Keys of the people whose <c>sms_phone</c> or <c>phone</c> attribute is <paramref name="e164"/> (as stored: E.164),
    /// in key order; sees the session's own writes. Several people may share a number: an inbound STOP concerns them all.
    /// </summary>
    Task<IReadOnlyList<string>> FindProfilesByPhoneAsync(string e164);

    Task CommitAsync();
}

/// <summary>Thrown when a write loses an optimistic-concurrency race or would give one identifier to two people.</summary>
public sealed class ConcurrencyException(string message) : Exception(message);

/// <summary>A send stage's claim on a message: its id, the person it is for (a partition hint) and the claim's value.</summary>
public sealed record HeldClaim(string MessageId, string ProfileKey, DateTimeOffset Claim);
