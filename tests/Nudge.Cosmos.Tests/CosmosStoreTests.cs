using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Azure.Cosmos;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Cosmos.Tests;

/// <summary>What is particular to the Cosmos DB store: its documents, its ids, and how it opens.</summary>
[Collection(CosmosCollection.Name)]
public sealed class CosmosStoreTests(CosmosEmulator emulator) : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly CosmosStoreOptions _options = emulator.NewDatabase();
    private CosmosStore _store = null!;

    public async Task InitializeAsync() => _store = await CosmosStore.OpenAsync(_options);

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await emulator.DeleteDatabaseAsync(_options.Database);
    }

    [Fact]
    public async Task Profile_IsStoredInItsPersonsPartition_InTheJsonShapeEveryStoreUses()
    {
        var p = new Profile { Key = "k1", Id = "u1", Email = "ann@example.com", CreatedAt = T0, UpdatedAt = T0 };
        p.Attributes["plan"] = new AttributeValue { Value = "pro", SetAtMs = 1 };
        await using (var s = await _store.OpenSessionAsync())
        {
            await s.PutProfileAsync(p);
            await s.CommitAsync();
        }

        var raw = await ReadRawAsync("people", "profile", "k1");
        Assert.Equal(("profile", "k1", "profile", 1), ((string?)raw["id"], (string?)raw["pk"], (string?)raw["type"], (int?)raw["version"]));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(JsonSerializer.Serialize(p, StoreJson.Options)), raw["doc"]), raw["doc"]?.ToJsonString());

        var claim = await ReadRawAsync("identifiers", "email:ann@example.com", "email:ann@example.com");
        Assert.Equal("k1", (string?)claim["profileKey"]);
    }

    [Theory]
    [InlineData("plain-token_0123456789abcdef")]
    [InlineData("with/slash?and#hash\\back")]
    [InlineData("ends with a dot.")]
    [InlineData("ünïcödé ✓ 🛒 ~tilde~")]
    [InlineData("..")]
    public async Task IdsCosmosWouldRefuse_AreEscaped_AndRoundTrip(string value)
    {
        var p = new Profile { Key = "k-" + value, Id = value, Email = value + "@example.com", AnonymousIds = [value], CreatedAt = T0, UpdatedAt = T0 };
        var m = new Message
        {
            Id = value,
            ProfileKey = p.Key,
            InstanceId = value,
            JourneyId = "j",
            StepId = "s",
            Channel = Channel.Push,
            Status = MessageStatus.Drafted,
            Ready = true,
            CreatedAt = T0,
        };
        await using (var s = await _store.OpenSessionAsync())
        {
            Assert.True(await s.TryMarkProcessedAsync(value, T0));
            await s.PutProfileAsync(p);
            await s.PutDeviceAsync(new Device { Token = value, ProfileKey = p.Key, Platform = Platforms.Android, DeviceId = value, CreatedAt = T0, UpdatedAt = T0 });
            await s.AppendEventAsync(new StoredEvent(value, p.Key, "viewed", "event", T0, T0, "track", []));
            Assert.True(await s.TryAddMessageAsync(m));
            await s.MarkTokenBouncedAsync(value, T0, "Unregistered");
            await s.CommitAsync();
        }

        Assert.Equal(p.Key, await _store.ResolveAsync(new Identifier(IdentifierKind.Id, value)));
        Assert.Equal(p.Key, await _store.ResolveAsync(Identifier.Email(value + "@example.com")));
        Assert.Equal(p.Key, await _store.ResolveAsync(new Identifier(IdentifierKind.AnonymousId, value)));
        Assert.Equal(p.Key, await _store.ResolveAsync(new Identifier(IdentifierKind.CioId, p.Key)));
        Assert.Equal(p.Key, (await _store.GetDeviceAsync(value))?.ProfileKey);
        Assert.Equal(T0, await _store.GetTokenBounceAsync(value));
        Assert.Equal(value, Assert.Single(await _store.GetRecentEventsAsync(p.Key, 10)).EventId);
        Assert.Equal(value, (await _store.GetMessageAsync(value))?.Id);
        Assert.Equal(value, Assert.Single(await _store.ReadyMessagesAsync(T0, 10)).Id);
        await using var again = await _store.OpenSessionAsync();
        Assert.False(await again.TryMarkProcessedAsync(value, T0));
        Assert.Equal(value, Assert.Single(await again.FindDevicesByPhysicalIdAsync(value)).Token);
    }

    [Fact]
    public void LongIds_AreHashed_AndStayDistinct()
    {
        var a = CosmosIds.Escape(new string('a', 2000));
        var b = CosmosIds.Escape(new string('a', 1999) + "b");
        Assert.NotEqual(a, b);
        Assert.True(a.Length < 100);
        Assert.Equal("a~2F~3F~23~5C~7E~2E", CosmosIds.Escape("a/?#\\~."));
        Assert.Equal("a.b", CosmosIds.Escape("a.b"));
    }

    [Fact]
    public async Task Open_WithoutCreateContainers_FailsNamingTheMissingContainerAndTheSetting()
    {
        var options = emulator.Options("missing-" + Guid.NewGuid().ToString("N"));
        options.CreateContainers = false;

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => CosmosStore.OpenAsync(options));

        Assert.Contains("'people'", e.Message, StringComparison.Ordinal);
        Assert.Contains("Nudge:Cosmos:CreateContainers", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_CreatesEveryContainerOfTheDefinition_AndAdoptsThemWhenTheyExist()
    {
        var database = emulator.Admin.GetDatabase(_options.Database);
        foreach (var c in CosmosContainerSet.Load().Containers)
        {
            var props = (await database.GetContainer(c.Name).ReadContainerAsync()).Resource;
            Assert.Equal("/pk", props.PartitionKeyPath);
        }

        // A second store over the same database (containers exist) opens without changing anything.
        await using (var s = await _store.OpenSessionAsync())
        {
            await s.PutProfileAsync(new Profile { Key = "k1", Id = "u1", CreatedAt = T0, UpdatedAt = T0 });
            await s.CommitAsync();
        }

        var existing = emulator.Options(_options.Database);
        existing.CreateContainers = false;
        await using var second = await CosmosStore.OpenAsync(existing);
        Assert.Equal("k1", await second.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
    }

    [Fact]
    public async Task Open_WithBadOptions_ListsEveryProblemBySettingName()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => CosmosStore.OpenAsync(new CosmosStoreOptions { Database = "" }));

        Assert.Contains("Nudge:Cosmos:Endpoint", e.Message, StringComparison.Ordinal);
        Assert.Contains("Nudge:Cosmos:Database", e.Message, StringComparison.Ordinal);
    }

    private async Task<JsonNode> ReadRawAsync(string container, string id, string pk)
    {
        using var r = await emulator.Admin.GetContainer(_options.Database, container).ReadItemStreamAsync(id, new PartitionKey(pk));
        r.EnsureSuccessStatusCode();
        return (await JsonNode.ParseAsync(r.Content))!;
    }
}
