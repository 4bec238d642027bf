using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Store.Conformance;

/// <summary>
/// What every <see cref="IStore"/> must do, whatever holds the data. Each test gets a fresh, empty store. Every store
/// runs the whole suite; where the contract lets stores differ (a session is a transaction, or applies its writes as it
/// goes), the tests branch on what the store declares in <see cref="SessionsAreTransactions"/>, never on its type.
/// </summary>
public abstract partial class StoreConformance : IAsyncLifetime
{
    protected static readonly DateTimeOffset T0 = new(2024, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private IStore? _store;

    protected IStore Store => _store ?? throw new InvalidOperationException("the store is not open");

    /// <summary>
    /// What the store under test declares about its sessions: true when a session is a transaction (nothing is visible
    /// before commit, and a session disposed without commit leaves no trace); false when it applies each write as it is
    /// made and holds back only its idempotency keys until commit (so work cut off before commit is done again).
    /// </summary>
    protected abstract bool SessionsAreTransactions { get; }

    /// <summary>Opens a new, empty store.</summary>
    protected abstract Task<IStore> CreateStoreAsync();

    /// <summary>Closes <paramref name="store"/> and opens a new store over the same data.</summary>
    protected abstract Task<IStore> ReopenStoreAsync(IStore store);

    /// <summary>Deletes what the store kept (files, databases); called after the store is closed.</summary>
    protected virtual Task DeleteStorageAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        try
        {
            _store = await CreateStoreAsync();
        }
        catch
        {
            // xunit does not call DisposeAsync when InitializeAsync fails.
            await DeleteStorageAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_store is IAsyncDisposable d)
        {
            await d.DisposeAsync();
        }

        _store = null;
        await DeleteStorageAsync();
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    protected async Task ReopenAsync() => _store = await ReopenStoreAsync(Store);

    protected async Task CommitAsync(Func<IStoreSession, Task> work)
    {
        await using var s = await Store.OpenSessionAsync();
        await work(s);
        await s.CommitAsync();
    }

    protected Task PutAsync(params Profile[] profiles) => CommitAsync(async s =>
    {
        foreach (var p in profiles)
        {
            await s.PutProfileAsync(p);
        }
    });

    protected async Task<Profile> GetAsync(string key)
    {
        var p = await Store.GetProfileAsync(key);
        Assert.NotNull(p);
        return p;
    }

    protected static Profile NewProfile(string key, string? id = null, string? email = null, params string[] anonymousIds) => new()
    {
        Key = key,
        Id = id,
        Email = email,
        AnonymousIds = [.. anonymousIds],
        CreatedAt = T0,
        UpdatedAt = T0,
    };

    [Fact]
    public async Task GetProfiles_ManyKeys_ReturnsThoseThatExistWithTheirVersions()
    {
        await PutAsync(NewProfile("k1", "u1"), NewProfile("k2", null, "b@example.com"));
        var k2 = (await Store.GetProfileAsync("k2"))!;
        k2.Attributes["plan"] = new AttributeValue { Value = "pro", SetAtMs = 1 };
        await PutAsync(k2);

        var found = await Store.GetProfilesAsync(["k1", "k2", "missing", "k1"]);

        Assert.Equal(["k1", "k2"], found.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("u1", found["k1"].Id);
        Assert.Equal(2, found["k2"].Version);
        Assert.Equal("pro", found["k2"].Attributes["plan"].Value!.GetValue<string>());
        Assert.Empty(await Store.GetProfilesAsync([]));
    }

    [Fact]
    public async Task PutProfile_IdentifiersOfAProfileItMergedFrom_PassToIt_OthersStayRefused()
    {
        await PutAsync(NewProfile("secondary", "u1", "ann@example.com", "anon-1"), NewProfile("other", "u2"));

        // An identity merge stores the primary (listing the secondary in MergedFrom) before deleting the secondary.
        var primary = NewProfile("primary", "u1", "ann@example.com", "anon-1");
        primary.MergedFrom = ["secondary"];
        await PutAsync(primary);

        Assert.Equal("primary", await Store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
        Assert.Equal("primary", await Store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Equal("primary", await Store.ResolveAsync(new Identifier(IdentifierKind.AnonymousId, "anon-1")));

        // Deleting the merged-away profile takes nothing from the primary.
        await CommitAsync(s => s.DeleteProfileAsync("secondary"));
        Assert.Equal("primary", await Store.ResolveAsync(new Identifier(IdentifierKind.Id, "u1")));
        Assert.Equal("primary", await Store.ResolveAsync(new Identifier(IdentifierKind.AnonymousId, "anon-1")));

        // A profile that did not merge "other" still cannot take its id.
        var thief = NewProfile("thief", "u2");
        thief.MergedFrom = ["secondary"];
        await Assert.ThrowsAsync<ConcurrencyException>(() => PutAsync(thief));
        Assert.Equal("other", await Store.ResolveAsync(new Identifier(IdentifierKind.Id, "u2")));
    }

    protected static Device NewDevice(string token, string profileKey, string? deviceId = null) => new()
    {
        Token = token,
        ProfileKey = profileKey,
        Platform = Platforms.Ios,
        DeviceId = deviceId,
        LastUsed = T0,
        Attributes = new JsonObject { ["app_version"] = "1.2.3", ["push_enabled"] = "true" },
        CreatedAt = T0,
        UpdatedAt = T0,
    };

    protected static StoredEvent NewEvent(string id, string? profileKey, DateTimeOffset at, string name = "viewed") =>
        new(id, profileKey, name, "event", at, T0, "track", new JsonObject { ["event"] = id, ["n"] = 1 });

    protected static AttributeValue Attr(JsonNode? value, DateTimeOffset at) => new() { Value = value, SetAtMs = at.ToUnixTimeMilliseconds() };

    protected static Identifier Id(string v) => new(IdentifierKind.Id, v);

    protected static Identifier Anon(string v) => new(IdentifierKind.AnonymousId, v);

    protected static Identifier Cio(string v) => new(IdentifierKind.CioId, v);

    protected static string Doc(Profile p) => JsonSerializer.Serialize(p, StoreJson.Options);

    protected static string Doc(Device d) => JsonSerializer.Serialize(d, StoreJson.Options);

    private static string[] Tokens(IEnumerable<Device> devices) => devices.Select(d => d.Token).Order(StringComparer.Ordinal).ToArray();

    private static string[] EventIds(IEnumerable<StoredEvent> events) => events.Select(e => e.EventId).ToArray();

    // ---- profiles -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task PutProfile_EveryField_RoundTrips()
    {
        var p = NewProfile("k1", "u1", "ann@example.com", "anon-2", "anon-1");
        p.AliasIds = ["old-id"];
        p.AliasEmails = ["old@example.com"];
        p.MergedFrom = ["merged-key-1", "merged-key-2"];
        p.Attributes["plan"] = Attr("pro", T0);
        p.Attributes["age"] = Attr(42, T0.AddSeconds(1));
        p.Attributes["score"] = Attr(3.5, T0.AddSeconds(2));
        p.Attributes["balance"] = Attr(-7, T0);
        p.Attributes["vip"] = Attr(true, T0);
        p.Attributes["churned"] = Attr(false, T0);
        p.Attributes["name"] = Attr("Zoë ✓ \"quoted\"", T0);
        p.Attributes["address"] = Attr(new JsonObject { ["city"] = "Oslo", ["zip"] = "0150", ["geo"] = new JsonArray(59.9, 10.7) }, T0);
        p.Attributes["tags"] = Attr(new JsonArray("a", 2, null, new JsonObject()), T0);
        p.Attributes["coupon"] = Attr(null, T0.AddMinutes(5)); // tombstone
        p.ConsentHistory =
        [
            new ConsentChange(Consent.SmsConsentAttr, true, T0, "segment", "203.0.113.7"),
            new ConsentChange(Consent.UnsubscribedAttr, null, T0.AddMinutes(1), "track", null),
        ];
        p.Suppressed = true;
        p.SuppressedAt = T0.AddHours(1);
        p.CreatedAt = T0.AddDays(-3);
        p.UpdatedAt = T0.AddHours(2);
        await PutAsync(p);

        var stored = await GetAsync("k1");

        Assert.Equal(Doc(p), Doc(stored));
        Assert.Equal(["anon-2", "anon-1"], stored.AnonymousIds);
        Assert.Equal(["old-id"], stored.AliasIds);
        Assert.Equal(["old@example.com"], stored.AliasEmails);
        Assert.Equal(["merged-key-1", "merged-key-2"], stored.MergedFrom);
        Assert.Equal(42, stored.Get("age")!.GetValue<int>());
        Assert.Equal(3.5, stored.Get("score")!.GetValue<double>());
        Assert.True(stored.GetBool("vip"));
        Assert.Equal(JsonValueKind.False, stored.Get("churned")!.GetValueKind());
        Assert.Equal("Zoë ✓ \"quoted\"", stored.GetString("name"));
        Assert.True(JsonNode.DeepEquals(p.Get("address"), stored.Get("address")));
        Assert.True(JsonNode.DeepEquals(p.Get("tags"), stored.Get("tags")));
        Assert.True(stored.Attributes["coupon"].IsRemoved);
        Assert.Equal(T0.AddMinutes(5).ToUnixTimeMilliseconds(), stored.Attributes["coupon"].SetAtMs);
        Assert.Equal(T0.AddSeconds(1).ToUnixTimeMilliseconds(), stored.Attributes["age"].SetAtMs);
        Assert.Equal(2, stored.ConsentHistory.Count);
        Assert.Equal("203.0.113.7", stored.ConsentHistory[0].Ip);
        Assert.True(stored.ConsentHistory[0].Value!.GetValue<bool>());
        Assert.Null(stored.ConsentHistory[1].Value);
        Assert.Equal(T0.AddMinutes(1), stored.ConsentHistory[1].At);
        Assert.True(stored.Suppressed);
        Assert.Equal(T0.AddHours(1), stored.SuppressedAt);
        Assert.Equal(T0.AddDays(-3), stored.CreatedAt);
        Assert.Equal(T0.AddHours(2), stored.UpdatedAt);
    }

    [Fact]
    public async Task GetProfile_Unknown_ReturnsNull()
    {
        Assert.Null(await Store.GetProfileAsync("nobody"));
        await using var s = await Store.OpenSessionAsync();
        Assert.Null(await s.GetProfileAsync("nobody"));
    }

    [Fact]
    public async Task PutProfile_Version_StartsAtZeroBecomesOneThenIncrements()
    {
        var p = NewProfile("k1", "u1");
        Assert.Equal(0, p.Version);

        await PutAsync(p);
        Assert.Equal(1, p.Version);
        Assert.Equal(1, (await GetAsync("k1")).Version);

        var read = await GetAsync("k1");
        read.Attributes["plan"] = Attr("pro", T0);
        await PutAsync(read);
        Assert.Equal(2, read.Version);

        await PutAsync(read);
        Assert.Equal(3, read.Version);
        var stored = await GetAsync("k1");
        Assert.Equal(3, stored.Version);
        Assert.Equal("pro", stored.GetString("plan"));
    }

    [Fact]
    public async Task PutProfile_StaleVersion_ThrowsAndChangesNothing()
    {
        await PutAsync(NewProfile("k1", "u1", "ann@example.com"));
        var winner = await GetAsync("k1");
        var loser = await GetAsync("k1");
        winner.Attributes["plan"] = Attr("pro", T0);
        await PutAsync(winner);

        loser.Email = "bob@example.com";
        loser.AnonymousIds.Add("anon-1");
        loser.Attributes["plan"] = Attr("free", T0.AddHours(1));
        await using (var s = await Store.OpenSessionAsync())
        {
            await Assert.ThrowsAsync<ConcurrencyException>(() => s.PutProfileAsync(loser));
            Assert.Equal(1, loser.Version);

            // The version check comes before any write, so even committing what is left changes nothing.
            await s.CommitAsync();
        }

        var stored = await GetAsync("k1");
        Assert.Equal(2, stored.Version);
        Assert.Equal("ann@example.com", stored.Email);
        Assert.Equal("pro", stored.GetString("plan"));
        Assert.Empty(stored.AnonymousIds);
        Assert.Equal("k1", await Store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Null(await Store.ResolveAsync(Identifier.Email("bob@example.com")));
        Assert.Null(await Store.ResolveAsync(Anon("anon-1")));
    }

    [Fact]
    public async Task PutProfile_InsertVersionZeroTwice_Throws()
    {
        await PutAsync(NewProfile("k1", "u1"));

        var duplicate = NewProfile("k1", "u2", "dup@example.com");
        await using (var s = await Store.OpenSessionAsync())
        {
            await Assert.ThrowsAsync<ConcurrencyException>(() => s.PutProfileAsync(duplicate));
            await s.CommitAsync();
        }

        var stored = await GetAsync("k1");
        Assert.Equal("u1", stored.Id);
        Assert.Equal(1, stored.Version);
        Assert.Null(await Store.ResolveAsync(Id("u2")));
        Assert.Null(await Store.ResolveAsync(Identifier.Email("dup@example.com")));
    }

    [Fact]
    public async Task PutProfile_InsertVersionZeroTwiceInOneSession_Throws()
    {
        await using var s = await Store.OpenSessionAsync();
        await s.PutProfileAsync(NewProfile("k1", "u1"));
        await Assert.ThrowsAsync<ConcurrencyException>(() => s.PutProfileAsync(NewProfile("k1", "u2")));
    }

    // ---- identifier index ---------------------------------------------------------------------------------------

    [Fact]
    public async Task Resolve_OwnIdentifiers_ReturnProfileKey()
    {
        await PutAsync(NewProfile("k1", "u1", "ann@example.com", "anon-1", "anon-2"), NewProfile("k2", "u2"));

        Assert.Equal("k1", await Store.ResolveAsync(Id("u1")));
        Assert.Equal("k1", await Store.ResolveAsync(Identifier.Email("ANN@example.com")));
        Assert.Equal("k1", await Store.ResolveAsync(Anon("anon-1")));
        Assert.Equal("k1", await Store.ResolveAsync(Anon("anon-2")));
        Assert.Equal("k1", await Store.ResolveAsync(Cio("k1")));
        Assert.Equal("k2", await Store.ResolveAsync(Id("u2")));
        Assert.Equal("k2", await Store.ResolveAsync(Cio("k2")));

        await using var s = await Store.OpenSessionAsync();
        Assert.Equal("k1", await s.ResolveAsync(Id("u1")));
        Assert.Equal("k1", await s.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Equal("k1", await s.ResolveAsync(Anon("anon-2")));
        Assert.Equal("k2", await s.ResolveAsync(Cio("k2")));
    }

    [Fact]
    public async Task Resolve_UnknownOrOtherKind_ReturnsNull()
    {
        await PutAsync(NewProfile("k1", "u1", "ann@example.com", "anon-1"));

        Assert.Null(await Store.ResolveAsync(Id("u9")));
        Assert.Null(await Store.ResolveAsync(Cio("k9")));
        Assert.Null(await Store.ResolveAsync(Anon("u1")));
        Assert.Null(await Store.ResolveAsync(Id("anon-1")));
        Assert.Null(await Store.ResolveAsync(Id("ann@example.com")));
        Assert.Null(await Store.ResolveAsync(Cio("u1")));
        Assert.Null(await Store.ResolveAsync(Id("k1")));
    }

    [Fact]
    public async Task Resolve_AliasIdsAndEmails_ReturnTheProfileTheyMergedInto()
    {
        var p = NewProfile("k1", "u1", "ann@example.com");
        p.AliasIds = ["old-1", "old-2"];
        p.AliasEmails = ["old@example.com"];
        await PutAsync(p);

        Assert.Equal("k1", await Store.ResolveAsync(Id("old-1")));
        Assert.Equal("k1", await Store.ResolveAsync(Id("old-2")));
        Assert.Equal("k1", await Store.ResolveAsync(Identifier.Email("old@example.com")));
        Assert.Null(await Store.ResolveAsync(Anon("old-1")));
        await using var s = await Store.OpenSessionAsync();
        Assert.Equal("k1", await s.ResolveAsync(Id("old-2")));
        Assert.Equal("k1", await s.ResolveAsync(Identifier.Email("old@example.com")));
    }

    [Fact]
    public async Task Resolve_MergedFromKeys_ResolveAsCioId()
    {
        var p = NewProfile("k1", "u1");
        p.MergedFrom = ["gone-1", "gone-2"];
        await PutAsync(p);

        Assert.Equal("k1", await Store.ResolveAsync(Cio("gone-1")));
        Assert.Equal("k1", await Store.ResolveAsync(Cio("gone-2")));
        Assert.Null(await Store.ResolveAsync(Id("gone-1")));
        await using var s = await Store.OpenSessionAsync();
        Assert.Equal("k1", await s.ResolveAsync(Cio("gone-2")));
    }

    [Fact]
    public async Task Resolve_IdOrAnonymousId_TriesIdThenAnonymousId()
    {
        var aliased = NewProfile("k3", "u3");
        aliased.AliasIds = ["merged-away"];
        await PutAsync(NewProfile("k1", "x"), NewProfile("k2", null, null, "x", "y"), aliased);

        Assert.Equal("k1", await Store.ResolveAsync(new Identifier(IdentifierKind.IdOrAnonymousId, "x")));
        Assert.Equal("k2", await Store.ResolveAsync(new Identifier(IdentifierKind.IdOrAnonymousId, "y")));
        Assert.Equal("k3", await Store.ResolveAsync(new Identifier(IdentifierKind.IdOrAnonymousId, "merged-away")));
        Assert.Null(await Store.ResolveAsync(new Identifier(IdentifierKind.IdOrAnonymousId, "z")));
        Assert.Equal("k2", await Store.ResolveAsync(Anon("x")));

        await using var s = await Store.OpenSessionAsync();
        Assert.Equal("k1", await s.ResolveAsync(new Identifier(IdentifierKind.IdOrAnonymousId, "x")));
        Assert.Equal("k2", await s.ResolveAsync(new Identifier(IdentifierKind.IdOrAnonymousId, "y")));
    }

    [Fact]
    public async Task PutProfile_RemovedIdentifiers_AreFreed()
    {
        await PutAsync(NewProfile("k1", "u1", "ann@example.com", "anon-1", "anon-2"));
        var p = await GetAsync("k1");
        p.Id = "u1-new";
        p.Email = null;
        p.AnonymousIds = ["anon-2"];
        await PutAsync(p);

        Assert.Null(await Store.ResolveAsync(Id("u1")));
        Assert.Null(await Store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Null(await Store.ResolveAsync(Anon("anon-1")));
        Assert.Equal("k1", await Store.ResolveAsync(Id("u1-new")));
        Assert.Equal("k1", await Store.ResolveAsync(Anon("anon-2")));

        // Another person may take them now.
        await PutAsync(NewProfile("k2", "u1", "ann@example.com", "anon-1"));
        Assert.Equal("k2", await Store.ResolveAsync(Id("u1")));
        Assert.Equal("k2", await Store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Equal("k2", await Store.ResolveAsync(Anon("anon-1")));
        Assert.Equal("k1", await Store.ResolveAsync(Anon("anon-2")));
    }

    [Theory]
    [InlineData(IdentifierKind.Id)]
    [InlineData(IdentifierKind.Email)]
    [InlineData(IdentifierKind.AnonymousId)]
    public async Task PutProfile_IdentifierOwnedByAnotherProfile_Throws(IdentifierKind kind)
    {
        await PutAsync(NewProfile("owner", "u1", "ann@example.com", "anon-1"), NewProfile("other", "u2", "bob@example.com"));
        var taken = kind switch
        {
            IdentifierKind.Id => Id("u1"),
            IdentifierKind.Email => Identifier.Email("ann@example.com"),
            _ => Anon("anon-1"),
        };

        // A new person claiming it.
        var fresh = NewProfile("fresh");
        Give(fresh, taken);
        await using (var s = await Store.OpenSessionAsync())
        {
            await Assert.ThrowsAsync<ConcurrencyException>(() => s.PutProfileAsync(fresh));
        }

        // An existing person claiming it.
        var other = await GetAsync("other");
        Give(other, taken);
        await using (var s = await Store.OpenSessionAsync())
        {
            await Assert.ThrowsAsync<ConcurrencyException>(() => s.PutProfileAsync(other));
        }

        Assert.Equal("owner", await Store.ResolveAsync(taken));
        var owner = await GetAsync("owner");
        Assert.Equal(1, owner.Version);
    }

    protected static void Give(Profile p, Identifier identifier)
    {
        switch (identifier.Kind)
        {
            case IdentifierKind.Id: p.Id = identifier.Value; break;
            case IdentifierKind.Email: p.Email = identifier.Value; break;
            default: p.AnonymousIds.Add(identifier.Value); break;
        }
    }

    // ---- idempotency keys ---------------------------------------------------------------------------------------

    [Fact]
    public async Task TryMarkProcessed_SecondTime_ReturnsFalse()
    {
        await using (var s = await Store.OpenSessionAsync())
        {
            Assert.True(await s.TryMarkProcessedAsync("msg-1", T0));
            Assert.False(await s.TryMarkProcessedAsync("msg-1", T0.AddSeconds(1)));
            Assert.True(await s.TryMarkProcessedAsync("msg-2", T0));
            await s.CommitAsync();
        }

        await using (var s = await Store.OpenSessionAsync())
        {
            Assert.False(await s.TryMarkProcessedAsync("msg-1", T0.AddMinutes(1)));
            Assert.False(await s.TryMarkProcessedAsync("msg-2", T0.AddMinutes(1)));
            Assert.True(await s.TryMarkProcessedAsync("msg-3", T0.AddMinutes(1)));
            await s.CommitAsync();
        }

        Assert.Equal(3, (await Store.CountAsync()).ProcessedKeys);
    }

    [Fact]
    public async Task TryMarkProcessed_KeySurvivesReopen()
    {
        await CommitAsync(async s => Assert.True(await s.TryMarkProcessedAsync("msg-1", T0)));

        await ReopenAsync();

        await using var s = await Store.OpenSessionAsync();
        Assert.False(await s.TryMarkProcessedAsync("msg-1", T0));
    }

    // ---- sessions -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Session_Reads_SeeTheSessionsOwnWrites()
    {
        await PutAsync(NewProfile("gone", "u-gone"));
        await CommitAsync(async s => await s.PutDeviceAsync(NewDevice("tok-gone", "gone")));

        await using var s = await Store.OpenSessionAsync();
        var p = NewProfile("k1", "u1", "ann@example.com", "anon-1");
        p.Attributes["plan"] = Attr("pro", T0);
        await s.PutProfileAsync(p);
        await s.PutDeviceAsync(NewDevice("tok-1", "k1", "phone-1"));
        Assert.True(await s.TryMarkProcessedAsync("msg-1", T0));
        await s.DeleteDeviceAsync("tok-gone");
        await s.DeleteProfileAsync("gone");

        var read = await s.GetProfileAsync("k1");
        Assert.NotNull(read);
        Assert.Equal(1, read.Version);
        Assert.Equal("pro", read.GetString("plan"));
        Assert.Equal("k1", await s.ResolveAsync(Id("u1")));
        Assert.Equal("k1", await s.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Equal("k1", await s.ResolveAsync(Anon("anon-1")));
        Assert.Equal("k1", await s.ResolveAsync(Cio("k1")));
        Assert.Equal("k1", (await s.GetDeviceAsync("tok-1"))?.ProfileKey);
        Assert.Equal(["tok-1"], Tokens(await s.GetDevicesAsync("k1")));
        Assert.Equal(["tok-1"], Tokens(await s.FindDevicesByPhysicalIdAsync("phone-1")));
        Assert.False(await s.TryMarkProcessedAsync("msg-1", T0));
        Assert.Null(await s.GetDeviceAsync("tok-gone"));
        Assert.Null(await s.GetProfileAsync("gone"));
        Assert.Null(await s.ResolveAsync(Id("u-gone")));

        // A second write in the same session builds on the first.
        read.Attributes["plan"] = Attr("free", T0.AddSeconds(1));
        await s.PutProfileAsync(read);
        Assert.Equal(2, read.Version);
        Assert.Equal("free", (await s.GetProfileAsync("k1"))?.GetString("plan"));
        await s.CommitAsync();
    }

    // ---- devices ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task PutDevice_EveryField_RoundTrips()
    {
        await PutAsync(NewProfile("k1", "u1"));
        var d = NewDevice("tok-abcdefghijkl", "k1", "phone-1");
        d.Platform = Platforms.Android;
        d.LastUsed = T0.AddMinutes(3);
        d.CreatedAt = T0.AddDays(-1);
        d.UpdatedAt = T0.AddMinutes(4);
        d.Attributes["push_enabled"] = "false";
        d.Attributes["nested"] = new JsonObject { ["os"] = "14", ["list"] = new JsonArray(1, 2) };
        await CommitAsync(s => s.PutDeviceAsync(d));

        var stored = await Store.GetDeviceAsync("tok-abcdefghijkl");
        Assert.NotNull(stored);
        Assert.Equal(Doc(d), Doc(stored));
        Assert.Equal("k1", stored.ProfileKey);
        Assert.Equal(Platforms.Android, stored.Platform);
        Assert.Equal("phone-1", stored.DeviceId);
        Assert.Equal(T0.AddMinutes(3), stored.LastUsed);
        Assert.Equal(T0.AddDays(-1), stored.CreatedAt);
        Assert.Equal(T0.AddMinutes(4), stored.UpdatedAt);
        Assert.False(stored.PushEnabled);
        Assert.True(JsonNode.DeepEquals(d.Attributes, stored.Attributes));
        Assert.Equal(["tok-abcdefghijkl"], Tokens(await Store.GetDevicesAsync("k1")));
        Assert.Null(await Store.GetDeviceAsync("tok-unknown"));
        Assert.Empty(await Store.GetDevicesAsync("k-unknown"));
    }

    [Fact]
    public async Task PutDevice_AnotherProfileKey_MovesTheToken()
    {
        await PutAsync(NewProfile("a", "ua"), NewProfile("b", "ub"));
        await CommitAsync(async s =>
        {
            await s.PutDeviceAsync(NewDevice("tok-1", "a"));
            await s.PutDeviceAsync(NewDevice("tok-2", "a"));
        });

        var moved = NewDevice("tok-1", "b");
        moved.Attributes["app_version"] = "2.0";
        await CommitAsync(s => s.PutDeviceAsync(moved));

        Assert.Equal(["tok-2"], Tokens(await Store.GetDevicesAsync("a")));
        Assert.Equal(["tok-1"], Tokens(await Store.GetDevicesAsync("b")));
        var stored = await Store.GetDeviceAsync("tok-1");
        Assert.Equal("b", stored?.ProfileKey);
        Assert.Equal("2.0", stored?.Attributes["app_version"]?.GetValue<string>());
        Assert.Equal(2, (await Store.CountAsync()).Devices);

        await CommitAsync(s => s.PutDeviceAsync(NewDevice("tok-2", "b")));
        Assert.Empty(await Store.GetDevicesAsync("a"));
        Assert.Equal(["tok-1", "tok-2"], Tokens(await Store.GetDevicesAsync("b")));
    }

    [Fact]
    public async Task FindDevicesByPhysicalId_ReturnsEveryTokenOfThatDevice()
    {
        await PutAsync(NewProfile("a", "ua"), NewProfile("b", "ub"));
        await CommitAsync(async s =>
        {
            await s.PutDeviceAsync(NewDevice("tok-1", "a", "phone-1"));
            await s.PutDeviceAsync(NewDevice("tok-2", "b", "phone-1"));
            await s.PutDeviceAsync(NewDevice("tok-3", "a", "phone-2"));
            await s.PutDeviceAsync(NewDevice("tok-4", "a"));
        });

        await using (var s = await Store.OpenSessionAsync())
        {
            Assert.Equal(["tok-1", "tok-2"], Tokens(await s.FindDevicesByPhysicalIdAsync("phone-1")));
            Assert.Equal(["tok-3"], Tokens(await s.FindDevicesByPhysicalIdAsync("phone-2")));
            Assert.Empty(await s.FindDevicesByPhysicalIdAsync("phone-9"));

            // A device that changes its physical id is found under the new one only.
            await s.PutDeviceAsync(NewDevice("tok-2", "b", "phone-2"));
            await s.CommitAsync();
        }

        await using (var s = await Store.OpenSessionAsync())
        {
            Assert.Equal(["tok-1"], Tokens(await s.FindDevicesByPhysicalIdAsync("phone-1")));
            Assert.Equal(["tok-2", "tok-3"], Tokens(await s.FindDevicesByPhysicalIdAsync("phone-2")));
        }
    }

    [Fact]
    public async Task DeleteDevice_RemovesOnlyThatToken()
    {
        await PutAsync(NewProfile("a", "ua"));
        await CommitAsync(async s =>
        {
            await s.PutDeviceAsync(NewDevice("tok-1", "a", "phone-1"));
            await s.PutDeviceAsync(NewDevice("tok-2", "a"));
        });

        await CommitAsync(async s =>
        {
            await s.DeleteDeviceAsync("tok-1");
            await s.DeleteDeviceAsync("tok-never-seen");
        });

        Assert.Null(await Store.GetDeviceAsync("tok-1"));
        Assert.Equal(["tok-2"], Tokens(await Store.GetDevicesAsync("a")));
        await using var session = await Store.OpenSessionAsync();
        Assert.Empty(await session.FindDevicesByPhysicalIdAsync("phone-1"));
        Assert.Null(await session.GetDeviceAsync("tok-1"));
    }

    // ---- events -------------------------------------------------------------------------------------------------

    [Fact]
    public async Task GetRecentEvents_NewestFirstByTimestampUpToLimit()
    {
        await PutAsync(NewProfile("k1", "u1"), NewProfile("k2", "u2"));
        await CommitAsync(async s =>
        {
            await s.AppendEventAsync(NewEvent("e2", "k1", T0.AddMinutes(2)));
            await s.AppendEventAsync(NewEvent("e4", "k1", T0.AddMinutes(4)));
            await s.AppendEventAsync(NewEvent("e1", "k1", T0.AddMinutes(1)));
            await s.AppendEventAsync(NewEvent("other", "k2", T0.AddMinutes(3)));
        });
        await CommitAsync(s => s.AppendEventAsync(NewEvent("e3", "k1", T0.AddMinutes(3))));

        Assert.Equal(["e4", "e3", "e2", "e1"], EventIds(await Store.GetRecentEventsAsync("k1", 10)));
        Assert.Equal(["e4", "e3"], EventIds(await Store.GetRecentEventsAsync("k1", 2)));
        Assert.Equal(["other"], EventIds(await Store.GetRecentEventsAsync("k2", 10)));
        Assert.Empty(await Store.GetRecentEventsAsync("k-unknown", 10));
        Assert.Empty(await Store.GetUnattachedEventsAsync(10));
    }

    [Fact]
    public async Task AppendEvent_EveryField_RoundTrips()
    {
        await PutAsync(NewProfile("k1", "u1"));
        var data = new JsonObject
        {
            ["price"] = 19.99,
            ["items"] = new JsonArray(new JsonObject { ["sku"] = "A-1", ["qty"] = 2 }),
            ["note"] = "Ünïcode ✓",
            ["gift"] = false,
        };
        var e = new StoredEvent("evt-1", "k1", "Added to Cart", "screen", T0.AddMinutes(-5), T0.AddSeconds(7), "segment", data);
        await CommitAsync(s => s.AppendEventAsync(e));

        var stored = Assert.Single(await Store.GetRecentEventsAsync("k1", 10));
        Assert.Equal("evt-1", stored.EventId);
        Assert.Equal("k1", stored.ProfileKey);
        Assert.Equal("Added to Cart", stored.Name);
        Assert.Equal("screen", stored.Type);
        Assert.Equal(T0.AddMinutes(-5), stored.Timestamp);
        Assert.Equal(T0.AddSeconds(7), stored.ReceivedAt);
        Assert.Equal("segment", stored.Source);
        Assert.True(JsonNode.DeepEquals(data, stored.Data), stored.Data.ToJsonString());
    }

    [Fact]
    public async Task GetUnattachedEvents_ReturnsEventsWithoutProfileNewestFirst()
    {
        await PutAsync(NewProfile("k1", "u1"));
        await CommitAsync(async s =>
        {
            await s.AppendEventAsync(NewEvent("n1", null, T0.AddMinutes(1)));
            await s.AppendEventAsync(NewEvent("n3", null, T0.AddMinutes(3)));
            await s.AppendEventAsync(NewEvent("mine", "k1", T0.AddMinutes(9)));
            await s.AppendEventAsync(NewEvent("n2", null, T0.AddMinutes(2)));
        });

        var unattached = await Store.GetUnattachedEventsAsync(10);
        Assert.Equal(["n3", "n2", "n1"], EventIds(unattached));
        Assert.All(unattached, e => Assert.Null(e.ProfileKey));
        Assert.Equal(["n3", "n2"], EventIds(await Store.GetUnattachedEventsAsync(2)));
        Assert.Equal(["mine"], EventIds(await Store.GetRecentEventsAsync("k1", 10)));
        Assert.Equal(4, (await Store.CountAsync()).Events);
    }

    [Fact]
    public async Task MoveEvents_MovesEveryEventOfOnePersonToAnother()
    {
        await PutAsync(NewProfile("from", "u1"), NewProfile("to", "u2"), NewProfile("bystander", "u3"));
        await CommitAsync(async s =>
        {
            await s.AppendEventAsync(NewEvent("f1", "from", T0.AddMinutes(1)));
            await s.AppendEventAsync(NewEvent("f3", "from", T0.AddMinutes(3)));
            await s.AppendEventAsync(NewEvent("t2", "to", T0.AddMinutes(2)));
            await s.AppendEventAsync(NewEvent("b1", "bystander", T0.AddMinutes(1)));
            await s.AppendEventAsync(NewEvent("n1", null, T0.AddMinutes(1)));
        });

        await CommitAsync(s => s.MoveEventsAsync("from", "to"));

        Assert.Empty(await Store.GetRecentEventsAsync("from", 10));
        var moved = await Store.GetRecentEventsAsync("to", 10);
        Assert.Equal(["f3", "t2", "f1"], EventIds(moved));
        Assert.All(moved, e => Assert.Equal("to", e.ProfileKey));
        Assert.Equal(["b1"], EventIds(await Store.GetRecentEventsAsync("bystander", 10)));
        Assert.Equal(["n1"], EventIds(await Store.GetUnattachedEventsAsync(10)));
        Assert.Equal(5, (await Store.CountAsync()).Events);
    }

    // ---- deletion and counts ------------------------------------------------------------------------------------

    [Fact]
    public async Task DeleteProfile_RemovesIdentifiersDevicesAndEvents()
    {
        var p = NewProfile("k1", "u1", "ann@example.com", "anon-1");
        p.AliasIds = ["old-1"];
        p.AliasEmails = ["old@example.com"];
        p.MergedFrom = ["gone-1"];
        await PutAsync(p, NewProfile("k2", "u2", "bob@example.com"));
        await CommitAsync(async s =>
        {
            Assert.True(await s.TryMarkProcessedAsync("msg-1", T0));
            await s.PutDeviceAsync(NewDevice("tok-1", "k1", "phone-1"));
            await s.PutDeviceAsync(NewDevice("tok-2", "k2"));
            await s.AppendEventAsync(NewEvent("e1", "k1", T0));
            await s.AppendEventAsync(NewEvent("e2", "k2", T0));
        });

        await CommitAsync(s => s.DeleteProfileAsync("k1"));

        Assert.Null(await Store.GetProfileAsync("k1"));
        foreach (var id in new[] { Id("u1"), Identifier.Email("ann@example.com"), Anon("anon-1"), Id("old-1"), Identifier.Email("old@example.com"), Cio("gone-1"), Cio("k1") })
        {
            Assert.Null(await Store.ResolveAsync(id));
        }

        Assert.Empty(await Store.GetDevicesAsync("k1"));
        Assert.Null(await Store.GetDeviceAsync("tok-1"));
        Assert.Empty(await Store.GetRecentEventsAsync("k1", 10));
        Assert.Equal(new StoreCounts(1, 1, 1, 1), await Store.CountAsync());
        Assert.Equal("k2", await Store.ResolveAsync(Identifier.Email("bob@example.com")));
        Assert.Equal(["tok-2"], Tokens(await Store.GetDevicesAsync("k2")));
        Assert.Equal(["e2"], EventIds(await Store.GetRecentEventsAsync("k2", 10)));
        await using (var s = await Store.OpenSessionAsync())
        {
            Assert.Empty(await s.FindDevicesByPhysicalIdAsync("phone-1"));
        }

        // Its identifiers are free again.
        await PutAsync(NewProfile("k3", "u1", "ann@example.com", "anon-1"));
        Assert.Equal("k3", await Store.ResolveAsync(Id("u1")));
    }

    [Fact]
    public async Task Count_ReflectsEveryKindOfRow()
    {
        Assert.Equal(new StoreCounts(0, 0, 0, 0), await Store.CountAsync());

        await PutAsync(NewProfile("k1", "u1"), NewProfile("k2", "u2"));
        await CommitAsync(async s =>
        {
            await s.PutDeviceAsync(NewDevice("tok-1", "k1"));
            await s.AppendEventAsync(NewEvent("e1", "k1", T0));
            await s.AppendEventAsync(NewEvent("e2", "k2", T0));
            await s.AppendEventAsync(NewEvent("e3", null, T0));
            await s.TryMarkProcessedAsync("msg-1", T0);
            await s.TryMarkProcessedAsync("msg-2", T0);
            await s.TryMarkProcessedAsync("msg-2", T0);
        });

        Assert.Equal(new StoreCounts(2, 1, 3, 2), await Store.CountAsync());

        // Replacing a profile or device adds no row.
        var p = await GetAsync("k1");
        await PutAsync(p);
        await CommitAsync(s => s.PutDeviceAsync(NewDevice("tok-1", "k2")));
        Assert.Equal(new StoreCounts(2, 1, 3, 2), await Store.CountAsync());
    }

    // ---- durability ---------------------------------------------------------------------------------------------

    [Fact]
    public async Task Reopen_EverythingCommittedSurvives()
    {
        var p = NewProfile("k1", "u1", "ann@example.com", "anon-1");
        p.Attributes["plan"] = Attr("pro", T0);
        p.MergedFrom = ["gone-1"];
        await PutAsync(p);
        await CommitAsync(async s =>
        {
            await s.PutDeviceAsync(NewDevice("tok-1", "k1", "phone-1"));
            await s.AppendEventAsync(NewEvent("e1", "k1", T0));
            await s.AppendEventAsync(NewEvent("n1", null, T0));
            await s.TryMarkProcessedAsync("msg-1", T0);
        });

        await ReopenAsync();

        var stored = await GetAsync("k1");
        Assert.Equal(Doc(p), Doc(stored));
        Assert.Equal(1, stored.Version);
        Assert.Equal("k1", await Store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Equal("k1", await Store.ResolveAsync(Anon("anon-1")));
        Assert.Equal("k1", await Store.ResolveAsync(Cio("gone-1")));
        Assert.Equal("k1", (await Store.GetDeviceAsync("tok-1"))?.ProfileKey);
        Assert.Equal(["e1"], EventIds(await Store.GetRecentEventsAsync("k1", 10)));
        Assert.Equal(["n1"], EventIds(await Store.GetUnattachedEventsAsync(10)));
        Assert.Equal(new StoreCounts(1, 1, 2, 1), await Store.CountAsync());

        // The reopened store keeps counting versions from where it was.
        stored.Attributes["plan"] = Attr("free", T0.AddMinutes(1));
        await PutAsync(stored);
        Assert.Equal(2, (await GetAsync("k1")).Version);
    }

    // ---- send stage -----------------------------------------------------------------------------------------------

    protected static Message NewMessage(string id, DateTimeOffset created, bool ready = true, DateTimeOffset? next = null) => new()
    {
        Id = id,
        ProfileKey = "k1",
        InstanceId = "i1",
        JourneyId = "j",
        StepId = "s",
        Channel = Channel.Push,
        Status = MessageStatus.Drafted,
        Ready = ready,
        NextAttemptAt = next,
        CreatedAt = created,
        Recipients = ["tok"],
        Platforms = [Platforms.Ios],
    };

    [Fact]
    public async Task ReadyMessages_OnlyThoseDueByNow_EarliestFirst()
    {
        await CommitAsync(async s =>
        {
            await s.TryAddMessageAsync(NewMessage("new", T0.AddMinutes(2)));
            await s.TryAddMessageAsync(NewMessage("old", T0));
            await s.TryAddMessageAsync(NewMessage("retry-later", T0, next: T0.AddHours(1)));
            await s.TryAddMessageAsync(NewMessage("retry-soon", T0, next: T0.AddMinutes(1)));
            await s.TryAddMessageAsync(NewMessage("done", T0, ready: false));
        });

        Assert.Equal(["old", "retry-soon", "new"], (await Store.ReadyMessagesAsync(T0.AddMinutes(5), 10)).Select(m => m.Id));
        Assert.Equal(["old"], (await Store.ReadyMessagesAsync(T0, 10)).Select(m => m.Id));
        Assert.Equal(["old", "retry-soon", "new", "retry-later"], (await Store.ReadyMessagesAsync(T0.AddHours(2), 10)).Select(m => m.Id));
        Assert.Equal(["old", "retry-soon"], (await Store.ReadyMessagesAsync(T0.AddHours(2), 2)).Select(m => m.Id));
    }

    [Fact]
    public async Task ReadyMessages_AMessageMarkedDone_LeavesTheList()
    {
        var m = NewMessage("m", T0);
        await CommitAsync(s => s.TryAddMessageAsync(m));
        m.Ready = false;
        await CommitAsync(s => s.PutMessageAsync(m));

        Assert.Empty(await Store.ReadyMessagesAsync(T0.AddDays(1), 10));
    }

    [Fact]
    public async Task PushTargets_OneReadForManyTokens_WithBounceTimes()
    {
        await CommitAsync(async s =>
        {
            await s.PutDeviceAsync(NewDevice("t1", "k1"));
            await s.PutDeviceAsync(NewDevice("t2", "k2"));
            await s.MarkTokenBouncedAsync("t2", T0.AddHours(1), "Unregistered");
            await s.MarkTokenBouncedAsync("gone", T0, "Unregistered");
        });

        var found = await Store.GetPushTargetsAsync(["t1", "t2", "gone", "never"]);

        Assert.Equal(["t1", "t2"], found.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(("k1", (DateTimeOffset?)null), (found["t1"].Device.ProfileKey, found["t1"].BouncedAt));
        Assert.Equal(T0.AddHours(1), found["t2"].BouncedAt);
        Assert.Empty(await Store.GetPushTargetsAsync([]));
    }

    [Fact]
    public async Task ClaimMessage_OnlyOneClaimWins_UntilItRunsOutOrAnOutcomeIsRecorded()
    {
        var m = NewMessage("m", T0);
        await CommitAsync(s => s.TryAddMessageAsync(m));
        await using (var s = await Store.OpenSessionAsync())
        {
            Assert.True(await s.TryClaimMessageAsync("m", T0, T0.AddMinutes(5)));
            Assert.False(await s.TryClaimMessageAsync("m", T0, T0.AddMinutes(6)));
            Assert.False(await s.TryClaimMessageAsync("unknown", T0, T0.AddMinutes(5)));
            await s.CommitAsync();
        }

        Assert.Empty(await Store.ReadyMessagesAsync(T0.AddMinutes(4), 10));
        Assert.Single(await Store.ReadyMessagesAsync(T0.AddMinutes(5), 10));

        m.Ready = false;
        await CommitAsync(s => s.PutMessageAsync(m));
        await using var after = await Store.OpenSessionAsync();
        Assert.False(await after.TryClaimMessageAsync("m", T0.AddDays(1), T0.AddDays(2)));
    }

    [Fact]
    public async Task RecordSendOutcome_ReadsBackAsAFullWriteWould_OnlyWhileTheClaimHolds()
    {
        var a = NewMessage("a", T0);
        var b = NewMessage("b", T0);
        a.Content = b.Content = new JsonObject { ["title"] = "Hi", ["data"] = new JsonObject { ["k"] = "v" } };
        await CommitAsync(async s =>
        {
            await s.TryAddMessageAsync(a);
            await s.TryAddMessageAsync(b);
            Assert.Equal(2, (await s.ClaimReadyMessagesAsync(T0, T0.AddMinutes(5), 10)).Count);
        });

        foreach (var m in new[] { a, b })
        {
            m.Status = MessageStatus.Sent;
            m.SentAt = T0.AddSeconds(1);
            m.Ready = false;
            m.Attempts = 1;
            m.Warnings.Add("push_title_truncated: ...");
            m.Deliveries = [new MessageDelivery { Recipient = "tok", Platform = Platforms.Ios, Status = DeliveryStatus.Sent, Provider = "apns", ProviderId = "id-1", Attempts = 1, At = T0 }];
            m.History.Add(new StatusChange(MessageStatus.Sent, T0.AddSeconds(1), null));
        }

        await CommitAsync(async s =>
        {
            Assert.False(await s.TryRecordSendOutcomeAsync(a, T0.AddMinutes(6))); // not this attempt's claim
            Assert.True(await s.TryRecordSendOutcomeAsync(a, T0.AddMinutes(5)));
            Assert.False(await s.TryRecordSendOutcomeAsync(a, T0.AddMinutes(5))); // recorded: the claim is over
            await s.PutMessageAsync(b);
        });

        var readA = (await Store.GetMessageAsync("a"))!;
        var readB = (await Store.GetMessageAsync("b"))!;
        Assert.Equal(JsonSerializer.Serialize(readB, StoreJson.Options).Replace("\"b\"", "\"a\"", StringComparison.Ordinal),
            JsonSerializer.Serialize(readA, StoreJson.Options));
        Assert.Empty(await Store.ReadyMessagesAsync(T0.AddDays(1), 10));
    }

    [Fact]
    public async Task TokenBounce_RecordedKeepsTheLatestTime()
    {
        Assert.Null(await Store.GetTokenBounceAsync("tok"));
        await CommitAsync(s => s.MarkTokenBouncedAsync("tok", T0.AddHours(1), "Unregistered"));
        await CommitAsync(s => s.MarkTokenBouncedAsync("tok", T0, "BadDeviceToken"));

        Assert.Equal(T0.AddHours(1), await Store.GetTokenBounceAsync("tok"));
        Assert.Null(await Store.GetTokenBounceAsync("other"));
        await ReopenAsync();
        Assert.Equal(T0.AddHours(1), await Store.GetTokenBounceAsync("tok"));
    }

    // ---- sessions that end without commit -----------------------------------------------------------------------
    // The one place stores may differ (SessionsAreTransactions): a transactional store undoes a session disposed
    // without commit; a store without transactions keeps the writes it applied as it went, but never records the
    // session's idempotency keys, so the input is handled again (idempotently) when it is retried. Either way a
    // write the store refused (ConcurrencyException) leaves nothing behind.

    [Fact]
    public async Task Session_DisposedWithoutCommit_LeavesNoTrace_OrWithoutTransactionsOnlyItsWrites()
    {
        await using (var s = await Store.OpenSessionAsync())
        {
            Assert.True(await s.TryMarkProcessedAsync("msg-1", T0));
            await s.PutProfileAsync(NewProfile("k1", "u1", "ann@example.com", "anon-1"));
            await s.PutDeviceAsync(NewDevice("tok-1", "k1", "phone-1"));
            await s.AppendEventAsync(NewEvent("e1", "k1", T0));
            await s.AppendEventAsync(NewEvent("n1", null, T0));
        }

        if (!SessionsAreTransactions)
        {
            Assert.Equal(new StoreCounts(1, 1, 2, 0), await Store.CountAsync());
            Assert.Equal("k1", await Store.ResolveAsync(Identifier.Email("ann@example.com")));
            Assert.Equal("k1", (await Store.GetDeviceAsync("tok-1"))?.ProfileKey);
            await using var retry = await Store.OpenSessionAsync();
            Assert.True(await retry.TryMarkProcessedAsync("msg-1", T0));
            Assert.Equal(["tok-1"], Tokens(await retry.FindDevicesByPhysicalIdAsync("phone-1")));
            return;
        }

        Assert.Equal(new StoreCounts(0, 0, 0, 0), await Store.CountAsync());
        Assert.Null(await Store.GetProfileAsync("k1"));
        Assert.Null(await Store.ResolveAsync(Id("u1")));
        Assert.Null(await Store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Null(await Store.ResolveAsync(Anon("anon-1")));
        Assert.Null(await Store.GetDeviceAsync("tok-1"));
        Assert.Empty(await Store.GetRecentEventsAsync("k1", 10));
        Assert.Empty(await Store.GetUnattachedEventsAsync(10));
        await using (var s = await Store.OpenSessionAsync())
        {
            Assert.True(await s.TryMarkProcessedAsync("msg-1", T0));
            Assert.Empty(await s.FindDevicesByPhysicalIdAsync("phone-1"));
        }
    }

    [Fact]
    public async Task Session_DisposedWithoutCommit_UndoesChangesToExistingRows_OrWithoutTransactionsKeepsThem()
    {
        await PutAsync(NewProfile("k1", "u1", "ann@example.com"));
        await CommitAsync(async s =>
        {
            await s.PutDeviceAsync(NewDevice("tok-1", "k1"));
            await s.AppendEventAsync(NewEvent("e1", "k1", T0));
        });
        await PutAsync(NewProfile("k2", "u2"));

        await using (var s = await Store.OpenSessionAsync())
        {
            var p = await s.GetProfileAsync("k1");
            p!.Email = "new@example.com";
            await s.PutProfileAsync(p);
            await s.PutDeviceAsync(NewDevice("tok-1", "k2"));
            await s.MoveEventsAsync("k1", "k2");
            await s.DeleteProfileAsync("k2");
        }

        var stored = await GetAsync("k1");
        if (!SessionsAreTransactions)
        {
            // Each write happened, in order: the token and the events went to k2, and were deleted with it.
            Assert.Equal(2, stored.Version);
            Assert.Equal("k1", await Store.ResolveAsync(Identifier.Email("new@example.com")));
            Assert.Null(await Store.ResolveAsync(Identifier.Email("ann@example.com")));
            Assert.Null(await Store.GetDeviceAsync("tok-1"));
            Assert.Empty(await Store.GetRecentEventsAsync("k1", 10));
            Assert.Null(await Store.ResolveAsync(Id("u2")));
            Assert.Equal(new StoreCounts(1, 0, 0, 0), await Store.CountAsync());
            return;
        }

        Assert.Equal(1, stored.Version);
        Assert.Equal("k1", await Store.ResolveAsync(Identifier.Email("ann@example.com")));
        Assert.Null(await Store.ResolveAsync(Identifier.Email("new@example.com")));
        Assert.Equal("k1", (await Store.GetDeviceAsync("tok-1"))?.ProfileKey);
        Assert.Single(await Store.GetRecentEventsAsync("k1", 10));
        Assert.Equal("k2", await Store.ResolveAsync(Id("u2")));
    }

    [Fact]
    public async Task Session_UncommittedWrites_AreInvisibleOutsideUntilCommit_OrWithoutTransactionsVisibleAtOnce()
    {
        await using var s = await Store.OpenSessionAsync();
        await s.PutProfileAsync(NewProfile("k1", "u1"));
        await s.PutDeviceAsync(NewDevice("tok-1", "k1"));
        await s.AppendEventAsync(NewEvent("e1", "k1", T0));

        if (SessionsAreTransactions)
        {
            Assert.Null(await Store.GetProfileAsync("k1"));
            Assert.Null(await Store.ResolveAsync(Id("u1")));
            Assert.Null(await Store.GetDeviceAsync("tok-1"));
            Assert.Empty(await Store.GetRecentEventsAsync("k1", 10));
        }
        else
        {
            Assert.NotNull(await Store.GetProfileAsync("k1"));
            Assert.Equal("k1", await Store.ResolveAsync(Id("u1")));
            Assert.NotNull(await Store.GetDeviceAsync("tok-1"));
            Assert.Single(await Store.GetRecentEventsAsync("k1", 10));
        }

        await s.CommitAsync();

        Assert.NotNull(await Store.GetProfileAsync("k1"));
        Assert.Equal("k1", await Store.ResolveAsync(Id("u1")));
        Assert.NotNull(await Store.GetDeviceAsync("tok-1"));
        Assert.Single(await Store.GetRecentEventsAsync("k1", 10));
    }

    [Fact]
    public async Task PutProfile_IdentifierConflictThenDispose_LeavesBothProfilesAsTheyWere()
    {
        await PutAsync(NewProfile("owner", "u1", "ann@example.com"), NewProfile("other", "u2", "bob@example.com", "anon-2"));

        var other = await GetAsync("other");
        other.Email = "ann@example.com";
        other.AnonymousIds = ["anon-3"];
        await using (var s = await Store.OpenSessionAsync())
        {
            await Assert.ThrowsAsync<ConcurrencyException>(() => s.PutProfileAsync(other));
        }

        var stored = await GetAsync("other");
        Assert.Equal(1, stored.Version);
        Assert.Equal("bob@example.com", stored.Email);
        Assert.Equal("other", await Store.ResolveAsync(Id("u2")));
        Assert.Equal("other", await Store.ResolveAsync(Identifier.Email("bob@example.com")));
        Assert.Equal("other", await Store.ResolveAsync(Anon("anon-2")));
        Assert.Null(await Store.ResolveAsync(Anon("anon-3")));
        Assert.Equal("owner", await Store.ResolveAsync(Identifier.Email("ann@example.com")));
    }
}
