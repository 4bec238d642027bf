using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Nudge.Core.Queues;

namespace Nudge.Sqlite.Queue;

/// <summary>
/// Durable work queues in one SQLite file. Appends from concurrent callers are grouped into one transaction
/// (group commit): each caller's <see cref="EnqueueAsync"/> completes once its messages are on disk, and one fsync
/// serves every caller in the group, so durability does not cap ingest throughput.
/// A message delivered <see cref="MaxDeliveries"/> times without being completed moves to <c>{queue}-poison</c>.
/// </summary>
public sealed class SqliteWorkQueue : IWorkQueue, IAsyncDisposable
{
    /// <summary>Suffix of the queue that holds messages that failed too often.</summary>
    public const string PoisonSuffix = "-poison";

    /// <summary>Most appends grouped into one transaction: 2,048 calls.</summary>
    private const int MaxGroup = 2048;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS messages(
          id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, body TEXT NOT NULL, enqueued_at INTEGER NOT NULL,
          visible_at INTEGER NOT NULL, dequeue_count INTEGER NOT NULL DEFAULT 0, lease TEXT, reason TEXT);
        CREATE INDEX IF NOT EXISTS messages_queue ON messages(queue, id);
        """;

    private readonly string _cs;
    private readonly TimeProvider _time;
    private readonly Channel<Append> _appends = Channel.CreateUnbounded<Append>(new UnboundedChannelOptions { SingleReader = true });
    private readonly WorkSignal _signals = new();
    private readonly SemaphoreSlim _opsLock = new(1, 1);
    private SqliteConnection? _appendConnection;
    private SqliteConnection? _opsConnection;
    private Task? _appendLoop;
    private int _disposed;

    private SqliteWorkQueue(string path, TimeProvider time, int maxDeliveries)
    {
        _cs = SqliteDb.ConnectionString(path);
        _time = time;
        MaxDeliveries = maxDeliveries;
    }

    /// <summary>Deliveries before a message is dead-lettered (Azure Storage queues' maxDequeueCount default): 5.</summary>
    public int MaxDeliveries { get; }

    /// <summary>
    /// Opens (and creates, if needed) the queue file. The file belongs to one process: leases held by an earlier
    /// process (one that crashed mid-batch) are released at once, so its work resumes now instead of after the lease.
    /// </summary>
    public static async Task<SqliteWorkQueue> OpenAsync(string path, TimeProvider time, int maxDeliveries = 5, CancellationToken ct = default)
    {
        SqliteDb.MakePrivate(path);
        var q = new SqliteWorkQueue(path, time, maxDeliveries);
        q._appendConnection = await SqliteDb.OpenAsync(q._cs, durable: true, ct);
        await SqliteDb.ExecAsync(q._appendConnection, Schema, ct);
        await using (var release = SqliteDb.Command(q._appendConnection,
            "UPDATE messages SET visible_at = $now, lease = NULL WHERE lease IS NOT NULL AND visible_at > $now", null,
            ("$now", time.GetUtcNow().ToUnixTimeMilliseconds())))
        {
            await release.ExecuteNonQueryAsync(ct);
        }

        // Receive, complete, abandon and dead-letter commit without fsync (synchronous=NORMAL: a process crash loses
        // nothing, a power loss may roll the last of them back). Every one of them is safe to lose: a message whose
        // completion is lost is delivered again and its op deduplicated by the store; a lost lease or delay only makes
        // a message visible sooner. Appends, which callers are told are durable, keep their fsync.
        q._opsConnection = await SqliteDb.OpenAsync(q._cs, durable: false, ct);
        q._appendLoop = Task.Run(q.AppendLoopAsync, CancellationToken.None);
        return q;
    }

    public async Task EnqueueAsync(string queue, IReadOnlyList<OutgoingMessage> messages, CancellationToken ct = default)
    {
        if (messages.Count == 0)
        {
            return;
        }

        var append = new Append(queue, messages, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!_appends.Writer.TryWrite(append), this);

        // Not cancellable once written: the caller must learn whether its messages are durable.
        await append.Done.Task;
    }

    public async Task<IReadOnlyList<LeasedMessage>> ReceiveAsync(string queue, int max, TimeSpan lease, CancellationToken ct = default)
    {
        var now = _time.GetUtcNow();
        var token = Guid.NewGuid().ToString("N");
        var received = new List<LeasedMessage>();
        await _opsLock.WaitAsync(ct);
        try
        {
            await using var tx = (SqliteTransaction)await _opsConnection!.BeginTransactionAsync(ct);
            await using (var cmd = SqliteDb.Command(_opsConnection, """
                UPDATE messages SET visible_at = $until, dequeue_count = dequeue_count + 1, lease = $lease
                WHERE id IN (SELECT id FROM messages WHERE queue = $q AND visible_at <= $now ORDER BY id LIMIT $n)
                RETURNING id, body, dequeue_count, enqueued_at
                """, tx, ("$until", (now + lease).ToUnixTimeMilliseconds()), ("$lease", token), ("$q", queue),
                ("$now", now.ToUnixTimeMilliseconds()), ("$n", max)))
            {
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    received.Add(new LeasedMessage(queue, r.GetInt64(0), r.GetString(1), r.GetInt32(2),
                        DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3)), token));
                }
            }

            foreach (var m in received.Where(m => m.DequeueCount > MaxDeliveries))
            {
                await MoveToPoisonAsync(tx, m, $"delivered {m.DequeueCount - 1} times without completing");
            }

            await tx.CommitAsync(ct);
        }
        finally
        {
            _opsLock.Release();
        }

        return received.Where(m => m.DequeueCount <= MaxDeliveries).OrderBy(m => m.Id).ToList();
    }

    public Task CompleteAsync(IReadOnlyList<LeasedMessage> messages, CancellationToken ct = default) =>
        OpsAsync(async tx =>
        {
            // One statement per lease (a received batch shares one), the ids as a JSON array.
            foreach (var lease in messages.GroupBy(m => m.LeaseToken, StringComparer.Ordinal))
            {
                await using var cmd = SqliteDb.Command(_opsConnection!,
                    "DELETE FROM messages WHERE id IN (SELECT value FROM json_each($ids)) AND lease = $l", tx,
                    ("$ids", "[" + string.Join(',', lease.Select(m => m.Id)) + "]"), ("$l", lease.Key));
                await cmd.ExecuteNonQueryAsync(ct);
            }
        }, ct);

    public Task AbandonAsync(LeasedMessage message, TimeSpan delay, CancellationToken ct = default) =>
        OpsAsync(async tx =>
        {
            await using var cmd = SqliteDb.Command(_opsConnection!, "UPDATE messages SET visible_at = $v, lease = NULL WHERE id = $id AND lease = $l", tx,
                ("$v", (_time.GetUtcNow() + delay).ToUnixTimeMilliseconds()), ("$id", message.Id), ("$l", message.LeaseToken));
            await cmd.ExecuteNonQueryAsync(ct);
            if (delay <= TimeSpan.Zero)
            {
                Pulse(message.Queue);
            }
        }, ct);

    public Task DeadLetterAsync(LeasedMessage message, string reason, CancellationToken ct = default) =>
        OpsAsync(tx => MoveToPoisonAsync(tx, message, reason), ct);

    public async Task WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken ct = default)
    {
        await _signals.WaitAsync(queue, timeout, ct);
    }

    public async Task<long> CountAsync(string queue, CancellationToken ct = default)
    {
        await using var c = new SqliteConnection(_cs);
        await c.OpenAsync(ct);
        await using var cmd = SqliteDb.Command(c, "SELECT COUNT(*) FROM messages WHERE queue = $q", null, ("$q", queue));
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The reasons recorded on dead-lettered messages of <paramref name="queue"/>, oldest first.</summary>
    public async Task<IReadOnlyList<(string Body, string Reason)>> PoisonAsync(string queue, CancellationToken ct = default)
    {
        await using var c = new SqliteConnection(_cs);
        await c.OpenAsync(ct);
        await using var cmd = SqliteDb.Command(c, "SELECT body, reason FROM messages WHERE queue = $q ORDER BY id", null, ("$q", queue + PoisonSuffix));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<(string, string)>();
        while (await r.ReadAsync(ct))
        {
            list.Add((r.GetString(0), r.IsDBNull(1) ? "" : r.GetString(1)));
        }

        return list;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _appends.Writer.TryComplete();
        if (_appendLoop is not null)
        {
            await _appendLoop;
        }

        await _opsLock.WaitAsync();
        foreach (var c in new[] { _appendConnection, _opsConnection })
        {
            if (c is not null)
            {
                await c.DisposeAsync();
            }
        }

        _opsConnection = null;
        _opsLock.Dispose();
    }

    private async Task MoveToPoisonAsync(SqliteTransaction tx, LeasedMessage m, string reason)
    {
        await using var cmd = SqliteDb.Command(_opsConnection!, """
            UPDATE messages SET queue = $pq, reason = $r, lease = NULL, visible_at = $now, dequeue_count = 0 WHERE id = $id
            """, tx, ("$pq", m.Queue + PoisonSuffix), ("$r", reason), ("$now", _time.GetUtcNow().ToUnixTimeMilliseconds()), ("$id", m.Id));
        await cmd.ExecuteNonQueryAsync();
    }

    private async Task OpsAsync(Func<SqliteTransaction, Task> work, CancellationToken ct)
    {
        await _opsLock.WaitAsync(ct);
        try
        {
            await using var tx = (SqliteTransaction)await _opsConnection!.BeginTransactionAsync(ct);
            await work(tx);
            await tx.CommitAsync(ct);
        }
        finally
        {
            _opsLock.Release();
        }
    }

    private async Task AppendLoopAsync()
    {
        var reader = _appends.Reader;
        var group = new List<Append>(MaxGroup);
        while (await reader.WaitToReadAsync())
        {
            group.Clear();
            while (group.Count < MaxGroup && reader.TryRead(out var a))
            {
                group.Add(a);
            }

            try
            {
                await WriteAsync(group);
                Complete(group);
            }
            catch (Exception)
            {
                // One bad append must not fail the others: write each alone and report its own outcome.
                foreach (var a in group)
                {
                    try
                    {
                        await WriteAsync([a]);
                        Complete([a]);
                    }
                    catch (Exception e)
                    {
                        a.Done.TrySetException(e);
                    }
                }
            }
        }
    }

    private void Complete(List<Append> group)
    {
        foreach (var a in group)
        {
            a.Done.TrySetResult();
        }

        foreach (var q in group.Select(a => a.Queue).Distinct())
        {
            Pulse(q);
        }
    }

    private async Task WriteAsync(List<Append> group)
    {
        var c = _appendConnection!;
        await using var tx = (SqliteTransaction)await c.BeginTransactionAsync();
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO messages(queue, body, enqueued_at, visible_at) VALUES($q, $b, $e, $v)";
        var q = cmd.Parameters.Add("$q", SqliteType.Text);
        var b = cmd.Parameters.Add("$b", SqliteType.Text);
        var e = cmd.Parameters.Add("$e", SqliteType.Integer);
        var v = cmd.Parameters.Add("$v", SqliteType.Integer);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var a in group)
        {
            foreach (var m in a.Messages)
            {
                q.Value = a.Queue;
                b.Value = m.Body;
                e.Value = now;
                v.Value = m.VisibleAt?.ToUnixTimeMilliseconds() ?? now;
                await cmd.ExecuteNonQueryAsync();
            }
        }

        await tx.CommitAsync();
    }

    private void Pulse(string queue) => _signals.Pulse(queue);

    private sealed record Append(string Queue, IReadOnlyList<OutgoingMessage> Messages, TaskCompletionSource Done);
}
