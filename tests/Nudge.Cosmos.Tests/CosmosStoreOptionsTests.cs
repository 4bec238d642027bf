using System.Text.Json;
using Microsoft.Azure.Cosmos;
using Nudge.TestSupport;

namespace Nudge.Cosmos.Tests;

/// <summary>Settings validation and the container definition shared with the Bicep deployment (no emulator needed).</summary>
public sealed class CosmosStoreOptionsTests
{
    private const string SecretKey = "c2VjcmV0LWtleS10aGF0LW11c3QtbmV2ZXItYmUtc2hvd24=";

    [Fact]
    public void Validate_GoodSettings_HaveNoProblems()
    {
        Assert.Empty(new CosmosStoreOptions { Endpoint = "https://nudge.documents.azure.com:443/" }.Validate());
        Assert.Empty(new CosmosStoreOptions { Endpoint = "https://127.0.0.1:8081/", Key = SecretKey, AcceptAnyServerCertificate = true }.Validate());
    }

    [Fact]
    public void Validate_EveryProblem_NamesItsSetting()
    {
        var errors = new CosmosStoreOptions
        {
            Endpoint = "not a url",
            Key = "not base64 !",
            Database = "a/b",
            RequestTimeout = TimeSpan.Zero,
            HalfWriteGrace = TimeSpan.FromSeconds(1),
        }.Validate();

        Assert.Equal(5, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("Nudge:Cosmos:Endpoint", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Nudge:Cosmos:Key", StringComparison.Ordinal) && !e.Contains("not base64 !", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Nudge:Cosmos:Database", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Nudge:Cosmos:RequestTimeout", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Nudge:Cosmos:HalfWriteGrace", StringComparison.Ordinal));
        Assert.Contains("Nudge:Cosmos:Endpoint is required", Assert.Single(new CosmosStoreOptions().Validate()), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AConnectionStringPastedAsEndpoint_IsNotQuoted()
    {
        var error = Assert.Single(new CosmosStoreOptions { Endpoint = "AccountEndpoint=https://a.documents.azure.com:443/;AccountKey=c2VjcmV0LWtleQ==;" }.Validate());

        Assert.StartsWith("Nudge:Cosmos:Endpoint must be an absolute https URL", error, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0LWtleQ==", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AcceptingAnyCertificate_OnlyForALoopbackEndpoint()
    {
        var errors = new CosmosStoreOptions { Endpoint = "https://nudge.documents.azure.com/", AcceptAnyServerCertificate = true }.Validate();

        Assert.Contains("Nudge:Cosmos:AcceptAnyServerCertificate", Assert.Single(errors), StringComparison.Ordinal);
        Assert.Empty(new CosmosStoreOptions { Endpoint = "https://localhost:8081/", AcceptAnyServerCertificate = true }.Validate());
        Assert.Empty(new CosmosStoreOptions { Endpoint = "https://[::1]:8081/", AcceptAnyServerCertificate = true }.Validate());
    }

    [Fact]
    public void ToString_NeverShowsTheKey()
    {
        var text = new CosmosStoreOptions { Endpoint = "https://127.0.0.1:8081/", Key = SecretKey }.ToString();

        Assert.DoesNotContain(SecretKey, text, StringComparison.Ordinal);
        Assert.Contains("key (hidden)", text, StringComparison.Ordinal);
        Assert.Contains("managed identity", new CosmosStoreOptions { Endpoint = "https://x/" }.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ContainerSet_IsTheRepositorysFile_EmbeddedAsIs()
    {
        var file = Path.Combine(TestEnvironment.RepositoryRoot(), "infra-bicep", "cosmos-containers.json");
        using var onDisk = JsonDocument.Parse(File.ReadAllText(file));
        var fromDisk = CosmosContainerSet.Parse(onDisk.RootElement);
        var embedded = CosmosContainerSet.Load();

        Assert.Equal("nudge", embedded.Database);
        Assert.Equal(fromDisk.Containers.Select(c => (c.Name, c.PartitionKey, c.DefaultTtlSeconds)), embedded.Containers.Select(c => (c.Name, c.PartitionKey, c.DefaultTtlSeconds)));
        Assert.Equal(CosmosContainerSet.Required.Order(), embedded.Containers.Select(c => c.Name).Order());
        Assert.All(embedded.Containers, c => Assert.False(string.IsNullOrWhiteSpace(c.Purpose)));

        // The Bicep reads exactly these keys: database, containers[].{name, partitionKey, purpose, indexingPolicy, defaultTtlSeconds?}.
        var allowed = new HashSet<string>(["name", "partitionKey", "purpose", "indexingPolicy", "defaultTtlSeconds"], StringComparer.Ordinal);
        Assert.All(onDisk.RootElement.GetProperty("containers").EnumerateArray(), c => Assert.All(c.EnumerateObject(), p => Assert.Contains(p.Name, allowed)));
    }

    [Fact]
    public void ContainerSet_MapsIndexingPoliciesAndTtl()
    {
        var set = CosmosContainerSet.Load();
        var people = set.Containers.Single(c => c.Name == "people").ToProperties();
        var lookups = set.Containers.Single(c => c.Name == "lookups").ToProperties();
        var processed = set.Containers.Single(c => c.Name == "processed").ToProperties();

        Assert.Equal("/pk", people.PartitionKeyPath);
        Assert.Equal(6, people.IndexingPolicy.CompositeIndexes.Count);
        Assert.Equal(CompositePathSortOrder.Descending, people.IndexingPolicy.CompositeIndexes[0][0].Order);
        Assert.Contains(people.IndexingPolicy.ExcludedPaths, p => p.Path == "/doc/*");
        Assert.Equal(IndexingMode.None, lookups.IndexingPolicy.IndexingMode);
        Assert.False(lookups.IndexingPolicy.Automatic);
        Assert.Equal(2_592_000, processed.DefaultTimeToLive);
    }

    [Fact]
    public void ContainerSet_WithoutAContainerTheStoreNeeds_IsRefused()
    {
        using var doc = JsonDocument.Parse("""{"database":"nudge","containers":[{"name":"people","partitionKey":"/pk","purpose":"p","indexingPolicy":{}}]}""");

        var e = Assert.Throws<InvalidOperationException>(() => CosmosContainerSet.Parse(doc.RootElement));

        Assert.Contains("'identifiers'", e.Message, StringComparison.Ordinal);
    }
}
