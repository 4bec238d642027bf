using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace Nudge.Sqlite;

/// <summary>
/// Keeps prepared statements for commands run inside a transaction on a long-lived connection (the store's writer),
/// so hot paths do not re-parse their SQL on every call. Commands outside a transaction run on short-lived pooled
/// read connections and are not kept.
/// </summary>
internal static class Prepared
{
    private static readonly ConditionalWeakTable<SqliteConnection, Dictionary<string, SqliteCommand>> Cache = new();

    public static Lease Cmd(SqliteConnection c, string sql, SqliteTransaction? tx, params (string Name, object? Value)[] args)
    {
        if (tx is null)
        {
            return new Lease(SqliteDb.Command(c, sql, null, args), owned: true);
        }

        var commands = Cache.GetOrCreateValue(c);
        if (!commands.TryGetValue(sql, out var cmd))
        {
            cmd = c.CreateCommand();
            cmd.CommandText = sql;
            commands[sql] = cmd;
        }

        cmd.Transaction = tx;
        var ps = cmd.Parameters;
        if (ps.Count == args.Length)
        {
            // Same statement, same parameters: set the values in place rather than allocating new parameter objects.
            for (var i = 0; i < args.Length; i++)
            {
                if (ps[i].ParameterName != args[i].Name)
                {
                    ps.Clear();
                    break;
                }
            }
        }
        else
        {
            ps.Clear();
        }

        if (ps.Count == 0)
        {
            foreach (var (name, value) in args)
            {
                ps.AddWithValue(name, value ?? DBNull.Value);
            }
        }
        else
        {
            for (var i = 0; i < args.Length; i++)
            {
                var p = ps[i];
                p.ResetSqliteType();
                p.ResetDbType();
                p.Value = args[i].Value ?? DBNull.Value;
            }
        }

        return new Lease(cmd, owned: false);
    }

    /// <summary>A command to run once; disposing it disposes only commands that are not kept.</summary>
    public readonly struct Lease(SqliteCommand command, bool owned) : IAsyncDisposable
    {
        public SqliteCommand Command => command;

        public Task<int> ExecuteNonQueryAsync() => command.ExecuteNonQueryAsync();

        public Task<object?> ExecuteScalarAsync() => command.ExecuteScalarAsync();

        public Task<SqliteDataReader> ExecuteReaderAsync() => command.ExecuteReaderAsync();

        public Task<SqliteDataReader> ExecuteReaderAsync(CancellationToken ct) => command.ExecuteReaderAsync(ct);

        public Task<object?> ExecuteScalarAsync(CancellationToken ct) => command.ExecuteScalarAsync(ct);

        public ValueTask DisposeAsync() => owned ? command.DisposeAsync() : ValueTask.CompletedTask;
    }
}
