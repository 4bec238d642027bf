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
        cmd.Parameters.Clear();
        foreach (var (name, value) in args)
        {
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
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
