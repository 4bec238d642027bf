using System.Collections.ObjectModel;
using System.Text.Json;
using Microsoft.Azure.Cosmos;

namespace Nudge.Cosmos;

/// <summary>
/// The database and containers Nudge uses, read from infra-bicep/cosmos-containers.json (embedded in this assembly),
/// the one definition that the Bicep deployment reads too. Every container is partitioned on <c>/pk</c>.
/// </summary>
/// <param name="Database">The database name the deployment creates.</param>
/// <param name="Containers">The containers, in file order.</param>
public sealed record CosmosContainerSet(string Database, IReadOnlyList<CosmosContainerDefinition> Containers)
{
    /// <summary>Name of the embedded resource holding infra-bicep/cosmos-containers.json.</summary>
    public const string ResourceName = "Nudge.Cosmos.cosmos-containers.json";

    /// <summary>The containers the store reads and writes; the file must define each of them.</summary>
    public static readonly IReadOnlyList<string> Required = ["people", "identifiers", "tokens", "timers", "lookups", "processed", "deliveryEvents"];

    /// <summary>The embedded definition.</summary>
    /// <exception cref="InvalidOperationException">The file is missing from the assembly or does not define what the store needs.</exception>
    public static CosmosContainerSet Load()
    {
        using var stream = typeof(CosmosContainerSet).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"{ResourceName} is not embedded in {typeof(CosmosContainerSet).Assembly.GetName().Name}");
        using var doc = JsonDocument.Parse(stream);
        return Parse(doc.RootElement);
    }

    /// <summary>Reads a definition in the shape of infra-bicep/cosmos-containers.json.</summary>
    /// <exception cref="InvalidOperationException">A field is missing, or a container the store needs is absent or not partitioned on /pk.</exception>
    public static CosmosContainerSet Parse(JsonElement root)
    {
        var containers = new List<CosmosContainerDefinition>();
        foreach (var c in Property(root, "containers", "the file").EnumerateArray())
        {
            var name = Property(c, "name", "a container").GetString()!;
            int? ttl = c.TryGetProperty("defaultTtlSeconds", out var t) ? t.GetInt32() : null;
            containers.Add(new CosmosContainerDefinition(name, Property(c, "partitionKey", name).GetString()!,
                Property(c, "purpose", name).GetString()!, Property(c, "indexingPolicy", name).Clone(), ttl));
        }

        var set = new CosmosContainerSet(Property(root, "database", "the file").GetString()!, containers);
        foreach (var name in Required)
        {
            var c = set.Containers.FirstOrDefault(x => x.Name == name)
                ?? throw new InvalidOperationException($"{ResourceName} defines no container '{name}'");
            if (c.PartitionKey != "/pk")
            {
                throw new InvalidOperationException($"{ResourceName}: container '{name}' must be partitioned on /pk, not {c.PartitionKey}");
            }
        }

        return set;
    }

    private static JsonElement Property(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) ? v : throw new InvalidOperationException($"{ResourceName}: {where} has no '{name}'");
}

/// <summary>One container of <see cref="CosmosContainerSet"/>.</summary>
/// <param name="Name">Container name.</param>
/// <param name="PartitionKey">Partition key path (always /pk).</param>
/// <param name="Purpose">What it holds and how it is keyed.</param>
/// <param name="IndexingPolicy">The indexing policy, in Cosmos DB's own JSON shape.</param>
/// <param name="DefaultTtlSeconds">Default time to live of its items, or null for none.</param>
public sealed record CosmosContainerDefinition(string Name, string PartitionKey, string Purpose, JsonElement IndexingPolicy, int? DefaultTtlSeconds)
{
    /// <summary>The container's properties for the SDK: partition key, indexing policy and TTL as the file says.</summary>
    public ContainerProperties ToProperties()
    {
        var p = IndexingPolicy;
        var policy = new Microsoft.Azure.Cosmos.IndexingPolicy
        {
            IndexingMode = p.TryGetProperty("indexingMode", out var mode) && mode.GetString() == "none" ? IndexingMode.None : IndexingMode.Consistent,
            Automatic = !p.TryGetProperty("automatic", out var automatic) || automatic.GetBoolean(),
        };
        foreach (var path in Paths(p, "includedPaths"))
        {
            policy.IncludedPaths.Add(new IncludedPath { Path = path });
        }

        foreach (var path in Paths(p, "excludedPaths"))
        {
            policy.ExcludedPaths.Add(new ExcludedPath { Path = path });
        }

        if (p.TryGetProperty("compositeIndexes", out var composites))
        {
            foreach (var composite in composites.EnumerateArray())
            {
                policy.CompositeIndexes.Add(new Collection<CompositePath>([.. composite.EnumerateArray().Select(c => new CompositePath
                {
                    Path = c.GetProperty("path").GetString(),
                    Order = c.TryGetProperty("order", out var o) && o.GetString() == "descending" ? CompositePathSortOrder.Descending : CompositePathSortOrder.Ascending,
                })]));
            }
        }

        return new ContainerProperties(Name, PartitionKey) { IndexingPolicy = policy, DefaultTimeToLive = DefaultTtlSeconds };
    }

    private static IEnumerable<string> Paths(JsonElement policy, string name) =>
        policy.TryGetProperty(name, out var paths) ? paths.EnumerateArray().Select(x => x.GetProperty("path").GetString()!) : [];
}
