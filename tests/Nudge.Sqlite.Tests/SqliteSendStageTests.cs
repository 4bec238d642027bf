using Nudge.Core.Storage;
using Nudge.Sqlite.Store;
using Nudge.Store.Conformance;

namespace Nudge.Sqlite.Tests;

/// <summary>The send stage against <see cref="SqliteStore"/> on a real file.</summary>
public sealed class SqliteSendStageTests : SendStageConformance
{
    private readonly TempFolder _folder = new();

    protected override async Task<IStore> CreateStoreAsync() => await SqliteStore.OpenAsync(_folder.File("send.db"));

    protected override Task DeleteStorageAsync()
    {
        _folder.Delete();
        return Task.CompletedTask;
    }
}
