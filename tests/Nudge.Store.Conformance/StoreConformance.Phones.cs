using System.Text.Json.Nodes;
using Nudge.Core.Profiles;
using Xunit;

namespace Nudge.Store.Conformance;

/// <summary>Finding people by phone number (inbound SMS keywords): sms_phone or phone, as stored, following every write.</summary>
public abstract partial class StoreConformance
{
    private static Profile WithPhones(string key, string? smsPhone, string? phone)
    {
        var p = NewProfile(key, "u-" + key);
        var attrs = new JsonObject();
        if (smsPhone is not null)
        {
            attrs[Consent.SmsPhoneAttr] = smsPhone;
        }

        if (phone is not null)
        {
            attrs[Consent.PhoneAttr] = phone;
        }

        ProfileRules.ApplyAttributes(p, attrs, T0, "test", null, 300);
        return p;
    }

    [Fact]
    public async Task FindProfilesByPhone_MatchesSmsPhoneOrPhone_EveryOwnerInKeyOrder()
    {
        await PutAsync(WithPhones("k2", "+14155550100", null), WithPhones("k1", null, "+14155550100"),
            WithPhones("k3", "+14155550199", "+14155550100"), WithPhones("k4", "+14155550199", null), NewProfile("k5", "u-k5"));

        IReadOnlyList<string> found = [];
        IReadOnlyList<string> other = [];
        IReadOnlyList<string> none = [];
        await CommitAsync(async s =>
        {
            found = await s.FindProfilesByPhoneAsync("+14155550100");
            other = await s.FindProfilesByPhoneAsync("+14155550199");
            none = await s.FindProfilesByPhoneAsync("+14155550123");
        });

        Assert.Equal(["k1", "k2", "k3"], found);
        Assert.Equal(["k3", "k4"], other);
        Assert.Empty(none);
    }

    [Fact]
    public async Task FindProfilesByPhone_FollowsChangesRemovalsAndDeletes()
    {
        await PutAsync(WithPhones("k1", "+14155550100", null), WithPhones("k2", "+14155550100", null));
        var p1 = await GetAsync("k1");
        ProfileRules.ApplyAttributes(p1, new JsonObject { [Consent.SmsPhoneAttr] = "+14155550111" }, T0.AddMinutes(1), "test", null, 300);
        await PutAsync(p1);
        await CommitAsync(s => s.DeleteProfileAsync("k2"));
        var p3 = WithPhones("k3", "+14155550100", null);
        await PutAsync(p3);
        p3 = await GetAsync("k3");
        ProfileRules.ApplyAttributes(p3, new JsonObject { [Consent.SmsPhoneAttr] = null }, T0.AddMinutes(1), "test", null, 300);
        await PutAsync(p3);

        IReadOnlyList<string> old = [];
        IReadOnlyList<string> changed = [];
        await CommitAsync(async s =>
        {
            old = await s.FindProfilesByPhoneAsync("+14155550100");
            changed = await s.FindProfilesByPhoneAsync("+14155550111");
        });

        Assert.Empty(old);
        Assert.Equal(["k1"], changed);
    }

    [Fact]
    public async Task FindProfilesByPhone_SeesTheSessionsOwnWrites()
    {
        await using var s = await Store.OpenSessionAsync();
        await s.PutProfileAsync(WithPhones("k1", "+447700900123", null));

        Assert.Equal(["k1"], await s.FindProfilesByPhoneAsync("+447700900123"));
        await s.CommitAsync();
    }
}
