using System.Text.Json;
using Microsoft.Data.Sqlite;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Storage;
using Nudge.Sqlite.Store;
using Nudge.Store.Conformance;

namespace Nudge.Sqlite.Tests;

/// <summary>The store conformance suite against <see cref="SqliteStore"/> on a real file.</summary>
public sealed class SqliteStoreConformanceTests : StoreConformance
{
    private readonly TempFolder _folder = new();

    /// <summary>SqliteStore: "Sessions are serialised (one writer at a time) and atomic" (one SQLite transaction each).</summary>
    protected override bool SessionsAreTransactions => true;

    private string DbPath => _folder.File("store.db");

    protected override async Task<IStore> CreateStoreAsync() => await SqliteStore.OpenAsync(DbPath);

    protected override async Task<IStore> ReopenStoreAsync(IStore store)
    {
        await ((SqliteStore)store).DisposeAsync();
        return await SqliteStore.OpenAsync(DbPath);
    }

    protected override Task DeleteStorageAsync()
    {
        _folder.Delete();
        return Task.CompletedTask;
    }

    protected override async Task<string> RawContentsAsync()
    {
        // Every column of every table the file has (found in sqlite_master, not listed here), blobs read as UTF-8.
        var text = new System.Text.StringBuilder();
        await using var c = new SqliteConnection(SqliteDb.ConnectionString(DbPath));
        await c.OpenAsync();
        var tables = new List<string>();
        await using (var cmd = SqliteDb.Command(c, "SELECT name FROM sqlite_master WHERE type = 'table'", null))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                tables.Add(r.GetString(0));
            }
        }

        Assert.Contains("delivery_events", tables);
        foreach (var table in tables)
        {
            await using var cmd = SqliteDb.Command(c, $"SELECT * FROM \"{table}\"", null);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                for (var i = 0; i < r.FieldCount; i++)
                {
                    text.Append(r.IsDBNull(i) ? "" : r.GetValue(i) is byte[] b ? System.Text.Encoding.UTF8.GetString(b) : Convert.ToString(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)).Append('\u001f');
                }
            }
        }

        SqliteConnection.ClearPool(c);
        return text.ToString();
    }

    [Fact]
    public async Task Open_CreatesTheFileAndReportsItsPath()
    {
        Assert.True(File.Exists(DbPath));
        Assert.Equal(DbPath, ((SqliteStore)Store).Path);

        // A second store on the same file sees the first one's commits (one file is the whole state).
        await PutAsync(NewProfile("k1", "u1"));
        await using var second = await SqliteStore.OpenAsync(DbPath);
        Assert.Equal("k1", await second.ResolveAsync(Id("u1")));
    }

    [Fact]
    public async Task DisposeAsync_Twice_IsHarmless()
    {
        var other = await SqliteStore.OpenAsync(_folder.File("other.db"));
        await other.DisposeAsync();

        var e = await Record.ExceptionAsync(async () => await other.DisposeAsync());

        Assert.Null(e);
    }

    [Fact]
    public async Task Open_AFileFromBeforeTheMessageLog_GetsItsColumnsFilledFromTheDocuments()
    {
        // The messages table as files written before the message log have it: no journey, step, reason or platforms.
        var path = _folder.File("old.db");
        var push = NewMessage("m-push", T0);
        push.Platforms = ["ios", "android"];
        push.Status = MessageStatus.Bounced;
        push.Reason = "invalid_token";
        var email = NewMessage("m-email", T0.AddMinutes(1));
        email.Platforms = [];
        await using (var c = new SqliteConnection(SqliteDb.ConnectionString(path)))
        {
            await c.OpenAsync();
            await SqliteDb.ExecAsync(c, """
                CREATE TABLE messages(
                  id TEXT PRIMARY KEY, profile_key TEXT NOT NULL, instance_id TEXT NOT NULL, channel TEXT NOT NULL,
                  status TEXT NOT NULL, created_at INTEGER NOT NULL, ready INTEGER NOT NULL, doc TEXT NOT NULL);
                """);
            foreach (var m in new[] { push, email })
            {
                await using var cmd = SqliteDb.Command(c, "INSERT INTO messages VALUES($id, $p, $i, $c, $s, $t, 0, $d)", null, ("$id", m.Id), ("$p", m.ProfileKey),
                    ("$i", m.InstanceId), ("$c", "push"), ("$s", m.Status), ("$t", m.CreatedAt.ToUnixTimeMilliseconds()), ("$d", JsonSerializer.Serialize(m, StoreJson.Options)));
                await cmd.ExecuteNonQueryAsync();
            }

            SqliteConnection.ClearPool(c);
        }

        await using var store = await SqliteStore.OpenAsync(path);
        var range = new MessageListQuery(T0.AddDays(-1), T0.AddDays(1), 10);

        Assert.Equal(["m-email", "m-push"], (await store.ListMessagesAsync(range with { JourneyId = "j", StepId = "s" })).Select(m => m.Id));
        Assert.Equal(["m-push"], (await store.ListMessagesAsync(range with { Platform = "android", Reason = "invalid_token" })).Select(m => m.Id));
        Assert.Empty(await store.ListMessagesAsync(range with { JourneyId = "other" }));

        // Opened again: nothing to add, and writes keep the columns up to date.
        await store.DisposeAsync();
        await using var again = await SqliteStore.OpenAsync(path);
        email.Platforms = ["android"];
        await using (var s = await again.OpenSessionAsync())
        {
            await s.PutMessageAsync(email);
            await s.CommitAsync();
        }

        Assert.Equal(["m-email", "m-push"], (await again.ListMessagesAsync(range with { Platform = "android" })).Select(m => m.Id));
    }
}
