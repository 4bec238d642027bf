using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Ingest;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Pipeline;
using Nudge.Sqlite.Store;

namespace Nudge.Sqlite.Tests;

/// <summary>The process-event stage against a real SQLite store, with ops built by hand.</summary>
public sealed class EventProcessorTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly TempFolder _folder = new();
    private readonly EventProcessor _processor = new(new IngestLimits(), new FakeTimeProvider(T0));
    private SqliteStore? _store;
    private DateTimeOffset _received = T0;
    private int _messages;

    private SqliteStore Store => _store ?? throw new InvalidOperationException("the store is not open");

    public async Task InitializeAsync()
    {
        try
        {
            _store = await SqliteStore.OpenAsync(_folder.File("store.db"));
        }
        catch
        {
            // xunit does not call DisposeAsync when InitializeAsync fails.
            _folder.Delete();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }

        _folder.Delete();
    }

    // ---- op builders --------------------------------------------------------------------------------------------

    private static Identifier Id(string v) => new(IdentifierKind.Id, v);

    private static Identifier Anon(string v) => new(IdentifierKind.AnonymousId, v);

    private static Identifier Email(string v) => Identifier.Email(v);

    private static JsonObject Json(string json) => JsonNode.Parse(json)!.AsObject();

    /// <summary>An op received one second after the previous one, happening at <paramref name="at"/> (default: when received).</summary>
    private IngestOp Op(OpKind kind, Identifier? target, DateTimeOffset? at = null)
    {
        _received = _received.AddSeconds(1);
        return new IngestOp
        {
            Kind = kind,
            MessageId = $"msg-{++_messages}",
            Source = "track",
            Timestamp = at ?? _received,
            ReceivedAt = _received,
            Target = target,
        };
    }

    private IngestOp Identify(Identifier target, string? attributes = null, DateTimeOffset? at = null) =>
        Op(OpKind.Identify, target, at) with { Attributes = attributes is null ? null : Json(attributes) };

    private IngestOp Track(Identifier? target, string name, DateTimeOffset? at = null) =>
        Op(OpKind.Track, target, at) with { Event = new EventData(name, "event", new JsonObject { ["name"] = name }) };

    private IngestOp Device(Identifier target, string token, string? deviceId = null, DateTimeOffset? lastUsed = null, string? attributes = null, DateTimeOffset? at = null) =>
        Op(OpKind.UpsertDevice, target, at) with
        {
            Device = new DeviceData(token, Platforms.Ios, deviceId, lastUsed, attributes is null ? [] : Json(attributes)),
        };

    private async Task ProcessAsync(params IngestOp[] ops)
    {
        foreach (var op in ops)
        {
            await using var s = await Store.OpenSessionAsync();
            await _processor.ProcessAsync(s, op);
            await s.CommitAsync();
        }
    }

    // ---- reading back -------------------------------------------------------------------------------------------

    private async Task<Profile> PersonAsync(Identifier id)
    {
        var key = await Store.ResolveAsync(id);
        Assert.True(key is not null, $"{id} resolves to nobody");
        var p = await Store.GetProfileAsync(key);
        Assert.NotNull(p);
        return p;
    }

    private async Task<IReadOnlyList<StoredEvent>> EventsAsync(string key) => await Store.GetRecentEventsAsync(key, 1000);

    private async Task<List<StoredEvent>> SystemEventsAsync(string key, string name) =>
        (await EventsAsync(key)).Where(e => e.Type == "system" && e.Name == name).ToList();

    private async Task<string[]> TokensAsync(string key) =>
        (await Store.GetDevicesAsync(key)).Select(d => d.Token).Order(StringComparer.Ordinal).ToArray();

    private static string Live(Profile p) =>
        string.Join(",", p.LiveAttributes().Select(a => $"{a.Key}={a.Value.ToJsonString()}"));

    private static string? Reason(StoredEvent e) => e.Data["reason"]?.GetValue<string>();

    // ---- identify -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Identify_UnknownId_CreatesProfile()
    {
        await ProcessAsync(Identify(Id("u1"), """{"plan":"pro","age":30}""") with { SetEmail = "ann@example.com" });

        var p = await PersonAsync(Id("u1"));
        Assert.Equal("u1", p.Id);
        Assert.Equal("ann@example.com", p.Email);
        Assert.Equal("age=30,plan=\"pro\"", Live(p));
        Assert.Equal(p.Key, await Store.ResolveAsync(Email("ann@example.com")));
        Assert.Equal(p.Key, await Store.ResolveAsync(new Identifier(IdentifierKind.CioId, p.Key)));
        Assert.Equal(T0.AddSeconds(1), p.CreatedAt);
        Assert.Equal(new StoreCounts(1, 0, 0, 1), await Store.CountAsync());
    }

    [Fact]
    public async Task Identify_ExistingPerson_UpdatesAttributesByTimestamp()
    {
        await ProcessAsync(
            Identify(Id("u1"), """{"plan":"pro","city":"Oslo"}""", T0.AddHours(2)),
            Identify(Id("u1"), """{"plan":"free","tier":"gold"}""", T0.AddHours(1)),
            Identify(Id("u1"), """{"city":null}""", T0.AddHours(3)));

        var p = await PersonAsync(Id("u1"));
        Assert.Equal("plan=\"pro\",tier=\"gold\"", Live(p));
        Assert.Equal(1, (await Store.CountAsync()).Profiles);
    }

    [Fact]
    public async Task Process_SameMessageIdTwice_AppliedOnce()
    {
        var track = Track(Id("u1"), "Added to Cart");
        var identify = Identify(Id("u1"), """{"visits":1}""");

        await ProcessAsync(track, identify, track, identify);

        var p = await PersonAsync(Id("u1"));
        Assert.Single(await EventsAsync(p.Key));
        Assert.Equal(2, p.Version);
        Assert.Equal(new StoreCounts(1, 0, 1, 2), await Store.CountAsync());
    }

    [Fact]
    public async Task Identify_WithAnonymousIdOfAnonymousProfile_MergesItIntoTheKnownPerson()
    {
        await ProcessAsync(
            Track(Anon("anon-1"), "Viewed Product"),
            Device(Anon("anon-1"), "token-anon-device-1", "phone-1"),
            Identify(Anon("anon-1"), """{"color":"red"}"""));
        var anonKey = await Store.ResolveAsync(Anon("anon-1"));
        Assert.NotNull(anonKey);
        Assert.True((await Store.GetProfileAsync(anonKey))!.IsAnonymous);

        await ProcessAsync(Identify(Id("u1"), """{"plan":"pro"}""") with { AnonymousId = "anon-1" });

        var p = await PersonAsync(Id("u1"));
        Assert.NotEqual(anonKey, p.Key);
        Assert.Null(await Store.GetProfileAsync(anonKey));
        Assert.Equal(p.Key, await Store.ResolveAsync(new Identifier(IdentifierKind.CioId, anonKey)));
        Assert.Equal(p.Key, await Store.ResolveAsync(Anon("anon-1")));
        Assert.Equal(["anon-1"], p.AnonymousIds);
        Assert.Equal([anonKey], p.MergedFrom);
        Assert.Equal("color=\"red\",plan=\"pro\"", Live(p));
        Assert.Equal(["token-anon-device-1"], await TokensAsync(p.Key));
        Assert.Equal(p.Key, (await Store.GetDeviceAsync("token-anon-device-1"))?.ProfileKey);
        var events = await EventsAsync(p.Key);
        Assert.Contains(events, e => e.Name == "Viewed Product" && e.ProfileKey == p.Key);
        Assert.Contains(events, e => e.Name == "device_registered");
        var merged = Assert.Single(await SystemEventsAsync(p.Key, "profiles_merged"));
        Assert.Equal(Identifier.CioPrefix + anonKey, merged.Data["merged_cio_id"]?.GetValue<string>());
        Assert.True(merged.Data["was_anonymous"]?.GetValue<bool>());
        Assert.Empty(await EventsAsync(anonKey));
        Assert.Equal(1, (await Store.CountAsync()).Profiles);

        // Later activity under the anonymous id lands on the known person.
        await ProcessAsync(Track(Anon("anon-1"), "Opened App"));
        Assert.Contains(await EventsAsync(p.Key), e => e.Name == "Opened App");
        Assert.Equal(1, (await Store.CountAsync()).Profiles);
    }

    [Fact]
    public async Task Identify_SetEmailOfEmailOnlyProfile_MergesIt()
    {
        await ProcessAsync(
            Identify(Id("u1"), """{"plan":"pro"}"""),
            Identify(Email("ann@example.com"), """{"city":"Oslo"}"""),
            Track(Email("ann@example.com"), "Opened Email"));
        var emailOnly = await PersonAsync(Email("ann@example.com"));
        Assert.Null(emailOnly.Id);

        await ProcessAsync(Identify(Id("u1")) with { SetEmail = "ann@example.com" });

        var p = await PersonAsync(Id("u1"));
        Assert.NotEqual(emailOnly.Key, p.Key);
        Assert.Equal("ann@example.com", p.Email);
        Assert.Equal(p.Key, await Store.ResolveAsync(Email("ann@example.com")));
        Assert.Equal(p.Key, await Store.ResolveAsync(new Identifier(IdentifierKind.CioId, emailOnly.Key)));
        Assert.Null(await Store.GetProfileAsync(emailOnly.Key));
        Assert.Equal("city=\"Oslo\",plan=\"pro\"", Live(p));
        Assert.Contains(await EventsAsync(p.Key), e => e.Name == "Opened Email");
        Assert.Single(await SystemEventsAsync(p.Key, "profiles_merged"));
        Assert.Empty(await SystemEventsAsync(p.Key, "identify_conflict"));
        Assert.Equal(1, (await Store.CountAsync()).Profiles);
    }

    [Fact]
    public async Task Identify_NewIdWithEmailOfEmailOnlyProfile_ThatProfileGetsTheId()
    {
        // Track API PUT /customers/ann@example.com first, then Segment identify {userId:"u1", traits:{email}}.
        await ProcessAsync(Identify(Email("ann@example.com"), """{"city":"Oslo"}"""));

        await ProcessAsync(Identify(Id("u1"), """{"plan":"pro"}""") with { SetEmail = "ann@example.com" });

        var byEmail = await PersonAsync(Email("ann@example.com"));
        Assert.Equal(byEmail.Key, await Store.ResolveAsync(Id("u1")));
        Assert.Equal("u1", byEmail.Id);
        Assert.Equal("city=\"Oslo\",plan=\"pro\"", Live(byEmail));

        // The person's next event under their id must not create a second person.
        await ProcessAsync(Track(Id("u1"), "Purchased"));
        Assert.Equal(1, (await Store.CountAsync()).Profiles);
    }

    [Fact]
    public async Task Identify_EmailOfAnotherKnownPerson_RecordsConflictAndKeepsEmail()
    {
        await ProcessAsync(
            Identify(Id("u1")) with { SetEmail = "ann@example.com" },
            Identify(Id("u2")) with { SetEmail = "bob@example.com" });

        await ProcessAsync(Identify(Id("u2"), """{"plan":"pro"}""") with { SetEmail = "ann@example.com" });

        var u1 = await PersonAsync(Id("u1"));
        var u2 = await PersonAsync(Id("u2"));
        Assert.Equal("ann@example.com", u1.Email);
        Assert.Equal("bob@example.com", u2.Email);
        Assert.Equal(u1.Key, await Store.ResolveAsync(Email("ann@example.com")));
        Assert.Equal(u2.Key, await Store.ResolveAsync(Email("bob@example.com")));
        Assert.Equal("plan=\"pro\"", Live(u2));
        var conflict = Assert.Single(await SystemEventsAsync(u2.Key, "identify_conflict"));
        Assert.Equal("email", conflict.Data["field"]?.GetValue<string>());
        Assert.Equal("ann@example.com", conflict.Data["value"]?.GetValue<string>());
        Assert.Empty(await EventsAsync(u1.Key));
        Assert.Equal(2, (await Store.CountAsync()).Profiles);
    }

    [Fact]
    public async Task Identify_UpdateOnlyForUnknownPerson_CreatesNothing()
    {
        await ProcessAsync(Identify(Id("ghost"), """{"plan":"pro"}""") with { UpdateOnly = true, SetEmail = "ghost@example.com" });

        Assert.Null(await Store.ResolveAsync(Id("ghost")));
        Assert.Null(await Store.ResolveAsync(Email("ghost@example.com")));
        Assert.Equal(new StoreCounts(0, 0, 0, 1), await Store.CountAsync());

        // An existing person is updated.
        await ProcessAsync(Identify(Id("u1")), Identify(Id("u1"), """{"plan":"pro"}""") with { UpdateOnly = true });
        Assert.Equal("plan=\"pro\"", Live(await PersonAsync(Id("u1"))));
    }

    // ---- devices ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task UpsertDevice_TokenOfAnotherPerson_MovesIt()
    {
        const string token = "shared-token-0123456789";
        await ProcessAsync(Device(Id("a"), token, "phone-1"));
        var a = await PersonAsync(Id("a"));

        await ProcessAsync(Device(Id("b"), token, "phone-1"));

        var b = await PersonAsync(Id("b"));
        Assert.Empty(await TokensAsync(a.Key));
        Assert.Equal([token], await TokensAsync(b.Key));
        Assert.Equal(b.Key, (await Store.GetDeviceAsync(token))?.ProfileKey);
        var removed = Assert.Single(await SystemEventsAsync(a.Key, "device_removed"));
        Assert.Equal("token_moved_to_another_person", Reason(removed));
        Assert.Equal(Nudge.Core.Profiles.Device.TokenTailOf(token), removed.Data["token_tail"]?.GetValue<string>());
        Assert.Single(await SystemEventsAsync(b.Key, "device_registered"));
        Assert.Empty(await SystemEventsAsync(b.Key, "device_removed"));
        Assert.Equal(1, (await Store.CountAsync()).Devices);
    }

    [Fact]
    public async Task UpsertDevice_SameDeviceIdNewToken_RotatesToken()
    {
        const string oldToken = "old-token-aaaaaaaa";
        const string newToken = "new-token-bbbbbbbb";
        await ProcessAsync(Device(Id("a"), oldToken, "phone-1", attributes: """{"app_version":"1.0"}"""));
        var created = (await Store.GetDeviceAsync(oldToken))!.CreatedAt;

        await ProcessAsync(Device(Id("a"), newToken, "phone-1"));

        var a = await PersonAsync(Id("a"));
        Assert.Equal([newToken], await TokensAsync(a.Key));
        Assert.Null(await Store.GetDeviceAsync(oldToken));
        var device = await Store.GetDeviceAsync(newToken);
        Assert.Equal("phone-1", device?.DeviceId);
        Assert.Equal(created, device?.CreatedAt);
        Assert.Equal("1.0", device?.Attributes["app_version"]?.GetValue<string>());
        var updated = Assert.Single(await SystemEventsAsync(a.Key, "device_updated"));
        Assert.Equal("token_rotated", Reason(updated));
        Assert.Equal(Nudge.Core.Profiles.Device.TokenTailOf(oldToken), updated.Data["previous_token_tail"]?.GetValue<string>());
        Assert.Single(await SystemEventsAsync(a.Key, "device_registered"));
        Assert.Empty(await SystemEventsAsync(a.Key, "device_removed"));
    }

    [Fact]
    public async Task UpsertDevice_SameDeviceIdSignedInAsAnotherPerson_RemovesOldToken()
    {
        await ProcessAsync(Device(Id("a"), "token-of-a-1111", "phone-1"));
        var a = await PersonAsync(Id("a"));

        await ProcessAsync(Device(Id("b"), "token-of-b-2222", "phone-1"));

        var b = await PersonAsync(Id("b"));
        Assert.Empty(await TokensAsync(a.Key));
        Assert.Equal(["token-of-b-2222"], await TokensAsync(b.Key));
        var removed = Assert.Single(await SystemEventsAsync(a.Key, "device_removed"));
        Assert.Equal("device_signed_in_as_another_person", Reason(removed));
    }

    [Fact]
    public async Task UpsertDevice_OnlyLastUsedChanged_RecordsNoEvent()
    {
        const string token = "token-refresh-1234";
        await ProcessAsync(Device(Id("a"), token, "phone-1", T0.AddHours(1), """{"app_version":"1.0"}"""));
        var a = await PersonAsync(Id("a"));
        var before = (await EventsAsync(a.Key)).Count;

        await ProcessAsync(Device(Id("a"), token, "phone-1", T0.AddHours(2), """{"app_version":"1.0"}"""));
        Assert.Equal(before, (await EventsAsync(a.Key)).Count);
        Assert.Equal(T0.AddHours(2), (await Store.GetDeviceAsync(token))?.LastUsed);

        // An older last_used never moves it back.
        await ProcessAsync(Device(Id("a"), token, "phone-1", T0.AddMinutes(30)));
        Assert.Equal(before, (await EventsAsync(a.Key)).Count);
        Assert.Equal(T0.AddHours(2), (await Store.GetDeviceAsync(token))?.LastUsed);

        // A real change is recorded.
        await ProcessAsync(Device(Id("a"), token, "phone-1", T0.AddHours(3), """{"app_version":"2.0"}"""));
        var updated = Assert.Single(await SystemEventsAsync(a.Key, "device_updated"));
        Assert.Equal("attributes_changed", Reason(updated));
        Assert.Equal("2.0", (await Store.GetDeviceAsync(token))?.Attributes["app_version"]?.GetValue<string>());
    }

    [Fact]
    public async Task UpsertDevice_21stDevice_EvictsLeastRecentlyUsed()
    {
        var ops = Enumerable.Range(1, 20).Select(i => Device(Id("a"), $"token-{i:00}", lastUsed: T0.AddMinutes(i))).ToArray();
        await ProcessAsync(ops);
        var a = await PersonAsync(Id("a"));
        Assert.Equal(20, (await TokensAsync(a.Key)).Length);
        Assert.Empty(await SystemEventsAsync(a.Key, "device_removed"));

        await ProcessAsync(Device(Id("a"), "token-21", lastUsed: T0.AddMinutes(30)));

        var tokens = await TokensAsync(a.Key);
        Assert.Equal(20, tokens.Length);
        Assert.DoesNotContain("token-01", tokens);
        Assert.Contains("token-21", tokens);
        Assert.Contains("token-02", tokens);
        var removed = Assert.Single(await SystemEventsAsync(a.Key, "device_removed"));
        Assert.Equal("device_limit", Reason(removed));
        Assert.Equal(Nudge.Core.Profiles.Device.TokenTailOf("token-01"), removed.Data["token_tail"]?.GetValue<string>());
    }

    [Fact]
    public async Task DeleteDevice_OnlyRemovesTheTargetsOwnToken()
    {
        await ProcessAsync(Device(Id("a"), "token-of-a-1111"), Device(Id("b"), "token-of-b-2222"));
        var a = await PersonAsync(Id("a"));
        var b = await PersonAsync(Id("b"));

        await ProcessAsync(Op(OpKind.DeleteDevice, Id("a")) with { Device = new DeviceData("token-of-b-2222", null, null, null, []) });

        Assert.Equal(["token-of-b-2222"], await TokensAsync(b.Key));
        Assert.Empty(await SystemEventsAsync(a.Key, "device_removed"));
        Assert.Empty(await SystemEventsAsync(b.Key, "device_removed"));

        await ProcessAsync(Op(OpKind.DeleteDevice, Id("a")) with { Device = new DeviceData("token-of-a-1111", null, null, null, []) });

        Assert.Empty(await TokensAsync(a.Key));
        Assert.Null(await Store.GetDeviceAsync("token-of-a-1111"));
        var removed = Assert.Single(await SystemEventsAsync(a.Key, "device_removed"));
        Assert.Equal("deleted_by_client", Reason(removed));

        // Deleting for somebody unknown creates nobody.
        await ProcessAsync(Op(OpKind.DeleteDevice, Id("ghost")) with { Device = new DeviceData("token-of-b-2222", null, null, null, []) });
        Assert.Equal(2, (await Store.CountAsync()).Profiles);
        Assert.Equal(["token-of-b-2222"], await TokensAsync(b.Key));
    }

    [Fact]
    public async Task TouchDevice_RefreshesLastUsedOnlyForward()
    {
        const string token = "token-touch-1234";
        await ProcessAsync(Device(Id("a"), token, lastUsed: T0.AddHours(1)), Identify(Id("b")));
        var touch = (DateTimeOffset? lastUsed) => new DeviceData(token, null, null, lastUsed, []);

        await ProcessAsync(Track(Id("a"), "Opened App") with { TouchDevice = touch(T0.AddMinutes(30)) });
        Assert.Equal(T0.AddHours(1), (await Store.GetDeviceAsync(token))?.LastUsed);

        await ProcessAsync(Track(Id("a"), "Opened App") with { TouchDevice = touch(T0.AddHours(2)) });
        Assert.Equal(T0.AddHours(2), (await Store.GetDeviceAsync(token))?.LastUsed);

        // Without a last_used, the op's own timestamp counts.
        await ProcessAsync(Identify(Id("a"), at: T0.AddHours(3)) with { TouchDevice = touch(null) });
        Assert.Equal(T0.AddHours(3), (await Store.GetDeviceAsync(token))?.LastUsed);

        // Somebody else's activity does not touch a's device.
        await ProcessAsync(Track(Id("b"), "Opened App") with { TouchDevice = touch(T0.AddHours(9)) });
        var device = await Store.GetDeviceAsync(token);
        Assert.Equal(T0.AddHours(3), device?.LastUsed);
        Assert.Equal((await PersonAsync(Id("a"))).Key, device?.ProfileKey);
    }

    // ---- merge, alias, suppression, deletion ---------------------------------------------------------------------

    [Fact]
    public async Task Merge_TwoKnownPeople_MovesEverythingAndNewerAttributeWins()
    {
        await ProcessAsync(
            Identify(Id("u1"), """{"plan":"free"}""", T0.AddHours(1)),
            Identify(Id("u1"), """{"color":"red"}""", T0.AddHours(3)),
            Identify(Id("u2"), """{"plan":"pro"}""", T0.AddHours(2)) with { SetEmail = "bob@example.com" },
            Identify(Id("u2"), """{"color":"blue","only_u2":1}""", T0),
            Track(Id("u2"), "Purchased"),
            Device(Id("u2"), "token-of-u2-9999"));
        var secondary = await PersonAsync(Id("u2"));

        await ProcessAsync(Op(OpKind.Merge, Id("u1")) with { Secondary = Id("u2") });

        var p = await PersonAsync(Id("u1"));
        Assert.Null(await Store.GetProfileAsync(secondary.Key));
        Assert.Equal(p.Key, await Store.ResolveAsync(Id("u2")));
        Assert.Equal(p.Key, await Store.ResolveAsync(Email("bob@example.com")));
        Assert.Equal(p.Key, await Store.ResolveAsync(new Identifier(IdentifierKind.CioId, secondary.Key)));
        Assert.Equal("u1", p.Id);
        Assert.Equal(["u2"], p.AliasIds);
        Assert.Equal("color=\"red\",only_u2=1,plan=\"pro\"", Live(p));
        Assert.Contains(await EventsAsync(p.Key), e => e.Name == "Purchased");
        Assert.Equal(["token-of-u2-9999"], await TokensAsync(p.Key));
        var merged = Assert.Single(await SystemEventsAsync(p.Key, "profiles_merged"));
        Assert.Equal("u2", merged.Data["merged_id"]?.GetValue<string>());
        Assert.Empty(await EventsAsync(secondary.Key));
        Assert.Equal(1, (await Store.CountAsync()).Profiles);

        // The merged-away id now addresses the primary.
        await ProcessAsync(Identify(Id("u2"), """{"via_alias":true}"""));
        Assert.Equal(1, (await Store.CountAsync()).Profiles);
        Assert.True((await PersonAsync(Id("u1"))).GetBool("via_alias"));
    }

    [Fact]
    public async Task Merge_SegmentAliasWithUnknownPreviousId_AddsItAsAnonymousId()
    {
        await ProcessAsync(Identify(Id("u1")));

        await ProcessAsync(Op(OpKind.Merge, Id("u1")) with
        {
            Source = "segment",
            Secondary = new Identifier(IdentifierKind.IdOrAnonymousId, "prev-anon"),
        });

        var p = await PersonAsync(Id("u1"));
        Assert.Equal(["prev-anon"], p.AnonymousIds);
        Assert.Equal(p.Key, await Store.ResolveAsync(Anon("prev-anon")));
        Assert.Equal(1, (await Store.CountAsync()).Profiles);

        await ProcessAsync(Track(Anon("prev-anon"), "Viewed Product"));
        Assert.Contains(await EventsAsync(p.Key), e => e.Name == "Viewed Product");
        Assert.Equal(1, (await Store.CountAsync()).Profiles);
    }

    [Fact]
    public async Task Suppress_UnknownPerson_CreatesSuppressedProfile()
    {
        var at = T0.AddMinutes(-10);
        await ProcessAsync(Op(OpKind.Suppress, Id("u1"), at));

        var p = await PersonAsync(Id("u1"));
        Assert.True(p.Suppressed);
        Assert.Equal(at, p.SuppressedAt);
        Assert.Single(await SystemEventsAsync(p.Key, "suppressed"));

        // Suppressing again changes nothing; unsuppressing clears it.
        await ProcessAsync(Op(OpKind.Suppress, Id("u1")), Op(OpKind.Unsuppress, Id("u1")));
        p = await PersonAsync(Id("u1"));
        Assert.False(p.Suppressed);
        Assert.Null(p.SuppressedAt);
        Assert.Single(await SystemEventsAsync(p.Key, "suppressed"));
        Assert.Single(await SystemEventsAsync(p.Key, "unsuppressed"));

        // Unsuppressing somebody unknown creates nobody.
        await ProcessAsync(Op(OpKind.Unsuppress, Id("u9")));
        Assert.Null(await Store.ResolveAsync(Id("u9")));
        Assert.Equal(1, (await Store.CountAsync()).Profiles);
    }

    [Fact]
    public async Task DeleteProfile_RemovesPersonDevicesAndEvents()
    {
        await ProcessAsync(
            Identify(Id("u1"), """{"plan":"pro"}""") with { SetEmail = "ann@example.com", AnonymousId = "anon-1" },
            Track(Id("u1"), "Purchased"),
            Device(Id("u1"), "token-of-u1-1111"),
            Identify(Id("u2")),
            Track(Id("u2"), "Purchased"));
        var p = await PersonAsync(Id("u1"));

        await ProcessAsync(Op(OpKind.DeleteProfile, Id("u1")));

        Assert.Null(await Store.GetProfileAsync(p.Key));
        Assert.Null(await Store.ResolveAsync(Id("u1")));
        Assert.Null(await Store.ResolveAsync(Email("ann@example.com")));
        Assert.Null(await Store.ResolveAsync(Anon("anon-1")));
        Assert.Null(await Store.GetDeviceAsync("token-of-u1-1111"));
        Assert.Empty(await EventsAsync(p.Key));
        Assert.Equal(new StoreCounts(1, 0, 1, 6), await Store.CountAsync());

        // Deleting somebody unknown is a no-op.
        await ProcessAsync(Op(OpKind.DeleteProfile, Id("u9")));
        Assert.Equal(new StoreCounts(1, 0, 1, 7), await Store.CountAsync());
    }

    [Fact]
    public async Task Track_WithoutTarget_StoresAnUnattachedEvent()
    {
        await ProcessAsync(Track(null, "Page Viewed"));

        var e = Assert.Single(await Store.GetUnattachedEventsAsync(10));
        Assert.Equal("Page Viewed", e.Name);
        Assert.Null(e.ProfileKey);
        Assert.Equal(0, (await Store.CountAsync()).Profiles);
    }

    // ---- order independence -------------------------------------------------------------------------------------

    [Fact]
    public async Task Process_SameOpsInAnyOrder_GiveTheSameKnownPerson()
    {
        var t1 = T0;
        var t2 = T0.AddMinutes(10);
        var t3 = T0.AddMinutes(5); // older than t2's update, newer than t1's
        IngestOp[] ops =
        [
            Identify(Anon("anon-1"), """{"plan":"free","color":"red","coupon":"WELCOME"}""", t1),
            Track(Anon("anon-1"), "Viewed Product", t1.AddSeconds(1)),
            Device(Anon("anon-1"), "token-anon-1234", "phone-1", t1.AddSeconds(2), at: t1.AddSeconds(2)),
            Identify(Id("u1"), """{"plan":"pro"}""", t2) with { AnonymousId = "anon-1" },
            Identify(Id("u1"), """{"plan":"basic","color":"blue","coupon":null}""", t3),
        ];

        var results = new List<(string Order, string State)>();
        foreach (var order in Permutations(Enumerable.Range(0, ops.Length).ToArray()))
        {
            results.Add((string.Join(",", order), await ResultOfAsync(order.Select(i => ops[i]).ToArray())));
        }

        Assert.Equal(120, results.Count);
        var expected = "attrs=color=\"blue\",plan=\"pro\"; devices=token-anon-1234; events=Viewed Product; profiles=1";
        Assert.All(results, r => Assert.True(r.State == expected, $"order {r.Order} gave {r.State}"));
    }

    /// <summary>Applies <paramref name="ops"/> to a fresh store and describes the known person u1.</summary>
    private async Task<string> ResultOfAsync(IngestOp[] ops)
    {
        var folder = new TempFolder();
        try
        {
            await using var store = await SqliteStore.OpenAsync(folder.File("order.db"));
            foreach (var op in ops)
            {
                await using var s = await store.OpenSessionAsync();
                await _processor.ProcessAsync(s, op);
                await s.CommitAsync();
            }

            var key = await store.ResolveAsync(Id("u1"));
            var p = key is null ? null : await store.GetProfileAsync(key);
            if (p is null)
            {
                return "u1 missing";
            }

            var devices = string.Join(",", (await store.GetDevicesAsync(p.Key)).Select(d => d.Token).Order(StringComparer.Ordinal));
            var events = string.Join(",", (await store.GetRecentEventsAsync(p.Key, 100)).Where(e => e.Type != "system").Select(e => e.Name).Order(StringComparer.Ordinal));
            var anonymous = await store.ResolveAsync(Anon("anon-1")) == p.Key ? "" : " anon-1 elsewhere";
            return $"attrs={Live(p)}; devices={devices}; events={events}; profiles={(await store.CountAsync()).Profiles}{anonymous}";
        }
        finally
        {
            folder.Delete();
        }
    }

    private static IEnumerable<int[]> Permutations(int[] items)
    {
        if (items.Length <= 1)
        {
            yield return items;
            yield break;
        }

        for (var i = 0; i < items.Length; i++)
        {
            var rest = items.Where((_, j) => j != i).ToArray();
            foreach (var tail in Permutations(rest))
            {
                yield return [items[i], .. tail];
            }
        }
    }
}
