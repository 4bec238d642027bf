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
}
