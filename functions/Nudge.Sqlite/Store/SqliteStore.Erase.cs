using System.Text.Json;
using Microsoft.Data.Sqlite;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Storage;

namespace Nudge.Sqlite.Store;

// Erasing a person and retention purges. Both run in one transaction (the store's writer), so a crash leaves a person
// either whole or erased, never half.
public sealed partial class SqliteStore
{
    public async Task<PurgeCounts> PurgeAsync(DateTimeOffset eventsBefore, DateTimeOffset messagesBefore, int limit, CancellationToken ct = default)
    {
        await using var s = (Session)await OpenSessionAsync(ct);
        var counts = await s.PurgeAsync(eventsBefore, messagesBefore, limit);
        await s.CommitAsync();
        return counts;
    }

    private sealed partial class Session
    {
        public async Task EraseProfileAsync(string key, DateTimeOffset now)
        {
            var profile = await GetProfileAsync(key);
            var keys = JsonSerializer.Serialize(Erasure.KeysOf(key, profile));
            var messages = await Queries.MessagesAsync(c, tx, "profile_key IN (SELECT value FROM json_each($v))", ("$v", keys));
            var devices = new List<string>();
            await using (var cmd = Prepared.Cmd(c, "SELECT token FROM devices WHERE profile_key IN (SELECT value FROM json_each($k))", tx, ("$k", keys)))
            await using (var r = await cmd.ExecuteReaderAsync())
            {
                while (await r.ReadAsync())
                {
                    devices.Add(r.GetString(0));
                }
            }

            var recipients = messages.SelectMany(m => m.Recipients.Concat(m.Deliveries.Select(d => d.Recipient))
                .Concat(m.Fallbacks.SelectMany(f => f.Recipients))).Concat(devices).Distinct(StringComparer.Ordinal).ToList();
            var secrets = Erasure.SecretsOf(Erasure.KeysOf(key, profile), profile, recipients);
            var salt = Erasure.NewSalt();

            // Delivery events carry no indexed person column (an index on a random key slowed the send stage's appends):
            // an erase, which is rare, reads the log's documents once instead.
            var kept = new List<(long Seq, DeliveryEvent Event)>();
            await using (var cmd = Prepared.Cmd(c, """
                SELECT doc, seq FROM delivery_events WHERE json_extract(doc, '$.profileKey') IN (SELECT value FROM json_each($k))
                """, tx, ("$k", keys)))
            await using (var r = await cmd.ExecuteReaderAsync())
            {
                while (await r.ReadAsync())
                {
                    kept.Add((r.GetInt64(1), Erasure.Scrub(Queries.Doc<DeliveryEvent>(r), salt, secrets)));
                }
            }

            foreach (var (seq, e) in kept)
            {
                await using var cmd = Prepared.Cmd(c, "UPDATE delivery_events SET id = $id, doc = $d WHERE seq = $s", tx,
                    ("$s", seq), ("$id", e.Id), ("$d", JsonSerializer.Serialize(e, StoreJson.Options)));
                await cmd.ExecuteNonQueryAsync();
            }

            foreach (var i in await Queries.InstancesAsync(c, tx, "profile_key IN (SELECT value FROM json_each($v))", keys))
            {
                var anonymous = Erasure.Scrub(i, salt, now);
                await using var cmd = Prepared.Cmd(c, """
                    INSERT OR IGNORE INTO instances(id, profile_key, journey_id, status, wake_at, version, doc)
                    VALUES($id, $p, $j, $s, NULL, 1, $d)
                    """, tx, ("$id", anonymous.Id), ("$p", anonymous.ProfileKey), ("$j", anonymous.JourneyId), ("$s", anonymous.Status.ToString()),
                    ("$d", JsonSerializer.Serialize(anonymous, StoreJson.Options)));
                await cmd.ExecuteNonQueryAsync();
            }

            await using (var cmd = Prepared.Cmd(c, "DELETE FROM bounced_tokens WHERE token IN (SELECT value FROM json_each($t))", tx,
                ("$t", JsonSerializer.Serialize(recipients))))
            {
                await cmd.ExecuteNonQueryAsync();
            }

            foreach (var sql in new[]
            {
                "DELETE FROM identifiers WHERE profile_key IN (SELECT value FROM json_each($k))",
                "DELETE FROM devices WHERE profile_key IN (SELECT value FROM json_each($k))",
                "DELETE FROM events WHERE profile_key IN (SELECT value FROM json_each($k))",
                "DELETE FROM instances WHERE profile_key IN (SELECT value FROM json_each($k))",
                "DELETE FROM messages WHERE profile_key IN (SELECT value FROM json_each($k))",
                "DELETE FROM outbox WHERE profile_key IN (SELECT value FROM json_each($k))",
                "DELETE FROM profiles WHERE key IN (SELECT value FROM json_each($k))",
            })
            {
                await using var cmd = Prepared.Cmd(c, sql, tx, ("$k", keys));
                await cmd.ExecuteNonQueryAsync();
            }
        }

        public async Task<PurgeCounts> PurgeAsync(DateTimeOffset eventsBefore, DateTimeOffset messagesBefore, int limit)
        {
            // By event time, on its own index (times mostly grow, so appends touch its last page only).
            var events = await ExecAsync("""
                DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts < $t ORDER BY ts LIMIT $n)
                """, eventsBefore, limit);
            var messages = await ExecAsync("""
                DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE created_at < $t ORDER BY created_at LIMIT $n)
                """, messagesBefore, limit);
            var outbox = await ExecAsync("""
                DELETE FROM outbox WHERE message_id IN (SELECT message_id FROM outbox WHERE recorded_at < $t ORDER BY recorded_at LIMIT $n)
                """, messagesBefore, limit);
            var delivery = await ExecAsync("""
                DELETE FROM delivery_events WHERE seq IN (SELECT seq FROM delivery_events WHERE at < $t ORDER BY at LIMIT $n)
                """, messagesBefore, limit);
            return new PurgeCounts(events, messages, outbox, delivery);
        }

        private async Task<long> ExecAsync(string sql, DateTimeOffset before, int limit)
        {
            await using var cmd = Prepared.Cmd(c, sql, tx, ("$t", before.ToUnixTimeMilliseconds()), ("$n", limit));
            return await cmd.ExecuteNonQueryAsync();
        }
    }
}
