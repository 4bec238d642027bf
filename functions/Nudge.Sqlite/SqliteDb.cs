using Microsoft.Data.Sqlite;

namespace Nudge.Sqlite;

/// <summary>Opens SQLite connections with the settings every Nudge database uses: WAL, full sync, a busy timeout.</summary>
public static class SqliteDb
{
    /// <summary>How long a writer waits for another writer before failing: 10 s.</summary>
    public const int BusyTimeoutMs = 10_000;

    /// <summary>
    /// Page cache of each long-lived connection: 64 MiB (SQLite's default is 2 MiB). With a million waiting journey
    /// instances the indexes the timer and run-step stages walk no longer fit the default, and every miss is a read call.
    /// </summary>
    public const int CacheKiB = 65_536;

    /// <summary>Read and write for the owner only (0600): what every file Nudge keeps in its data folder gets.</summary>
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Options that open a file, creating it readable and writable by its owner only (0600) when it is new.</summary>
    public static FileStreamOptions OwnerOnlyFile(FileMode mode, FileAccess access, FileShare share = FileShare.Read)
    {
        var o = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows())
        {
            o.UnixCreateMode = OwnerOnly;
        }

        return o;
    }

    /// <summary>
    /// Makes the database file at <paramref name="path"/> readable by its owner only before SQLite opens it: a new file
    /// is created 0600 (SQLite would create it 0644 under the usual umask), an existing one and its -wal and -shm files
    /// lose any group and other bits. SQLite gives the -wal and -shm files it creates the database file's mode.
    /// </summary>
    public static void MakePrivate(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        try
        {
            using (new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = OwnerOnly }))
            {
            }
        }
        catch (IOException) when (File.Exists(path))
        {
            // It exists already: tightened below, with its companions.
        }

        foreach (var f in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            if (File.Exists(f) && (File.GetUnixFileMode(f) & ~(OwnerOnly | UnixFileMode.UserExecute)) != 0)
            {
                File.SetUnixFileMode(f, OwnerOnly);
            }
        }
    }

    public static string ConnectionString(string path) => new SqliteConnectionStringBuilder
    {
        DataSource = path,
        Mode = SqliteOpenMode.ReadWriteCreate,
        Cache = SqliteCacheMode.Private,
        Pooling = true,
        DefaultTimeout = BusyTimeoutMs / 1000,
    }.ToString();

    /// <param name="connectionString">From <see cref="ConnectionString"/>.</param>
    /// <param name="durable">
    /// true (always, in the server): synchronous=FULL, a commit is on disk before it returns, so an acknowledged write
    /// survives a crash. false: synchronous=NORMAL, for simulations and benchmarks that recreate their data anyway.
    /// </param>
    /// <param name="ct">Cancels opening.</param>
    public static async Task<SqliteConnection> OpenAsync(string connectionString, bool durable, CancellationToken ct = default)
    {
        var c = new SqliteConnection(connectionString);
        await c.OpenAsync(ct);
        await ExecAsync(c, $"PRAGMA journal_mode=WAL; PRAGMA synchronous={(durable ? "FULL" : "NORMAL")}; PRAGMA busy_timeout={BusyTimeoutMs}; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{CacheKiB}; PRAGMA temp_store=MEMORY;", ct);
        return c;
    }

    public static async Task ExecAsync(SqliteConnection c, string sql, CancellationToken ct = default)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public static SqliteCommand Command(SqliteConnection c, string sql, SqliteTransaction? tx, params (string Name, object? Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in args)
        {
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return cmd;
    }
}
