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

    Task<string?> ResolveAsync(Identifier identifier, CancellationToken ct = default);

    Task<Profile?> GetProfileAsync(string key, CancellationToken ct = default);

    Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey, CancellationToken ct = default);

    Task<Device?> GetDeviceAsync(string token, CancellationToken ct = default);

    /// <summary>The person's newest events first (by event timestamp), at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<StoredEvent>> GetRecentEventsAsync(string profileKey, int limit, CancellationToken ct = default);

    /// <summary>Events that belong to nobody, newest first.</summary>
    Task<IReadOnlyList<StoredEvent>> GetUnattachedEventsAsync(int limit, CancellationToken ct = default);

    Task<StoreCounts> CountAsync(CancellationToken ct = default);
}

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
    /// anonymous ids and aliases resolve to it. Increments <see cref="Profile.Version"/>.
    /// </summary>
    /// <exception cref="ConcurrencyException">The stored version differs, or an identifier belongs to another profile.</exception>
    Task PutProfileAsync(Profile profile);

    /// <summary>Deletes a profile with its identifiers, devices and events.</summary>
    Task DeleteProfileAsync(string key);

    Task AppendEventAsync(StoredEvent e);

    /// <summary>Moves every event of one person to another (identity merge).</summary>
    Task MoveEventsAsync(string fromKey, string toKey);

    Task<Device?> GetDeviceAsync(string token);

    Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey);

    Task<IReadOnlyList<Device>> FindDevicesByPhysicalIdAsync(string deviceId);

    /// <summary>Inserts or replaces the device with this token; the token's owner becomes <see cref="Device.ProfileKey"/>.</summary>
    Task PutDeviceAsync(Device device);

    Task DeleteDeviceAsync(string token);

    Task CommitAsync();
}

/// <summary>Thrown when a write loses an optimistic-concurrency race or would give one identifier to two people.</summary>
public sealed class ConcurrencyException(string message) : Exception(message);
