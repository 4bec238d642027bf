using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Sqlite;

namespace Nudge.Sqlite.Store;

/// <summary>
/// The embedded profile store: one SQLite file. Sessions are serialised (one writer at a time) and atomic;
/// reads use pooled connections and never block the writer (WAL).
/// </summary>
public sealed partial class SqliteStore : IStore, IAsyncDisposable
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS profiles(
          key TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL, updated_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS identifiers(
          kind TEXT NOT NULL, value TEXT NOT NULL, profile_key TEXT NOT NULL, PRIMARY KEY(kind, value)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS identifiers_profile ON identifiers(profile_key);
        CREATE TABLE IF NOT EXISTS devices(
          token TEXT PRIMARY KEY, profile_key TEXT NOT NULL, device_id TEXT, doc TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS devices_profile ON devices(profile_key);
        CREATE INDEX IF NOT EXISTS devices_physical ON devices(device_id) WHERE device_id IS NOT NULL;
        CREATE TABLE IF NOT EXISTS events(
          seq INTEGER PRIMARY KEY AUTOINCREMENT, profile_key TEXT, event_id TEXT NOT NULL, name TEXT NOT NULL,
          type TEXT NOT NULL, ts INTEGER NOT NULL, received_at INTEGER NOT NULL, source TEXT NOT NULL, data TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS events_profile_ts ON events(profile_key, ts);
        CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
        CREATE TABLE IF NOT EXISTS processed(key TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS instances(
          id TEXT PRIMARY KEY, profile_key TEXT NOT NULL, journey_id TEXT NOT NULL, status TEXT NOT NULL,
          wake_at INTEGER, version INTEGER NOT NULL, doc TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS instances_profile ON instances(profile_key);
        CREATE INDEX IF NOT EXISTS instances_wake ON instances(wake_at) WHERE wake_at IS NOT NULL;
        CREATE TABLE IF NOT EXISTS messages(
          id TEXT PRIMARY KEY, profile_key TEXT NOT NULL, instance_id TEXT NOT NULL, channel TEXT NOT NULL,
          status TEXT NOT NULL, created_at INTEGER NOT NULL, ready INTEGER NOT NULL,
          journey_id TEXT, step_id TEXT, reason TEXT, platforms TEXT, doc TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS messages_profile ON messages(profile_key, created_at);
        DROP INDEX IF EXISTS messages_ready;
        DROP INDEX IF EXISTS messages_due;
        CREATE INDEX IF NOT EXISTS messages_due_id ON messages(ready, id) WHERE ready > 0;
        CREATE TABLE IF NOT EXISTS bounced_tokens(token TEXT PRIMARY KEY, at INTEGER NOT NULL, detail TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS outbox(
          message_id TEXT PRIMARY KEY, profile_key TEXT NOT NULL, channel TEXT NOT NULL, recorded_at INTEGER NOT NULL, doc TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS outbox_time ON outbox(recorded_at);
        CREATE TABLE IF NOT EXISTS delivery_events(
          seq INTEGER PRIMARY KEY, id TEXT NOT NULL, at INTEGER NOT NULL, recorded_at INTEGER NOT NULL, doc TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS delivery_events_at ON delivery_events(at, id);
        CREATE INDEX IF NOT EXISTS delivery_events_recorded ON delivery_events(recorded_at, id);
        CREATE INDEX IF NOT EXISTS profiles_sms_phone ON profiles(json_extract(doc, '$.attributes.sms_phone.v'));
        CREATE INDEX IF NOT EXISTS profiles_phone ON profiles(json_extract(doc, '$.attributes.phone.v'));
        CREATE TABLE IF NOT EXISTS checkpoints(name TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
        """;

    private readonly string _cs;
    private readonly SemaphoreSlim _writer = new(1, 1);
    private SqliteConnection? _writeConnection;
    private bool _durable;
    private int _disposed;

    private SqliteStore(string path) => _cs = SqliteDb.ConnectionString(path);

    public string Path => new SqliteConnectionStringBuilder(_cs).DataSource;

    /// <summary>Opens (and creates, if needed) the store at <paramref name="path"/>.</summary>
    public static Task<SqliteStore> OpenAsync(string path, CancellationToken ct = default) => OpenAsync(path, durable: true, ct);

    /// <summary>Opens the store; <paramref name="durable"/> false is only for simulations and benchmarks (commits are not fsynced).</summary>
    public static async Task<SqliteStore> OpenAsync(string path, bool durable, CancellationToken ct = default)
    {
        SqliteDb.MakePrivate(path);
        var store = new SqliteStore(path) { _durable = durable };
        store._writeConnection = await SqliteDb.OpenAsync(store._cs, durable, ct);
        await SqliteDb.ExecAsync(store._writeConnection, Schema, ct);
        await AddMessageLogColumnsAsync(store._writeConnection, ct);
        await SqliteDb.ExecAsync(store._writeConnection, MessageLogIndex, ct);
        return store;
    }

    /// <summary>
    /// The message log's index: newest first is this index read backwards from the cursor; filters are tested on each row
    /// it reaches. Only (created_at, id), which never change, so status writes (the send stage, receipts) do not touch it.
    /// On 100,000 messages a page takes under 1 ms, and about 100 ms when a filter matches none of them (the whole range
    /// is walked); an index covering the filter columns cut that to about 20 ms but is rewritten on every status change.
    /// Created after <see cref="AddMessageLogColumnsAsync"/>, as older files get their filter columns there.
    /// </summary>
    private const string MessageLogIndex = """
        CREATE INDEX IF NOT EXISTS messages_log ON messages(created_at, id);
        """;

    /// <summary>
    /// Files written before the message log have no columns for its filters (journey, step, reason, platforms): they
    /// are added and filled from the documents once, in one transaction, when such a file is opened.
    /// </summary>
    private static async Task AddMessageLogColumnsAsync(SqliteConnection c, CancellationToken ct)
    {
        await using (var cmd = SqliteDb.Command(c, "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'platforms'", null))
        {
            if ((long)(await cmd.ExecuteScalarAsync(ct))! > 0)
            {
                return;
            }
        }

        await SqliteDb.ExecAsync(c, $"""
            BEGIN IMMEDIATE;
            ALTER TABLE messages ADD COLUMN journey_id TEXT;
            ALTER TABLE messages ADD COLUMN step_id TEXT;
            ALTER TABLE messages ADD COLUMN reason TEXT;
            ALTER TABLE messages ADD COLUMN platforms TEXT;
            UPDATE messages SET journey_id = json_extract(doc, '$.journeyId'), step_id = json_extract(doc, '$.stepId'),
              reason = json_extract(doc, '$.reason'),
              platforms = (SELECT '{PlatformSeparator}' || group_concat(value, '{PlatformSeparator}') || '{PlatformSeparator}' FROM json_each(doc, '$.platforms'));
            COMMIT;
            """, ct);
    }

    /// <summary>
    /// The platforms column holds a message's platforms between separators (",ios,android,"; null for none), so that
    /// "any recipient on platform p" is one instr() per row.
    /// </summary>
    private const string PlatformSeparator = ",";

    public Task<IStoreSession> OpenSessionAsync(CancellationToken ct = default) => OpenSessionAsync(unsynced: false, ct);

    public Task<IStoreSession> OpenUnsyncedSessionAsync(CancellationToken ct = default) => OpenSessionAsync(unsynced: true, ct);

    private async Task<IStoreSession> OpenSessionAsync(bool unsynced, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            // SQLite refuses a level change inside a transaction: set before it, and put back when the session ends.
            if (unsynced && _durable)
            {
                await SqliteDb.ExecAsync(_writeConnection!, "PRAGMA synchronous=NORMAL", ct);
            }

            var tx = (SqliteTransaction)await _writeConnection!.BeginTransactionAsync(ct);
            return new Session(this, _writeConnection, tx) { Unsynced = unsynced && _durable };
        }
        catch
        {
            if (unsynced && _durable)
            {
                await SqliteDb.ExecAsync(_writeConnection!, "PRAGMA synchronous=FULL", CancellationToken.None);
            }

            _writer.Release();
            throw;
        }
    }

    public Task<string?> ResolveAsync(Identifier identifier, CancellationToken ct = default) =>
        ReadAsync(c => Queries.ResolveAsync(c, null, identifier), ct);

    public Task<Profile?> GetProfileAsync(string key, CancellationToken ct = default) =>
        ReadAsync(c => Queries.GetProfileAsync(c, null, key), ct);

    public Task<IReadOnlyDictionary<string, Profile>> GetProfilesAsync(IReadOnlyCollection<string> keys, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyDictionary<string, Profile>>(async c =>
        {
            var found = new Dictionary<string, Profile>(StringComparer.Ordinal);
            if (keys.Count == 0)
            {
                return found;
            }

            await using var cmd = Prepared.Cmd(c, "SELECT doc, version FROM profiles WHERE key IN (SELECT value FROM json_each($k))", null,
                ("$k", JsonSerializer.Serialize(keys)));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var p = Queries.Doc<Profile>(r);
                p.Version = r.GetInt64(1);
                found[p.Key] = p;
            }

            return found;
        }, ct);

    public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey, CancellationToken ct = default) =>
        ReadAsync(c => Queries.DevicesAsync(c, null, "profile_key = $v", profileKey), ct);

    public Task<Device?> GetDeviceAsync(string token, CancellationToken ct = default) =>
        ReadAsync(async c => (await Queries.DevicesAsync(c, null, "token = $v", token)) is [var d, ..] ? d : null, ct);

    public Task<IReadOnlyList<StoredEvent>> GetRecentEventsAsync(string profileKey, int limit, CancellationToken ct = default) =>
        ReadAsync(c => Queries.EventsAsync(c, "profile_key = $k", profileKey, limit), ct);

    public Task<IReadOnlyList<StoredEvent>> GetUnattachedEventsAsync(int limit, CancellationToken ct = default) =>
        ReadAsync(c => Queries.EventsAsync(c, "profile_key IS NULL AND $k IS NULL", null, limit), ct);

    public Task<StoreCounts> CountAsync(CancellationToken ct = default) => ReadAsync(async c =>
    {
        await using var cmd = Prepared.Cmd(c, """
            SELECT (SELECT COUNT(*) FROM profiles), (SELECT COUNT(*) FROM devices),
                   (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM processed)
            """, null);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new StoreCounts(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3));
    }, ct);

    public Task<IReadOnlyList<(string Id, string ProfileKey)>> DueInstancesAsync(DateTimeOffset now, int limit, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<(string, string)>>(async c =>
        {
            await using var cmd = Prepared.Cmd(c, "SELECT id, profile_key FROM instances WHERE wake_at IS NOT NULL AND wake_at <= $now ORDER BY wake_at LIMIT $n", null,
                ("$now", now.ToUnixTimeMilliseconds()), ("$n", limit));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var list = new List<(string, string)>();
            while (await r.ReadAsync(ct))
            {
                list.Add((r.GetString(0), r.GetString(1)));
            }

            return list;
        }, ct);

    public Task<DateTimeOffset?> NextWakeAsync(CancellationToken ct = default) => ReadAsync(async c =>
    {
        await using var cmd = Prepared.Cmd(c, "SELECT MIN(wake_at) FROM instances WHERE wake_at IS NOT NULL", null);
        return await cmd.ExecuteScalarAsync(ct) is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null;
    }, ct);

    public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey, CancellationToken ct = default) =>
        ReadAsync(c => Queries.InstancesAsync(c, null, "profile_key = $v", profileKey), ct);

    public Task<IReadOnlyList<Message>> GetMessagesAsync(string profileKey, int limit, CancellationToken ct = default) =>
        ReadAsync(c => Queries.MessagesAsync(c, null, "profile_key = $v ORDER BY created_at DESC, id LIMIT $n", ("$v", profileKey), ("$n", limit)), ct);

    public Task<Message?> GetMessageAsync(string id, CancellationToken ct = default) =>
        ReadAsync(async c => await Queries.MessagesAsync(c, null, "id = $v", ("$v", id)) is [var m, ..] ? m : null, ct);

    public Task<IReadOnlyList<MessageSummary>> ListMessagesAsync(MessageListQuery query, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<MessageSummary>>(async c =>
        {
            // Walks the (created_at, id) index backwards from the cursor (row-value comparison, so SQLite seeks to it)
            // and tests each row against the filters, which are plain columns: a page costs the rows it skips, and one
            // statement serves every combination of filters.
            var after = query.After ?? new MessageListCursor(query.To, "");
            var list = await Queries.MessagesAsync(c, null, """
                created_at >= $from AND created_at < $to AND (created_at, id) < ($t, $id)
                AND ($j IS NULL OR journey_id = $j) AND ($st IS NULL OR step_id = $st) AND ($c IS NULL OR channel = $c)
                AND ($s IS NULL OR status = $s) AND ($rs IS NULL OR reason = $rs) AND ($pl IS NULL OR instr(platforms, $pl) > 0)
                ORDER BY created_at DESC, id DESC LIMIT $n
                """, ("$from", query.From.ToUnixTimeMilliseconds()), ("$to", query.To.ToUnixTimeMilliseconds()),
                ("$t", after.CreatedAt.ToUnixTimeMilliseconds()), ("$id", after.Id), ("$j", query.JourneyId), ("$st", query.StepId),
                ("$c", query.Channel), ("$s", query.Status), ("$rs", query.Reason),
                ("$pl", query.Platform is null ? null : PlatformSeparator + query.Platform + PlatformSeparator), ("$n", Math.Max(0, query.Limit)));
            return [.. list.Select(MessageSummary.Of)];
        }, ct);

    public Task<IReadOnlyList<Message>> ReadyMessagesAsync(DateTimeOffset now, int limit, CancellationToken ct = default) =>
        ReadAsync(c => Queries.MessagesAsync(c, null, "ready > 0 AND ready <= $now ORDER BY ready, id LIMIT $n",
            ("$now", now.ToUnixTimeMilliseconds()), ("$n", limit)), ct);

    public Task<IReadOnlyDictionary<string, (Device Device, DateTimeOffset? BouncedAt)>> GetPushTargetsAsync(IReadOnlyCollection<string> tokens, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyDictionary<string, (Device, DateTimeOffset?)>>(async c =>
        {
            var found = new Dictionary<string, (Device, DateTimeOffset?)>(StringComparer.Ordinal);
            if (tokens.Count == 0)
            {
                return found;
            }

            await using var cmd = Prepared.Cmd(c, """
                SELECT d.doc, b.at FROM devices d LEFT JOIN bounced_tokens b ON b.token = d.token
                WHERE d.token IN (SELECT value FROM json_each($t))
                """, null, ("$t", JsonSerializer.Serialize(tokens)));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var d = Queries.Doc<Device>(r);
                found[d.Token] = (d, r.IsDBNull(1) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)));
            }

            return found;
        }, ct);

    public Task<IReadOnlySet<string>> GetHeldClaimsAsync(IReadOnlyCollection<HeldClaim> claims, CancellationToken ct = default) =>
        ReadAsync<IReadOnlySet<string>>(async c =>
        {
            var held = new HashSet<string>(StringComparer.Ordinal);
            if (claims.Count == 0)
            {
                return held;
            }

            var want = claims.ToDictionary(h => h.MessageId, h => Math.Max(1, h.Claim.ToUnixTimeMilliseconds()), StringComparer.Ordinal);
            await using var cmd = Prepared.Cmd(c, "SELECT id, ready FROM messages WHERE id IN (SELECT value FROM json_each($ids))", null,
                ("$ids", JsonSerializer.Serialize(want.Keys)));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                if (want.TryGetValue(r.GetString(0), out var claim) && r.GetInt64(1) == claim)
                {
                    held.Add(r.GetString(0));
                }
            }

            return held;
        }, ct);

    public Task<DateTimeOffset?> GetTokenBounceAsync(string token, CancellationToken ct = default) => ReadAsync(async c =>
    {
        await using var cmd = Prepared.Cmd(c, "SELECT at FROM bounced_tokens WHERE token = $t", null, ("$t", token));
        return await cmd.ExecuteScalarAsync(ct) is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null;
    }, ct);

    public Task<IReadOnlyList<OutboxEntry>> GetOutboxAsync(int limit, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<OutboxEntry>>(async c =>
        {
            await using var cmd = Prepared.Cmd(c, "SELECT doc FROM outbox ORDER BY recorded_at DESC, message_id LIMIT $n", null, ("$n", limit));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var list = new List<OutboxEntry>();
            while (await r.ReadAsync(ct))
            {
                list.Add(Queries.Doc<OutboxEntry>(r));
            }

            return list;
        }, ct);

    public Task<IReadOnlyList<DeliveryEvent>> GetDeliveryEventsAsync(DeliveryEventQuery query, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<DeliveryEvent>>(async c =>
        {
            // One statement per ordering column, so each stays prepared; no cursor reads from (From, "").
            var column = query.ByRecordedAt ? "recorded_at" : "at";
            var after = query.After ?? new DeliveryEventCursor(query.From, "");
            await using var cmd = Prepared.Cmd(c, $"""
                SELECT doc FROM delivery_events
                WHERE {column} >= $from AND {column} < $to AND ({column} > $t OR ({column} = $t AND id > $id))
                ORDER BY {column}, id LIMIT $n
                """, null, ("$from", query.From.ToUnixTimeMilliseconds()), ("$to", query.To.ToUnixTimeMilliseconds()),
                ("$t", after.Time.ToUnixTimeMilliseconds()), ("$id", after.Id), ("$n", Math.Max(0, query.Limit)));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var list = new List<DeliveryEvent>();
            while (await r.ReadAsync(ct))
            {
                list.Add(Queries.Doc<DeliveryEvent>(r));
            }

            return list;
        }, ct);

    public Task<IReadOnlyList<InstanceOutcome>> GetInstanceOutcomesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<InstanceOutcome>>(async c =>
        {
            // The few fields lift needs, read out of the documents by SQLite (no instance has to be parsed whole); the
            // start time is ISO text in the document, so the range is applied here rather than in SQL.
            await using var cmd = Prepared.Cmd(c, """
                SELECT id, journey_id, profile_key, json_extract(doc, '$.startedAt'), json_extract(doc, '$.holdout'),
                       json_extract(doc, '$.stepVisits') != '{}', json_extract(doc, '$.convertedAt'),
                       (SELECT json_group_array(key) FROM json_each(doc, '$.stepVisits')), json_extract(doc, '$.currentStep'),
                       json_extract(doc, '$.status') NOT IN ('active', 'pending')
                FROM instances
                """, null);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var list = new List<InstanceOutcome>();
            while (await r.ReadAsync(ct))
            {
                var started = Queries.Time(r.GetString(3));
                if (started >= from && started < to)
                {
                    list.Add(new InstanceOutcome(r.GetString(0), r.GetString(1), r.GetString(2), started, !r.IsDBNull(4) && r.GetInt64(4) != 0,
                        !r.IsDBNull(5) && r.GetInt64(5) != 0, r.IsDBNull(6) ? null : Queries.Time(r.GetString(6)))
                    {
                        Steps = JsonSerializer.Deserialize<string[]>(r.GetString(7)) ?? [],
                        CurrentStep = r.IsDBNull(8) ? null : r.GetString(8),
                        Ended = !r.IsDBNull(9) && r.GetInt64(9) != 0,
                    });
                }
            }

            return list;
        }, ct);

    public Task<IReadOnlyList<PersonActivity>> GetActivePeopleAsync(DateTimeOffset since, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<PersonActivity>>(async c =>
        {
            var last = new Dictionary<string, long>(StringComparer.Ordinal);
            await using (var cmd = Prepared.Cmd(c, "SELECT profile_key, MAX(ts) FROM events WHERE ts >= $s AND profile_key IS NOT NULL GROUP BY profile_key", null,
                ("$s", since.ToUnixTimeMilliseconds())))
            {
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    last[r.GetString(0)] = r.GetInt64(1);
                }
            }

            var devices = new List<Device>();
            await using (var cmd = Prepared.Cmd(c, "SELECT doc FROM devices", null))
            {
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    devices.Add(Queries.Doc<Device>(r));
                }
            }

            return PersonActivities.Combine(last, devices, since);
        }, ct);

    public Task<Checkpoint?> GetCheckpointAsync(string name, CancellationToken ct = default) => ReadAsync(async c =>
    {
        await using var cmd = Prepared.Cmd(c, "SELECT value, version FROM checkpoints WHERE name = $n", null, ("$n", name));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new Checkpoint(name, r.GetString(0), r.GetInt64(1)) : null;
    }, ct);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _writer.WaitAsync();
        if (_writeConnection is not null)
        {
            await _writeConnection.DisposeAsync();
            _writeConnection = null;
        }

        _writer.Dispose();
    }

    private async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> read, CancellationToken ct)
    {
        await using var c = new SqliteConnection(_cs);
        await c.OpenAsync(ct);
        return await read(c);
    }

    private sealed partial class Session(SqliteStore store, SqliteConnection c, SqliteTransaction tx) : IStoreSession
    {
        private bool _done;

        /// <summary>Opened at synchronous=NORMAL (<see cref="OpenUnsyncedSessionAsync"/>): FULL again when it ends.</summary>
        public bool Unsynced { get; init; }

        public async Task<bool> TryMarkProcessedAsync(string key, DateTimeOffset at)
        {
            await using var cmd = Prepared.Cmd(c, "INSERT OR IGNORE INTO processed(key, at) VALUES($k, $a)", tx,
                ("$k", key), ("$a", at.ToUnixTimeMilliseconds()));
            return await cmd.ExecuteNonQueryAsync() == 1;
        }

        public Task<string?> ResolveAsync(Identifier identifier) => Queries.ResolveAsync(c, tx, identifier);

        public Task<Profile?> GetProfileAsync(string key) => Queries.GetProfileAsync(c, tx, key);

        public async Task PutProfileAsync(Profile p)
        {
            var doc = JsonSerializer.Serialize(p, StoreJson.Options);
            var now = p.UpdatedAt.ToUnixTimeMilliseconds();
            await using (var cmd = p.Version == 0
                ? Prepared.Cmd(c, "INSERT OR IGNORE INTO profiles(key, version, doc, updated_at) VALUES($k, 1, $d, $u)", tx,
                    ("$k", p.Key), ("$d", doc), ("$u", now))
                : Prepared.Cmd(c, "UPDATE profiles SET version = version + 1, doc = $d, updated_at = $u WHERE key = $k AND version = $v", tx,
                    ("$k", p.Key), ("$d", doc), ("$u", now), ("$v", p.Version)))
            {
                if (await cmd.ExecuteNonQueryAsync() != 1)
                {
                    throw new ConcurrencyException($"profile {p.Key} changed since version {p.Version} was read");
                }
            }

            await using (var del = Prepared.Cmd(c, "DELETE FROM identifiers WHERE profile_key = $k", tx, ("$k", p.Key)))
            {
                await del.ExecuteNonQueryAsync();
            }

            // Held by someone else: taken over only from a profile merged into this one (see IStoreSession.PutProfileAsync).
            var mergedFrom = JsonSerializer.Serialize(p.MergedFrom);
            foreach (var (kind, value) in IdentifierIndex.Of(p))
            {
                await using var ins = Prepared.Cmd(c, """
                    INSERT INTO identifiers(kind, value, profile_key) VALUES($t, $v, $k)
                    ON CONFLICT(kind, value) DO UPDATE SET profile_key = excluded.profile_key
                    WHERE identifiers.profile_key IN (SELECT value FROM json_each($m))
                    """, tx, ("$t", kind), ("$v", value), ("$k", p.Key), ("$m", mergedFrom));
                if (await ins.ExecuteNonQueryAsync() == 0 && !kind.StartsWith("alias_", StringComparison.Ordinal))
                {
                    throw new ConcurrencyException($"{kind} '{value}' belongs to another profile");
                }
            }

            p.Version++;
        }

        public async Task DeleteProfileAsync(string key)
        {
            foreach (var sql in new[]
            {
                "DELETE FROM identifiers WHERE profile_key = $k", "DELETE FROM devices WHERE profile_key = $k",
                "DELETE FROM events WHERE profile_key = $k", "DELETE FROM instances WHERE profile_key = $k",
                "DELETE FROM messages WHERE profile_key = $k", "DELETE FROM profiles WHERE key = $k",
            })
            {
                await using var cmd = Prepared.Cmd(c, sql, tx, ("$k", key));
                await cmd.ExecuteNonQueryAsync();
            }
        }

        public async Task AppendEventAsync(StoredEvent e)
        {
            await using var cmd = Prepared.Cmd(c, """
                INSERT INTO events(profile_key, event_id, name, type, ts, received_at, source, data)
                VALUES($p, $i, $n, $t, $ts, $r, $s, $d)
                """, tx, ("$p", e.ProfileKey), ("$i", e.EventId), ("$n", e.Name), ("$t", e.Type),
                ("$ts", e.Timestamp.ToUnixTimeMilliseconds()), ("$r", e.ReceivedAt.ToUnixTimeMilliseconds()),
                ("$s", e.Source), ("$d", e.Data.ToJsonString()));
            await cmd.ExecuteNonQueryAsync();
        }

        public async Task MoveEventsAsync(string fromKey, string toKey)
        {
            await using var cmd = Prepared.Cmd(c, "UPDATE events SET profile_key = $t WHERE profile_key = $f", tx, ("$f", fromKey), ("$t", toKey));
            await cmd.ExecuteNonQueryAsync();
        }

        public async Task<Device?> GetDeviceAsync(string token) =>
            await Queries.DevicesAsync(c, tx, "token = $v", token) is [var d, ..] ? d : null;

        public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey) =>
            Queries.DevicesAsync(c, tx, "profile_key = $v", profileKey);

        public Task<IReadOnlyList<Device>> FindDevicesByPhysicalIdAsync(string deviceId) =>
            Queries.DevicesAsync(c, tx, "device_id = $v", deviceId);

        public async Task PutDeviceAsync(Device d)
        {
            await using var cmd = Prepared.Cmd(c, """
                INSERT INTO devices(token, profile_key, device_id, doc) VALUES($t, $p, $i, $d)
                ON CONFLICT(token) DO UPDATE SET profile_key = excluded.profile_key, device_id = excluded.device_id, doc = excluded.doc
                """, tx, ("$t", d.Token), ("$p", d.ProfileKey), ("$i", d.DeviceId), ("$d", JsonSerializer.Serialize(d, StoreJson.Options)));
            await cmd.ExecuteNonQueryAsync();
        }

        public async Task DeleteDeviceAsync(string token)
        {
            await using var cmd = Prepared.Cmd(c, "DELETE FROM devices WHERE token = $t", tx, ("$t", token));
            await cmd.ExecuteNonQueryAsync();
        }

        public Task<IReadOnlyList<StoredEvent>> GetEventsSinceAsync(string profileKey, DateTimeOffset since, int limit) =>
            Queries.EventsSinceAsync(c, tx, profileKey, since, limit);

        public async Task<JourneyInstance?> GetInstanceAsync(string id) =>
            await Queries.InstancesAsync(c, tx, "id = $v", id) is [var i, ..] ? i : null;

        public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey) =>
            Queries.InstancesAsync(c, tx, "profile_key = $v", profileKey);

        public async Task PutInstanceAsync(JourneyInstance i)
        {
            var doc = JsonSerializer.Serialize(i, StoreJson.Options);
            var wake = i.WakeAt?.ToUnixTimeMilliseconds();
            await using var cmd = i.Version == 0
                ? Prepared.Cmd(c, """
                    INSERT OR IGNORE INTO instances(id, profile_key, journey_id, status, wake_at, version, doc)
                    VALUES($id, $p, $j, $s, $w, 1, $d)
                    """, tx, ("$id", i.Id), ("$p", i.ProfileKey), ("$j", i.JourneyId), ("$s", i.Status.ToString()), ("$w", wake), ("$d", doc))
                : Prepared.Cmd(c, """
                    UPDATE instances SET profile_key = $p, status = $s, wake_at = $w, version = version + 1, doc = $d
                    WHERE id = $id AND version = $v
                    """, tx, ("$id", i.Id), ("$p", i.ProfileKey), ("$s", i.Status.ToString()), ("$w", wake), ("$d", doc), ("$v", i.Version));
            if (await cmd.ExecuteNonQueryAsync() != 1)
            {
                throw new ConcurrencyException($"journey instance {i.Id} changed since version {i.Version} was read");
            }

            i.Version++;
        }

        public async Task<bool> TryAddMessageAsync(Message m)
        {
            await using var cmd = Prepared.Cmd(c, """
                INSERT OR IGNORE INTO messages(id, profile_key, instance_id, channel, status, created_at, ready, journey_id, step_id, reason, platforms, doc)
                VALUES($id, $p, $i, $c, $s, $t, $r, $j, $st, $rs, $pl, $d)
                """, tx, Queries.MessageArgs(m));
            return await cmd.ExecuteNonQueryAsync() == 1;
        }

        public async Task PutMessageAsync(Message m)
        {
            await using var cmd = Prepared.Cmd(c, """
                INSERT INTO messages(id, profile_key, instance_id, channel, status, created_at, ready, journey_id, step_id, reason, platforms, doc)
                VALUES($id, $p, $i, $c, $s, $t, $r, $j, $st, $rs, $pl, $d)
                ON CONFLICT(id) DO UPDATE SET profile_key = excluded.profile_key, status = excluded.status,
                  ready = excluded.ready, journey_id = excluded.journey_id, step_id = excluded.step_id, reason = excluded.reason,
                  platforms = excluded.platforms, doc = excluded.doc
                """, tx, Queries.MessageArgs(m));
            await cmd.ExecuteNonQueryAsync();
        }

        public async Task<Message?> GetMessageAsync(string id) =>
            await Queries.MessagesAsync(c, tx, "id = $v", ("$v", id)) is [var m, ..] ? m : null;

        public Task<IReadOnlyList<Message>> GetMessagesSinceAsync(string profileKey, DateTimeOffset since) =>
            Queries.MessagesAsync(c, tx, "profile_key = $v AND created_at >= $t ORDER BY created_at, id", ("$v", profileKey), ("$t", since.ToUnixTimeMilliseconds()));

        public async Task MoveJourneysAsync(string fromKey, string toKey)
        {
            foreach (var i in await Queries.InstancesAsync(c, tx, "profile_key = $v", fromKey))
            {
                i.ProfileKey = toKey;
                await PutInstanceAsync(i);
            }

            foreach (var m in await Queries.MessagesAsync(c, tx, "profile_key = $v", ("$v", fromKey)))
            {
                m.ProfileKey = toKey;
                await PutMessageAsync(m);
            }
        }

        public async Task RecordOutboxAsync(OutboxEntry e)
        {
            await using var cmd = Prepared.Cmd(c, """
                INSERT OR IGNORE INTO outbox(message_id, profile_key, channel, recorded_at, doc) VALUES($m, $p, $c, $t, $d)
                """, tx, ("$m", e.MessageId), ("$p", e.ProfileKey), ("$c", e.Channel), ("$t", e.RecordedAt.ToUnixTimeMilliseconds()),
                ("$d", JsonSerializer.Serialize(e, StoreJson.Options)));
            await cmd.ExecuteNonQueryAsync();
        }

        public async Task AppendDeliveryEventAsync(DeliveryEvent e)
        {
            // Appended in insertion order (rowid): an index on the random event id would dirty a random page per event
            // and multiplied the WAL written per commit (the send stage ran at half speed). The repeat check rides on
            // the (at, id) index instead, which is what the contract promises: the same event (id and time) is kept once.
            await using var cmd = Prepared.Cmd(c, """
                INSERT INTO delivery_events(id, at, recorded_at, doc) SELECT $id, $at, $r, $d
                WHERE NOT EXISTS (SELECT 1 FROM delivery_events WHERE at = $at AND id = $id)
                """, tx,
                ("$id", e.Id), ("$at", e.At.ToUnixTimeMilliseconds()), ("$r", e.RecordedAt.ToUnixTimeMilliseconds()),
                ("$d", JsonSerializer.Serialize(e, StoreJson.Options)));
            await cmd.ExecuteNonQueryAsync();
        }

        public async Task<bool> TryPutCheckpointAsync(Checkpoint checkpoint)
        {
            await using var cmd = checkpoint.Version == 0
                ? Prepared.Cmd(c, "INSERT OR IGNORE INTO checkpoints(name, version, value) VALUES($n, 1, $v)", tx,
                    ("$n", checkpoint.Name), ("$v", checkpoint.Value))
                : Prepared.Cmd(c, "UPDATE checkpoints SET version = version + 1, value = $v WHERE name = $n AND version = $ver", tx,
                    ("$n", checkpoint.Name), ("$v", checkpoint.Value), ("$ver", checkpoint.Version));
            return await cmd.ExecuteNonQueryAsync() == 1;
        }

        public async Task<bool> TryClaimMessageAsync(string id, DateTimeOffset now, DateTimeOffset until)
        {
            await using var cmd = Prepared.Cmd(c, "UPDATE messages SET ready = $u WHERE id = $id AND ready > 0 AND ready <= $now", tx,
                ("$id", id), ("$now", now.ToUnixTimeMilliseconds()), ("$u", Math.Max(1, until.ToUnixTimeMilliseconds())));
            return await cmd.ExecuteNonQueryAsync() == 1;
        }

        public Task<IReadOnlyList<Message>> ClaimReadyMessagesAsync(DateTimeOffset now, DateTimeOffset until, int limit) =>
            Queries.ReadMessagesAsync(c, tx, "UPDATE messages SET ready = $u WHERE id IN (SELECT id FROM messages WHERE ready > 0 AND ready <= $now ORDER BY ready, id LIMIT $n) RETURNING doc",
                ("$now", now.ToUnixTimeMilliseconds()), ("$u", Math.Max(1, until.ToUnixTimeMilliseconds())), ("$n", limit));

        public async Task<bool> TryRenewClaimAsync(string id, string profileKey, DateTimeOffset claim, DateTimeOffset until)
        {
            await using var cmd = Prepared.Cmd(c, "UPDATE messages SET ready = $u WHERE id = $id AND ready = $claim", tx,
                ("$id", id), ("$claim", Math.Max(1, claim.ToUnixTimeMilliseconds())), ("$u", Math.Max(1, until.ToUnixTimeMilliseconds())));
            return await cmd.ExecuteNonQueryAsync() == 1;
        }

        public async Task<bool> TryRecordSendOutcomeAsync(Message m, DateTimeOffset claim)
        {
            // The whole document is written (json_set of only the send fields measured no faster); the claim check
            // rides on the same statement.
            await using var cmd = Prepared.Cmd(c, """
                UPDATE messages SET status = $s, reason = $rs, ready = $r, doc = $d WHERE id = $id AND ready = $claim
                """, tx, ("$id", m.Id), ("$claim", Math.Max(1, claim.ToUnixTimeMilliseconds())), ("$s", m.Status), ("$rs", m.Reason), ("$r", Queries.ReadyAt(m)),
                ("$d", JsonSerializer.Serialize(m, StoreJson.Options)));
            return await cmd.ExecuteNonQueryAsync() == 1;
        }

        public async Task MarkTokenBouncedAsync(string token, DateTimeOffset at, string detail)
        {
            await using var cmd = Prepared.Cmd(c, """
                INSERT INTO bounced_tokens(token, at, detail) VALUES($t, $a, $d)
                ON CONFLICT(token) DO UPDATE SET at = max(at, excluded.at), detail = excluded.detail
                """, tx, ("$t", token), ("$a", at.ToUnixTimeMilliseconds()), ("$d", detail));
            await cmd.ExecuteNonQueryAsync();
        }

        public async Task<IReadOnlyList<string>> FindProfilesByPhoneAsync(string e164)
        {
            // Expression indexes on the two phone attributes (the same expressions as in the schema, so SQLite uses them).
            await using var cmd = Prepared.Cmd(c, """
                SELECT key FROM profiles WHERE json_extract(doc, '$.attributes.sms_phone.v') = $p
                UNION SELECT key FROM profiles WHERE json_extract(doc, '$.attributes.phone.v') = $p
                ORDER BY key
                """, tx, ("$p", e164));
            await using var r = await cmd.ExecuteReaderAsync();
            var keys = new List<string>();
            while (await r.ReadAsync())
            {
                keys.Add(r.GetString(0));
            }

            return keys;
        }

        public async Task CommitAsync()
        {
            await tx.CommitAsync();
            _done = true;
        }


        public async ValueTask DisposeAsync()
        {
            try
            {
                if (!_done)
                {
                    await tx.RollbackAsync();
                }

                await tx.DisposeAsync();
                if (Unsynced)
                {
                    await SqliteDb.ExecAsync(c, "PRAGMA synchronous=FULL");
                }
            }
            finally
            {
                store._writer.Release();
            }
        }
    }

    private static class Queries
    {
        /// <summary>The document in column 0, parsed from its UTF-8 bytes (no intermediate string).</summary>
        public static T Doc<T>(SqliteDataReader r) => JsonSerializer.Deserialize<T>(r.GetFieldValue<byte[]>(0), StoreJson.Options)!;

        /// <summary>A time as the documents keep it (ISO-8601 text).</summary>
        public static DateTimeOffset Time(string text) =>
            DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal);

        public static async Task<string?> ResolveAsync(SqliteConnection c, SqliteTransaction? tx, Identifier id)
        {
            var kinds = IdentifierIndex.KindsFor(id.Kind);
            if (id.Kind == IdentifierKind.CioId)
            {
                await using var direct = Prepared.Cmd(c, "SELECT key FROM profiles WHERE key = $v", tx, ("$v", id.Value));
                if (await direct.ExecuteScalarAsync() is string k)
                {
                    return k;
                }
            }

            foreach (var kind in kinds)
            {
                await using var cmd = Prepared.Cmd(c, "SELECT profile_key FROM identifiers WHERE kind = $t AND value = $v", tx,
                    ("$t", kind), ("$v", id.Value));
                if (await cmd.ExecuteScalarAsync() is string key)
                {
                    return key;
                }
            }

            return null;
        }

        public static async Task<Profile?> GetProfileAsync(SqliteConnection c, SqliteTransaction? tx, string key)
        {
            await using var cmd = Prepared.Cmd(c, "SELECT doc, version FROM profiles WHERE key = $k", tx, ("$k", key));
            await using var r = await cmd.ExecuteReaderAsync();
            if (!await r.ReadAsync())
            {
                return null;
            }

            var p = Queries.Doc<Profile>(r);
            p.Version = r.GetInt64(1);
            return p;
        }

        public static async Task<IReadOnlyList<Device>> DevicesAsync(SqliteConnection c, SqliteTransaction? tx, string where, string value)
        {
            await using var cmd = Prepared.Cmd(c, $"SELECT doc FROM devices WHERE {where} ORDER BY token", tx, ("$v", value));
            await using var r = await cmd.ExecuteReaderAsync();
            var list = new List<Device>();
            while (await r.ReadAsync())
            {
                list.Add(Queries.Doc<Device>(r));
            }

            return list;
        }

        public static async Task<IReadOnlyList<JourneyInstance>> InstancesAsync(SqliteConnection c, SqliteTransaction? tx, string where, string value)
        {
            await using var cmd = Prepared.Cmd(c, $"SELECT doc, version FROM instances WHERE {where} ORDER BY id", tx, ("$v", value));
            await using var r = await cmd.ExecuteReaderAsync();
            var list = new List<JourneyInstance>();
            while (await r.ReadAsync())
            {
                var i = Queries.Doc<JourneyInstance>(r);
                i.Version = r.GetInt64(1);
                list.Add(i);
            }

            return list;
        }

        public static Task<IReadOnlyList<Message>> MessagesAsync(SqliteConnection c, SqliteTransaction? tx, string where, params (string, object?)[] args) =>
            ReadMessagesAsync(c, tx, $"SELECT doc FROM messages WHERE {where}", args);

        /// <summary>Runs <paramref name="sql"/>, whose first column is a message document.</summary>
        public static async Task<IReadOnlyList<Message>> ReadMessagesAsync(SqliteConnection c, SqliteTransaction? tx, string sql, params (string, object?)[] args)
        {
            await using var cmd = Prepared.Cmd(c, sql, tx, args);
            await using var r = await cmd.ExecuteReaderAsync();
            var list = new List<Message>();
            while (await r.ReadAsync())
            {
                list.Add(Queries.Doc<Message>(r));
            }

            return list;
        }

        public static (string, object?)[] MessageArgs(Message m) =>
        [
            ("$id", m.Id), ("$p", m.ProfileKey), ("$i", m.InstanceId), ("$c", m.Channel.ToString().ToLowerInvariant()),
            ("$s", m.Status), ("$t", m.CreatedAt.ToUnixTimeMilliseconds()), ("$r", ReadyAt(m)),
            ("$j", m.JourneyId), ("$st", m.StepId), ("$rs", m.Reason), ("$pl", PlatformsColumn(m)),
            ("$d", JsonSerializer.Serialize(m, StoreJson.Options)),
        ];

        /// <summary>The platforms column (see <see cref="PlatformSeparator"/>).</summary>
        public static string? PlatformsColumn(Message m) =>
            m.Platforms.Count == 0 ? null : PlatformSeparator + string.Join(PlatformSeparator, m.Platforms) + PlatformSeparator;

        /// <summary>The ready column: 0 when the send stage has nothing to do, else the Unix ms of the next attempt (at least 1).</summary>
        public static long ReadyAt(Message m) => !m.Ready ? 0 : Math.Max(1, (m.NextAttemptAt ?? m.CreatedAt).ToUnixTimeMilliseconds());

        public static async Task<IReadOnlyList<StoredEvent>> EventsSinceAsync(SqliteConnection c, SqliteTransaction? tx, string key, DateTimeOffset since, int limit)
        {
            await using var cmd = Prepared.Cmd(c, """
                SELECT event_id, profile_key, name, type, ts, received_at, source, data FROM events
                WHERE profile_key = $k AND ts >= $t ORDER BY ts, seq LIMIT $n
                """, tx, ("$k", key), ("$t", since.ToUnixTimeMilliseconds()), ("$n", limit));
            return await ReadEventsAsync(cmd.Command);
        }

        public static async Task<IReadOnlyList<StoredEvent>> EventsAsync(SqliteConnection c, string where, string? key, int limit)
        {
            await using var cmd = Prepared.Cmd(c, $"""
                SELECT event_id, profile_key, name, type, ts, received_at, source, data FROM events
                WHERE {where} ORDER BY ts DESC, seq DESC LIMIT $n
                """, null, ("$k", key), ("$n", limit));
            return await ReadEventsAsync(cmd.Command);
        }

        private static async Task<IReadOnlyList<StoredEvent>> ReadEventsAsync(SqliteCommand cmd)
        {
            await using var r = await cmd.ExecuteReaderAsync();
            var list = new List<StoredEvent>();
            while (await r.ReadAsync())
            {
                list.Add(new StoredEvent(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetString(2), r.GetString(3),
                    DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4)), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)),
                    r.GetString(6), JsonNode.Parse(r.GetString(7))!.AsObject()));
            }

            return list;
        }
    }
}
