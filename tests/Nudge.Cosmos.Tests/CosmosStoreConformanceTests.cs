using Nudge.Core.Storage;
using Nudge.Store.Conformance;

namespace Nudge.Cosmos.Tests;

/// <summary>The store conformance suite against <see cref="CosmosStore"/> on the emulator, a database of its own per test.</summary>
[Collection(CosmosCollection.Name)]
public sealed class CosmosStoreConformanceTests(CosmosEmulator emulator) : StoreConformance
{
    private readonly CosmosStoreOptions _options = emulator.NewDatabase();

    protected override bool SessionsAreTransactions => CosmosStore.SessionsAreTransactions;

    protected override async Task<IStore> CreateStoreAsync() => await CosmosStore.OpenAsync(_options);

    protected override async Task<IStore> ReopenStoreAsync(IStore store)
    {
        await ((CosmosStore)store).DisposeAsync();
        return await CosmosStore.OpenAsync(_options);
    }

    protected override Task DeleteStorageAsync() => emulator.DeleteDatabaseAsync(_options.Database);
}
