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

    protected override async Task<string> RawContentsAsync()
    {
        // Every document of every container the deployment defines, as the emulator returns it.
        var text = new System.Text.StringBuilder();
        foreach (var container in CosmosContainerSet.Load().Containers)
        {
            using var it = emulator.Admin.GetContainer(_options.Database, container.Name).GetItemQueryStreamIterator("SELECT * FROM c");
            while (it.HasMoreResults)
            {
                using var r = await it.ReadNextAsync();
                r.EnsureSuccessStatusCode();
                using var reader = new StreamReader(r.Content);
                text.Append(await reader.ReadToEndAsync()).Append('\n');
            }
        }

        return text.ToString();
    }
}
