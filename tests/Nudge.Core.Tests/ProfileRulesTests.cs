using System.Text.Json.Nodes;
using Nudge.Core.Profiles;

namespace Nudge.Core.Tests;

public class ProfileRulesTests
{
    private static readonly DateTimeOffset T1 = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset T2 = T1.AddMinutes(1);
    private static readonly DateTimeOffset T3 = T1.AddMinutes(2);
    private static readonly DateTimeOffset MergeTime = new(2024, 6, 1, 0, 0, 0, TimeSpan.Zero);

    private static JsonObject Attrs(string json) => JsonNode.Parse(json)!.AsObject();

    private static IReadOnlyList<string> Apply(Profile p, string json, DateTimeOffset at, int max = 300) =>
        ProfileRules.ApplyAttributes(p, Attrs(json), at, "track", null, max);

    private static Profile NewProfile(string key) => new() { Key = key, CreatedAt = T1, UpdatedAt = T1 };

    /// <summary>Live attributes as a JSON object in name order.</summary>
    private static string Live(Profile p) =>
        new JsonObject(p.LiveAttributes().Select(a => KeyValuePair.Create(a.Key, (JsonNode?)a.Value.DeepClone()))).ToJsonString();

    /// <summary>Every attribute including tombstones, with its timestamp.</summary>
    private static string All(Profile p) =>
        string.Join(";", p.Attributes.Select(a => $"{a.Key}={a.Value.Value?.ToJsonString() ?? "null"}@{a.Value.SetAtMs}"));

    private static void Set(Profile p, string name, JsonNode? value, DateTimeOffset at) =>
        p.Attributes[name] = new AttributeValue { Value = value, SetAtMs = at.ToUnixTimeMilliseconds() };

    // ---- ApplyAttributes ---------------------------------------------------------------------------------------

    [Fact]
    public void ApplyAttributes_NewProfile_SetsValuesWithTimestamp()
    {
        var p = NewProfile("k");

        var rejected = Apply(p, """{"plan":"pro","age":30}""", T1);

        Assert.Empty(rejected);
        Assert.Equal("""{"age":30,"plan":"pro"}""", Live(p));
        Assert.Equal(T1.ToUnixTimeMilliseconds(), p.Attributes["plan"].SetAtMs);
    }

    [Fact]
    public void ApplyAttributes_NewerUpdate_Replaces()
    {
        var p = NewProfile("k");
        Apply(p, """{"plan":"free"}""", T1);

        Apply(p, """{"plan":"pro"}""", T2);

        Assert.Equal("pro", p.GetString("plan"));
        Assert.Equal(T2.ToUnixTimeMilliseconds(), p.Attributes["plan"].SetAtMs);
    }

    [Fact]
    public void ApplyAttributes_OlderUpdate_Ignored()
    {
        var p = NewProfile("k");
        Apply(p, """{"plan":"pro"}""", T2);

        Apply(p, """{"plan":"free","age":5}""", T1);

        Assert.Equal("pro", p.GetString("plan"));
        Assert.Equal(T2.ToUnixTimeMilliseconds(), p.Attributes["plan"].SetAtMs);
        Assert.Equal("""{"age":5,"plan":"pro"}""", Live(p));
    }

    [Fact]
    public void ApplyAttributes_SameTimestamp_SameResultInEitherOrder()
    {
        var a = NewProfile("a");
        Apply(a, """{"plan":"alpha"}""", T1);
        Apply(a, """{"plan":"beta"}""", T1);
        var b = NewProfile("b");
        Apply(b, """{"plan":"beta"}""", T1);
        Apply(b, """{"plan":"alpha"}""", T1);

        Assert.Equal("beta", a.GetString("plan"));
        Assert.Equal(All(a), All(b));
    }

    [Fact]
    public void ApplyAttributes_SameTimestampValueAndRemoval_ValueWinsInEitherOrder()
    {
        var a = NewProfile("a");
        Apply(a, """{"plan":"pro"}""", T1);
        Apply(a, """{"plan":null}""", T1);
        var b = NewProfile("b");
        Apply(b, """{"plan":null}""", T1);
        Apply(b, """{"plan":"pro"}""", T1);

        Assert.Equal("pro", a.GetString("plan"));
        Assert.Equal(All(a), All(b));
    }

    [Fact]
    public void ApplyAttributes_Null_LeavesTombstone()
    {
        var p = NewProfile("k");
        Apply(p, """{"plan":"pro","age":3}""", T1);

        Apply(p, """{"plan":null}""", T2);

        Assert.True(p.Attributes["plan"].IsRemoved);
        Assert.Equal(T2.ToUnixTimeMilliseconds(), p.Attributes["plan"].SetAtMs);
        Assert.Null(p.Get("plan"));
        Assert.Equal("""{"age":3}""", Live(p));
    }

    [Fact]
    public void ApplyAttributes_OlderUpdateAfterRemoval_DoesNotResurrect()
    {
        var p = NewProfile("k");
        Apply(p, """{"plan":null}""", T2);

        Apply(p, """{"plan":"free"}""", T1);

        Assert.Null(p.Get("plan"));
        Assert.Equal("{}", Live(p));
    }

    [Fact]
    public void ApplyAttributes_NewerUpdateAfterRemoval_Restores()
    {
        var p = NewProfile("k");
        Apply(p, """{"plan":null}""", T2);

        Apply(p, """{"plan":"free"}""", T3);

        Assert.Equal("free", p.GetString("plan"));
    }

    [Fact]
    public void ApplyAttributes_SmsConsentChange_AppendsHistoryAndSetsConsentAt()
    {
        var p = NewProfile("k");

        ProfileRules.ApplyAttributes(p, Attrs("""{"sms_consent":true}"""), T2, "segment", "203.0.113.7", 300);

        var change = Assert.Single(p.ConsentHistory);
        Assert.Equal("sms_consent", change.Field);
        Assert.True(change.Value!.GetValue<bool>());
        Assert.Equal(T2, change.At);
        Assert.Equal("segment", change.Source);
        Assert.Equal("203.0.113.7", change.Ip);
        Assert.Equal("2024-01-01T00:01:00.0000000Z", p.GetString("sms_consent_at"));
        Assert.Equal(T2.ToUnixTimeMilliseconds(), p.Attributes["sms_consent_at"].SetAtMs);
        Assert.True(p.Consent.SmsConsent);
        Assert.Equal("2024-01-01T00:01:00.0000000Z", p.Consent.SmsConsentAt);
    }

    [Fact]
    public void ApplyAttributes_SmsConsentUnchanged_NoNewHistory()
    {
        var p = NewProfile("k");
        Apply(p, """{"sms_consent":true}""", T1);

        Apply(p, """{"sms_consent":true}""", T2);

        Assert.Single(p.ConsentHistory);
        Assert.Equal("2024-01-01T00:00:00.0000000Z", p.GetString("sms_consent_at"));
    }

    [Fact]
    public void ApplyAttributes_SmsConsentWithdrawn_SecondHistoryEntry()
    {
        var p = NewProfile("k");
        Apply(p, """{"sms_consent":true}""", T1);

        Apply(p, """{"sms_consent":false}""", T2);

        Assert.Equal(2, p.ConsentHistory.Count);
        Assert.False(p.ConsentHistory[1].Value!.GetValue<bool>());
        Assert.False(p.Consent.SmsConsent);
        Assert.Equal("2024-01-01T00:01:00.0000000Z", p.GetString("sms_consent_at"));
    }

    [Fact]
    public void ApplyAttributes_ExplicitSmsConsentAt_Kept()
    {
        var p = NewProfile("k");

        Apply(p, """{"sms_consent":true,"sms_consent_at":"2023-05-05T00:00:00Z"}""", T1);

        Assert.Equal("2023-05-05T00:00:00Z", p.GetString("sms_consent_at"));
    }

    [Fact]
    public void ApplyAttributes_Unsubscribed_TrackedButNoSmsConsentAt()
    {
        var p = NewProfile("k");

        Apply(p, """{"unsubscribed":true,"plan":"pro"}""", T1);

        var change = Assert.Single(p.ConsentHistory);
        Assert.Equal("unsubscribed", change.Field);
        Assert.Null(p.Get("sms_consent_at"));
        Assert.True(p.Consent.EmailUnsubscribed);
    }

    [Fact]
    public void ApplyAttributes_OverMaxAttributes_ReturnsRejectedNames()
    {
        var p = NewProfile("k");
        Apply(p, """{"a":1,"b":2}""", T1, max: 3);

        var rejected = Apply(p, """{"a":10,"c":3,"d":4,"e":5}""", T2, max: 3);

        string[] expected = ["d", "e"];
        Assert.Equal(expected, rejected);
        Assert.Equal("""{"a":10,"b":2,"c":3}""", Live(p));
    }

    [Fact]
    public void ApplyAttributes_RemovalFreesRoomForNewAttribute()
    {
        var p = NewProfile("k");
        Apply(p, """{"a":1,"b":2}""", T1, max: 2);

        var rejected = Apply(p, """{"a":null,"c":3}""", T2, max: 2);

        Assert.Empty(rejected);
        Assert.Equal("""{"b":2,"c":3}""", Live(p));
    }

    [Fact]
    public void ApplyAttributes_AtMaxAttributes_RemovalOfUnknownNotRejected()
    {
        var p = NewProfile("k");
        Apply(p, """{"a":1}""", T1, max: 1);

        var rejected = Apply(p, """{"zz":null}""", T2, max: 1);

        Assert.Empty(rejected);
    }

    // ---- Merge -------------------------------------------------------------------------------------------------

    [Fact]
    public void Merge_Attributes_NewerWinsInBothDirections()
    {
        var primary = NewProfile("p");
        Set(primary, "a", "primary-new", T2);
        Set(primary, "b", "primary-old", T1);
        Set(primary, "only_primary", 1, T1);
        var secondary = NewProfile("s");
        Set(secondary, "a", "secondary-old", T1);
        Set(secondary, "b", "secondary-new", T2);
        Set(secondary, "only_secondary", 2, T1);

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.Equal("""{"a":"primary-new","b":"secondary-new","only_primary":1,"only_secondary":2}""", Live(primary));
        Assert.Equal(T2.ToUnixTimeMilliseconds(), primary.Attributes["b"].SetAtMs);
        Assert.Equal(MergeTime, primary.UpdatedAt);
    }

    [Fact]
    public void Merge_NewerTombstone_RemovesPrimaryValue()
    {
        var primary = NewProfile("p");
        Set(primary, "plan", "pro", T1);
        var secondary = NewProfile("s");
        Set(secondary, "plan", null, T2);

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.Null(primary.Get("plan"));
        Assert.Equal(T2.ToUnixTimeMilliseconds(), primary.Attributes["plan"].SetAtMs);
    }

    [Fact]
    public void Merge_CopiesValuesNotReferences()
    {
        var primary = NewProfile("p");
        var secondary = NewProfile("s");
        Set(secondary, "tags", new JsonArray("a"), T1);

        ProfileRules.Merge(primary, secondary, MergeTime);
        secondary.Attributes["tags"].Value!.AsArray().Add("b");

        Assert.Equal("""["a"]""", primary.Get("tags")!.ToJsonString());
    }

    [Fact]
    public void Merge_SecondaryId_BecomesAliasWhenPrimaryHasId()
    {
        var primary = NewProfile("p");
        primary.Id = "u1";
        var secondary = NewProfile("s");
        secondary.Id = "u2";
        secondary.AliasIds = ["u0"];

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.Equal("u1", primary.Id);
        string[] expected = ["u0", "u2"];
        Assert.Equal(expected, primary.AliasIds);
    }

    [Fact]
    public void Merge_PrimaryWithoutId_AdoptsSecondaryId()
    {
        var primary = NewProfile("p");
        var secondary = NewProfile("s");
        secondary.Id = "u2";

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.Equal("u2", primary.Id);
        Assert.Empty(primary.AliasIds);
    }

    [Fact]
    public void Merge_PrimaryWithoutEmail_AdoptsSecondaryEmail()
    {
        var primary = NewProfile("p");
        primary.Id = "u1";
        var secondary = NewProfile("s");
        secondary.Email = "b@x.io";

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.Equal("b@x.io", primary.Email);
        Assert.Empty(primary.AliasEmails);
    }

    [Fact]
    public void Merge_BothHaveEmails_SecondaryEmailBecomesAlias()
    {
        var primary = NewProfile("p");
        primary.Email = "a@x.io";
        var secondary = NewProfile("s");
        secondary.Email = "b@x.io";

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.Equal("a@x.io", primary.Email);
        Assert.Equal("b@x.io", Assert.Single(primary.AliasEmails));
    }

    [Fact]
    public void Merge_AnonymousIds_UnionedAndSorted()
    {
        var primary = NewProfile("p");
        primary.AnonymousIds = ["zeta", "alpha"];
        var secondary = NewProfile("s");
        secondary.AnonymousIds = ["mid", "alpha", "beta"];

        ProfileRules.Merge(primary, secondary, MergeTime);

        string[] expected = ["alpha", "beta", "mid", "zeta"];
        Assert.Equal(expected, primary.AnonymousIds);
    }

    [Fact]
    public void Merge_MergedFrom_RecordsSecondaryAndItsLineage()
    {
        var primary = NewProfile("p");
        var secondary = NewProfile("s");
        secondary.MergedFrom = ["old"];

        ProfileRules.Merge(primary, secondary, MergeTime);

        string[] expected = ["old", "s"];
        Assert.Equal(expected, primary.MergedFrom);
    }

    [Fact]
    public void Merge_SecondarySuppressed_CarriedToPrimary()
    {
        var primary = NewProfile("p");
        var secondary = NewProfile("s");
        secondary.Suppressed = true;
        secondary.SuppressedAt = T2;

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.True(primary.Suppressed);
        Assert.Equal(T2, primary.SuppressedAt);
    }

    [Fact]
    public void Merge_PrimarySuppressed_KeepsOwnSuppressedAt()
    {
        var primary = NewProfile("p");
        primary.Suppressed = true;
        primary.SuppressedAt = T1;
        var secondary = NewProfile("s");
        secondary.Suppressed = true;
        secondary.SuppressedAt = T3;

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.True(primary.Suppressed);
        Assert.Equal(T1, primary.SuppressedAt);
    }

    [Theory]
    [InlineData(2, 1, 1)]
    [InlineData(1, 2, 1)]
    public void Merge_CreatedAt_IsEarliest(int primaryDay, int secondaryDay, int expectedDay)
    {
        var primary = NewProfile("p");
        primary.CreatedAt = T1.AddDays(primaryDay);
        var secondary = NewProfile("s");
        secondary.CreatedAt = T1.AddDays(secondaryDay);

        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.Equal(T1.AddDays(expectedDay), primary.CreatedAt);
    }

    [Fact]
    public void Merge_ConsentHistory_UnionedInTimeOrder()
    {
        var primary = NewProfile("p");
        Apply(primary, """{"sms_consent":true}""", T2);
        var secondary = NewProfile("s");
        Apply(secondary, """{"unsubscribed":true}""", T1);

        ProfileRules.Merge(primary, secondary, MergeTime);

        string[] expected = ["unsubscribed", "sms_consent"];
        Assert.Equal(expected, primary.ConsentHistory.Select(c => c.Field).ToArray());
    }

    private static Profile[] OverlappingProfiles()
    {
        var a = NewProfile("a");
        a.Id = "ua";
        Set(a, "plan", "free", T1);
        Set(a, "color", "red", T3);
        Set(a, "tie", "m", T2);
        Set(a, "gone", "here", T1);

        var b = NewProfile("b");
        b.AnonymousIds = ["anon-b"];
        Set(b, "plan", "pro", T2);
        Set(b, "color", "blue", T1);
        Set(b, "tie", "z", T2);
        Set(b, "gone", null, T2);
        Set(b, "only_b", 1, T1);

        var c = NewProfile("c");
        c.AnonymousIds = ["anon-c"];
        Set(c, "plan", "enterprise", T3);
        Set(c, "color", "green", T2);
        Set(c, "tie", "a", T2);
        Set(c, "gone", "back", T1);
        Set(c, "only_c", true, T1);
        return [a, b, c];
    }

    [Fact]
    public void Merge_OrderIndependence_BThenCEqualsCThenB()
    {
        var first = OverlappingProfiles();
        ProfileRules.Merge(first[0], first[1], MergeTime);
        ProfileRules.Merge(first[0], first[2], MergeTime);

        var second = OverlappingProfiles();
        ProfileRules.Merge(second[0], second[2], MergeTime);
        ProfileRules.Merge(second[0], second[1], MergeTime);

        Assert.Equal(Live(first[0]), Live(second[0]));
        Assert.Equal("""{"color":"red","only_b":1,"only_c":true,"plan":"enterprise","tie":"z"}""", Live(first[0]));
        Assert.Equal(All(first[0]), All(second[0]));
        Assert.Equal(first[0].AnonymousIds, second[0].AnonymousIds);
        Assert.Equal(first[0].MergedFrom, second[0].MergedFrom);
    }

    [Fact]
    public void Merge_OrderIndependence_MergingMergedProfileEqualsSequential()
    {
        var sequential = OverlappingProfiles();
        ProfileRules.Merge(sequential[0], sequential[1], MergeTime);
        ProfileRules.Merge(sequential[0], sequential[2], MergeTime);

        var nested = OverlappingProfiles();
        ProfileRules.Merge(nested[1], nested[2], MergeTime);
        ProfileRules.Merge(nested[0], nested[1], MergeTime);

        Assert.Equal(Live(sequential[0]), Live(nested[0]));
        Assert.Equal(All(sequential[0]), All(nested[0]));
    }

    [Fact]
    public void MergeAndApply_SameUpdatesGiveSameAttributes()
    {
        // One person receiving both updates directly vs two people each receiving one, then merged.
        var direct = NewProfile("d");
        Apply(direct, """{"plan":"pro","color":"red"}""", T2);
        Apply(direct, """{"plan":"free","size":"L"}""", T1);

        var primary = NewProfile("p");
        Apply(primary, """{"plan":"free","size":"L"}""", T1);
        var secondary = NewProfile("s");
        Apply(secondary, """{"plan":"pro","color":"red"}""", T2);
        ProfileRules.Merge(primary, secondary, MergeTime);

        Assert.Equal(Live(direct), Live(primary));
        Assert.Equal("""{"color":"red","plan":"pro","size":"L"}""", Live(primary));
    }

    // ---- NewKey ------------------------------------------------------------------------------------------------

    [Fact]
    public void NewKey_IsDeterministicAnd20LowerHexChars()
    {
        var k1 = ProfileRules.NewKey(new Identifier(IdentifierKind.Id, "u1"));
        var k2 = ProfileRules.NewKey(new Identifier(IdentifierKind.Id, "u1"));

        Assert.Equal(k1, k2);
        Assert.Equal(20, k1.Length);
        Assert.Matches("^[0-9a-f]{20}$", k1);
    }

    [Fact]
    public void NewKey_DependsOnKindAndValue()
    {
        var byId = ProfileRules.NewKey(new Identifier(IdentifierKind.Id, "same"));
        var byAnon = ProfileRules.NewKey(new Identifier(IdentifierKind.AnonymousId, "same"));
        var other = ProfileRules.NewKey(new Identifier(IdentifierKind.Id, "other"));

        Assert.NotEqual(byId, byAnon);
        Assert.NotEqual(byId, other);
    }

    [Fact]
    public void NewKey_KnownValue()
    {
        // First 10 bytes of SHA-256("Id\nu1"), hex, lower case.
        var hash = System.Security.Cryptography.SHA256.HashData("Id\nu1"u8);
        var expected = Convert.ToHexStringLower(hash, 0, 10);

        Assert.Equal(expected, ProfileRules.NewKey(new Identifier(IdentifierKind.Id, "u1")));
    }
}
