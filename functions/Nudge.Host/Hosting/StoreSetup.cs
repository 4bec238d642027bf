using System.Text.RegularExpressions;
using Nudge.Core.Storage;
using Nudge.Cosmos;
using Nudge.Sqlite.Store;

namespace Nudge.Host.Hosting;

/// <summary>
/// Opens the profile store that Nudge:Store:Kind names: "sqlite" (the default, a file in the data folder) or "cosmos"
/// (Azure Cosmos DB, for the scaled-out Function App). Both modes, embedded and Functions, go through here.
/// </summary>
public static partial class StoreSetup
{
    public const string Sqlite = "sqlite";
    public const string Cosmos = "cosmos";

    /// <summary>True when the store keeps its data in Nudge:DataDir (the folder is created and locked for it).</summary>
    public static bool UsesDataDir(StoreOptions o) => string.Equals(o.Kind, Sqlite, StringComparison.OrdinalIgnoreCase);

    /// <summary>Checks the settings of the chosen store without opening anything, so start-up fails before any side effect.</summary>
    /// <exception cref="NudgeConfigurationException">An unknown kind, or missing or invalid settings (each problem names its setting).</exception>
    public static void Validate(NudgeOptions o) => NudgeConfigurationException.ThrowIfAny(Problems(o));

    /// <summary>Every problem with the chosen store's settings, each naming its setting and app setting; empty when usable.</summary>
    public static IReadOnlyList<string> Problems(NudgeOptions o)
    {
        if (UsesDataDir(o.Store))
        {
            return [];
        }

        if (!string.Equals(o.Store.Kind, Cosmos, StringComparison.OrdinalIgnoreCase))
        {
            return [$"Nudge:Store:Kind: '{o.Store.Kind}' is not a store; use '{Sqlite}' or '{Cosmos}'"];
        }

        // The store lists every problem by its configuration key; the app setting a Function App needs is named beside it.
        return o.Cosmos.Validate()
            .Select(p => AppSettingName().Replace(p, m => $"{m.Value} (app setting {m.Value.Replace(":", "__")})", 1) + " (Nudge:Store:Kind is cosmos)").ToList();
    }

    [GeneratedRegex(@"Nudge:Cosmos:\w+")]
    private static partial Regex AppSettingName();

    /// <summary>Opens the store. The caller disposes it (when it is <see cref="IAsyncDisposable"/>) at shutdown.</summary>
    /// <param name="o">The Nudge settings (already checked by <see cref="Validate"/>).</param>
    /// <param name="dataDir">The full path of the data folder, for the SQLite file.</param>
    /// <param name="time">The clock the Cosmos store ages half-written index entries by.</param>
    /// <exception cref="NudgeConfigurationException">The settings are invalid.</exception>
    /// <exception cref="InvalidOperationException">Cosmos DB refused the store (e.g. a container is missing).</exception>
    public static async Task<IStore> OpenAsync(NudgeOptions o, string dataDir, TimeProvider time)
    {
        Validate(o);
        return UsesDataDir(o.Store)
            ? await SqliteStore.OpenAsync(Path.Combine(dataDir, "nudge.db"))
            : await CosmosStore.OpenAsync(o.Cosmos, time);
    }
}
