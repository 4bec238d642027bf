using Nudge.Cosmos.Tests;

namespace Nudge.Functions.Tests;

/// <summary>
/// <see cref="FunctionsHostFixture"/> with Nudge:Store:Kind=cosmos: the handler opens the Cosmos DB store on an emulator
/// this fixture starts (and stops by its PID), in a database of its own.
/// </summary>
public sealed class CosmosFunctionsHostFixture : FunctionsHostFixture
{
    private readonly CosmosEmulator _emulator = new();

    protected override async Task<string[]> StoreArgsAsync()
    {
        await _emulator.InitializeAsync();
        var o = _emulator.NewDatabase();
        return
        [
            "--Nudge:Store:Kind=cosmos", $"--Nudge:Cosmos:Endpoint={o.Endpoint}", $"--Nudge:Cosmos:Key={o.Key}",
            $"--Nudge:Cosmos:Database={o.Database}", "--Nudge:Cosmos:CreateContainers=true", "--Nudge:Cosmos:AcceptAnyServerCertificate=true",
        ];
    }

    protected override Task DisposeStoreAsync() => _emulator.DisposeAsync();
}
