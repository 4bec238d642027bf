using Nudge.Core.Storage;
using Nudge.Sqlite.Store;

namespace Nudge.Host.Hosting;

/// <summary>
/// Opens the profile store that Nudge:Store:Kind names: "sqlite" (the default, a file in the data folder) or "cosmos"
/// (Azure Cosmos DB, for the scaled-out Function App). Both modes, embedded and Functions, go through here.
/// </summary>
public static class StoreSetup
{
    public const string Sqlite = "sqlite";
    public const string Cosmos = "cosmos";

    /// <summary>True when the store keeps its data in Nudge:DataDir (the folder is created and locked for it).</summary>
    public static bool UsesDataDir(StoreOptions o) => string.Equals(o.Kind, Sqlite, StringComparison.OrdinalIgnoreCase);

    /// <summary>Checks the settings of the chosen store without opening anything, so start-up fails before any side effect.</summary>
    /// <exception cref="InvalidOperationException">An unknown kind, or a missing setting (the message names it).</exception>
    public static void Validate(NudgeOptions o)
    {
        if (UsesDataDir(o.Store))
        {
            return;
        }

        if (!string.Equals(o.Store.Kind, Cosmos, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"Nudge:Store:Kind: '{o.Store.Kind}' is not a store; use '{Sqlite}' or '{Cosmos}'");
        }

        var missing = new List<string>();
        if (string.IsNullOrEmpty(o.Cosmos.Endpoint))
        {
            missing.Add("Nudge:Cosmos:Endpoint (app setting Nudge__Cosmos__Endpoint)");
        }

        if (string.IsNullOrEmpty(o.Cosmos.Database))
        {
            missing.Add("Nudge:Cosmos:Database (app setting Nudge__Cosmos__Database)");
        }

        if (missing.Count > 0)
        {
            throw new InvalidOperationException("Nudge:Store:Kind is cosmos, so these settings are required: " + string.Join(", ", missing));
        }
    }

    /// <summary>Opens the store. The caller disposes it (when it is <see cref="IAsyncDisposable"/>) at shutdown.</summary>
    /// <param name="o">The Nudge settings (already checked by <see cref="Validate"/>).</param>
    /// <param name="dataDir">The full path of the data folder, for the SQLite file.</param>
    /// <exception cref="InvalidOperationException">The settings are invalid, or the Cosmos store is not wired in yet.</exception>
    public static async Task<IStore> OpenAsync(NudgeOptions o, string dataDir)
    {
        Validate(o);
        return UsesDataDir(o.Store)
            ? await SqliteStore.OpenAsync(Path.Combine(dataDir, "nudge.db"))
            : await OpenCosmosAsync(o.Cosmos);
    }

    /// <summary>
    /// The Cosmos DB store (functions/Nudge.Cosmos, <c>CosmosStore</c>) plugs in here, and only here: this project does not
    /// reference it yet, so choosing it fails start-up with a clear message instead of falling back to SQLite.
    /// </summary>
    private static Task<IStore> OpenCosmosAsync(CosmosOptions o) =>
        throw new InvalidOperationException(
            $"Cosmos store not wired: Nudge:Store:Kind is '{Cosmos}' (endpoint {o.Endpoint}, database {o.Database}), but this build of Nudge.Host "
            + "does not include the Cosmos store yet (StoreSetup.OpenCosmosAsync). Use Nudge:Store:Kind=sqlite until it is wired.");
}
