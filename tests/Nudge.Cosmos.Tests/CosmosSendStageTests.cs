using Nudge.Core.Storage;
using Nudge.Store.Conformance;

namespace Nudge.Cosmos.Tests;

/// <summary>The send stage against <see cref="CosmosStore"/> on the emulator, a database of its own per test.</summary>
[Collection(CosmosCollection.Name)]
public sealed class CosmosSendStageTests(CosmosEmulator emulator) : SendStageConformance
{
    private readonly CosmosStoreOptions _options = emulator.NewDatabase();

    protected override async Task<IStore> CreateStoreAsync() => await CosmosStore.OpenAsync(_options);

    protected override Task DeleteStorageAsync() => emulator.DeleteDatabaseAsync(_options.Database);
}
