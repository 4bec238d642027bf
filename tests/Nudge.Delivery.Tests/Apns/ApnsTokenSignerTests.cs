using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Apns;

namespace Nudge.Delivery.Tests.Apns;

public sealed class ApnsTokenSignerTests(ApnsPeerFixture peers) : IClassFixture<ApnsPeerFixture>
{
    private static readonly string Good = ApnsPeerFixture.Token(7);

    private static PushRequest Push(int n = 0) => new($"msg-{n}", Good, "ios", new PushContent("Hello", "World"));

    [Fact]
    public void GetToken_is_an_es256_jws_with_kid_iss_iat_and_a_p1363_signature()
    {
        var time = new FakeTimeProvider(ApnsPeerFixture.Start);
        using var signer = new ApnsTokenSigner(peers.Options(), time);

        var parts = signer.GetToken().Split('.');

        Assert.Equal(3, parts.Length);
        Assert.Equal("""{"alg":"ES256","kid":"ABC123DEFG"}""", Encoding.UTF8.GetString(Base64Url.DecodeFromChars(parts[0])));
        Assert.Equal(
            $$"""{"iss":"TEAM123456","iat":{{ApnsPeerFixture.Start.ToUnixTimeSeconds()}}}""",
            Encoding.UTF8.GetString(Base64Url.DecodeFromChars(parts[1])));
        var signature = Base64Url.DecodeFromChars(parts[2]);
        Assert.Equal(64, signature.Length);
        Assert.True(peers.Key.VerifyData(
            Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        Assert.DoesNotContain('=', string.Join("", parts));
    }

    [Fact]
    public void GetToken_reuses_one_token_until_the_refresh_age()
    {
        var time = new FakeTimeProvider(ApnsPeerFixture.Start);
        using var signer = new ApnsTokenSigner(peers.Options(), time);

        var first = signer.GetToken();
        time.Advance(TimeSpan.FromMinutes(50) - TimeSpan.FromSeconds(1));
        Assert.Equal(first, signer.GetToken());
        time.Advance(TimeSpan.FromSeconds(1));
        var second = signer.GetToken();

        Assert.NotEqual(first, second);
        Assert.Equal(ApnsPeerFixture.Start + TimeSpan.FromMinutes(50), signer.IssuedAt);
    }

    [Fact]
    public void GetToken_honours_a_configured_refresh_age()
    {
        var time = new FakeTimeProvider(ApnsPeerFixture.Start);
        using var signer = new ApnsTokenSigner(peers.Options(o => o.TokenRefreshMinutes = 20), time);

        var first = signer.GetToken();
        time.Advance(TimeSpan.FromMinutes(19));
        Assert.Equal(first, signer.GetToken());
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.NotEqual(first, signer.GetToken());
    }

    [Fact]
    public async Task GetToken_from_many_threads_at_the_refresh_moment_signs_once()
    {
        var time = new FakeTimeProvider(ApnsPeerFixture.Start);
        using var signer = new ApnsTokenSigner(peers.Options(), time);
        var first = signer.GetToken();
        time.Advance(TimeSpan.FromMinutes(50));

        var tokens = await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(signer.GetToken)));

        Assert.Single(tokens.Distinct());
        Assert.NotEqual(first, tokens[0]);
    }

    [Fact]
    public void TryRefreshAfterRejection_never_replaces_a_token_younger_than_20_minutes()
    {
        var time = new FakeTimeProvider(ApnsPeerFixture.Start);
        using var signer = new ApnsTokenSigner(peers.Options(), time);
        var first = signer.GetToken();

        time.Advance(TimeSpan.FromMinutes(19));
        Assert.False(signer.TryRefreshAfterRejection(first));
        Assert.Equal(first, signer.GetToken());

        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(signer.TryRefreshAfterRejection(first));
        var second = signer.GetToken();
        Assert.NotEqual(first, second);

        // A caller still holding the old token learns a newer one exists without signing again.
        Assert.True(signer.TryRefreshAfterRejection(first));
        Assert.Equal(second, signer.GetToken());
    }

    [Fact]
    public async Task SendAsync_many_sends_share_one_token()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(OutcomeKind.Sent, (await provider.SendAsync(Push(i), CancellationToken.None)).Kind);
            time.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.Single(peers.Production.Jwts);
        Assert.Single(peers.Production.Accepted.Select(n => n.Headers["authorization"]).Distinct());
    }

    [Theory]
    [InlineData(50, 3)]
    [InlineData(20, 7)]
    public async Task SendAsync_over_two_hours_refreshes_on_schedule_and_never_too_often(int refreshMinutes, int expectedTokens)
    {
        var time = peers.Fresh();
        peers.Production.EnforceTokenUpdateRate = true;
        using var provider = peers.Provider(time, o => o.TokenRefreshMinutes = refreshMinutes);

        for (var minute = 0; minute <= 120; minute++)
        {
            var outcome = await provider.SendAsync(Push(minute), CancellationToken.None);
            Assert.True(outcome.Kind == OutcomeKind.Sent, $"minute {minute}: {outcome}");
            time.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.Equal(expectedTokens, peers.Production.Jwts.Count);
    }

    [Fact]
    public async Task SendAsync_expired_provider_token_on_an_old_token_refreshes_and_retries_once()
    {
        var time = peers.Fresh();
        peers.Production.EnforceTokenUpdateRate = true;
        using var provider = peers.Provider(time);
        await provider.SendAsync(Push(1), CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(25));
        peers.Production.Faults[Good] = PeerFault.Reply(403, "ExpiredProviderToken", times: 1);

        var outcome = await provider.SendAsync(Push(2), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal(2, peers.Production.Jwts.Count);
        Assert.Equal(3, peers.Production.RequestCount);
    }

    [Fact]
    public async Task SendAsync_expired_provider_token_twice_is_transient_after_one_refresh()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        await provider.SendAsync(Push(1), CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(25));
        peers.Production.Faults[Good] = PeerFault.Reply(403, "ExpiredProviderToken");

        var outcome = await provider.SendAsync(Push(2), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderAuth, "ExpiredProviderToken"), outcome);
        Assert.Equal(3, peers.Production.RequestCount);
    }

    [Fact]
    public async Task SendAsync_expired_provider_token_on_a_young_token_is_transient_without_refresh()
    {
        // APNs' clock is 61 minutes ahead of ours: every token we sign looks expired to it.
        var time = peers.Fresh();
        var apnsClock = new FakeTimeProvider(ApnsPeerFixture.Start + TimeSpan.FromMinutes(61));
        peers.Production.Clock = apnsClock;
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(Push(1), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderAuth, "ExpiredProviderToken"), outcome);
        Assert.Equal(1, peers.Production.RequestCount);
    }
}
