using System.Text.Json;
using Nudge.Delivery.Apns;

namespace Nudge.Delivery.Tests.Apns;

public sealed class ApnsProviderTests(ApnsPeerFixture peers) : IClassFixture<ApnsPeerFixture>
{
    private static readonly string Good = ApnsPeerFixture.Token(1);

    private static PushRequest Push(string token, PushContent? content = null, string? environment = null, string messageId = "msg-1") =>
        new(messageId, token, "ios", content ?? new PushContent("Hello", "World"), environment);

    [Fact]
    public async Task SendAsync_alert_puts_documented_headers_and_payload_on_the_wire()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        var content = new PushContent(
            "Hi",
            "Welcome back",
            DeepLink: "myapp://home?tab=1",
            Image: "https://cdn.example.com/x.png",
            Data: new Dictionary<string, string> { ["campaign"] = "c1", ["link"] = "ignored" },
            CollapseId: "welcome",
            TimeToLive: TimeSpan.FromHours(1),
            HighPriority: true,
            Sound: "default",
            Badge: 3);

        var outcome = await provider.SendAsync(Push(Good, content), CancellationToken.None);

        var expectedId = ApnsProvider.DeriveApnsId("msg-1", Good);
        Assert.Equal(SendOutcome.Sent(expectedId), outcome);
        var seen = Assert.Single(peers.Production.Accepted);
        Assert.Empty(peers.Sandbox.Accepted);
        Assert.Equal("HTTP/2", seen.Protocol);
        Assert.Equal("/3/device/" + Good, seen.Path);
        Assert.StartsWith("bearer ", seen.Headers["authorization"], StringComparison.Ordinal);
        Assert.Equal(ApnsPeerFixture.BundleId, seen.Headers["apns-topic"]);
        Assert.Equal("alert", seen.Headers["apns-push-type"]);
        Assert.Equal("10", seen.Headers["apns-priority"]);
        Assert.Equal(expectedId, seen.Headers["apns-id"]);
        Assert.Equal((ApnsPeerFixture.Start + TimeSpan.FromHours(1)).ToUnixTimeSeconds().ToString(), seen.Headers["apns-expiration"]);
        Assert.Equal("welcome", seen.Headers["apns-collapse-id"]);
        Assert.Equal(
            """{"aps":{"alert":{"title":"Hi","body":"Welcome back"},"sound":"default","badge":3,"mutable-content":1},"delivery_id":"msg-1","link":"myapp://home?tab=1","deep_link":"myapp://home?tab=1","image":"https://cdn.example.com/x.png","campaign":"c1"}""",
            seen.Payload);
    }

    [Fact]
    public async Task SendAsync_without_title_body_or_badge_is_a_background_push_at_priority_5()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(
            Push(Good, new PushContent(null, null, Data: new Dictionary<string, string> { ["sync"] = "1" }, HighPriority: true)), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        var seen = Assert.Single(peers.Production.Accepted);
        Assert.Equal("background", seen.Headers["apns-push-type"]);
        Assert.Equal("5", seen.Headers["apns-priority"]);
        Assert.False(seen.Headers.ContainsKey("apns-expiration"));
        Assert.False(seen.Headers.ContainsKey("apns-collapse-id"));
        Assert.Equal("""{"aps":{"content-available":1},"delivery_id":"msg-1","sync":"1"}""", seen.Payload);
    }

    [Fact]
    public async Task SendAsync_badge_only_is_a_silent_alert_push()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        await provider.SendAsync(Push(Good, new PushContent(null, null, Badge: 0)), CancellationToken.None);

        var seen = Assert.Single(peers.Production.Accepted);
        Assert.Equal("alert", seen.Headers["apns-push-type"]);
        Assert.Equal("""{"aps":{"badge":0},"delivery_id":"msg-1"}""", seen.Payload);
    }

    [Fact]
    public async Task SendAsync_normal_priority_and_zero_ttl_send_priority_5_and_expiration_0()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(
            Push(Good, new PushContent("t", "b", TimeToLive: TimeSpan.Zero, HighPriority: false, Sound: null)), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        var seen = Assert.Single(peers.Production.Accepted);
        Assert.Equal("alert", seen.Headers["apns-push-type"]);
        Assert.Equal("5", seen.Headers["apns-priority"]);
        Assert.Equal("0", seen.Headers["apns-expiration"]);
        Assert.Equal("""{"aps":{"alert":{"title":"t","body":"b"}},"delivery_id":"msg-1"}""", seen.Payload);
    }

    [Fact]
    public async Task SendAsync_keeps_non_ascii_text_as_utf8()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        await provider.SendAsync(Push(Good, new PushContent("Grüße", "日本語 \"q\"", Sound: null)), CancellationToken.None);

        var seen = Assert.Single(peers.Production.Accepted);
        Assert.Contains("Grüße", seen.Payload, StringComparison.Ordinal);
        Assert.Contains("日本語 \\\"q\\\"", seen.Payload, StringComparison.Ordinal);
    }

    [Fact]
    public void DeriveApnsId_is_a_stable_uuid_per_message_and_device()
    {
        var id = ApnsProvider.DeriveApnsId("msg-1", Good);

        Assert.Equal(id, ApnsProvider.DeriveApnsId("msg-1", Good));
        Assert.NotEqual(id, ApnsProvider.DeriveApnsId("msg-2", Good));
        Assert.NotEqual(id, ApnsProvider.DeriveApnsId("msg-1", ApnsPeerFixture.Token(2)));
        Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", id);
    }

    [Fact]
    public async Task SendAsync_retry_of_the_same_message_carries_the_same_apns_id()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.Faults[Good] = PeerFault.Reply(503, "ServiceUnavailable", times: 1);

        var first = await provider.SendAsync(Push(Good), CancellationToken.None);
        var second = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(OutcomeKind.Transient, first.Kind);
        Assert.Equal(OutcomeKind.Sent, second.Kind);
        Assert.Equal(ApnsProvider.DeriveApnsId("msg-1", Good), peers.Production.Accepted.Single().Headers["apns-id"]);
    }

    [Theory]
    [InlineData("sandbox", "sandbox")]
    [InlineData("development", "sandbox")]
    [InlineData("Production", "production")]
    [InlineData(null, "production")]
    public async Task SendAsync_picks_the_host_from_the_device_environment(string? environment, string expectedHost)
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(Push(Good, environment: environment), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Single(expectedHost == "sandbox" ? peers.Sandbox.Accepted : peers.Production.Accepted);
        Assert.Empty(expectedHost == "sandbox" ? peers.Production.Accepted : peers.Sandbox.Accepted);
    }

    [Fact]
    public async Task SendAsync_without_device_environment_uses_the_configured_default()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time, o => o.DefaultEnvironment = "sandbox");

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Single(peers.Sandbox.Accepted);
    }

    [Fact]
    public async Task SendAsync_unknown_device_environment_is_permanent_without_a_request()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(Push(Good, environment: "staging"), CancellationToken.None);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderRejected, outcome.Reason);
        Assert.Equal(0, peers.Production.RequestCount + peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_unregistered_token_is_invalid_token()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.Unregistered[Good] = 0;

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.InvalidToken("Unregistered"), outcome);
        Assert.Equal(1, peers.Production.RequestCount);
        Assert.Equal(0, peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_bad_device_token_in_production_is_retried_once_in_sandbox()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.ForeignTokens[Good] = 0;

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal(ApnsProvider.DeriveApnsId("msg-1", Good), outcome.ProviderId);
        Assert.Contains("sandbox", outcome.Detail, StringComparison.Ordinal);
        Assert.Equal((Good, 400, "BadDeviceToken"), Assert.Single(peers.Production.Answers));
        Assert.Single(peers.Sandbox.Accepted);
    }

    [Fact]
    public async Task SendAsync_bad_device_token_in_sandbox_is_retried_once_in_production()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Sandbox.ForeignTokens[Good] = 0;

        var outcome = await provider.SendAsync(Push(Good, environment: "sandbox"), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Single(peers.Production.Accepted);
        Assert.Equal(1, peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_bad_device_token_in_both_environments_is_invalid_token_after_two_requests()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.ForeignTokens[Good] = 0;
        peers.Sandbox.ForeignTokens[Good] = 0;

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.InvalidToken("BadDeviceToken"), outcome);
        Assert.Equal(1, peers.Production.RequestCount);
        Assert.Equal(1, peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_bad_device_token_is_not_retried_when_both_environments_share_a_host()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time, o => o.SandboxUrl = o.ProductionUrl);
        peers.Production.ForeignTokens[Good] = 0;

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.InvalidToken("BadDeviceToken"), outcome);
        Assert.Equal(1, peers.Production.RequestCount);
    }

    [Fact]
    public async Task SendAsync_bad_device_token_then_unregistered_in_the_other_environment_is_invalid_token()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.ForeignTokens[Good] = 0;
        peers.Sandbox.Unregistered[Good] = 0;

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.InvalidToken("Unregistered"), outcome);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not-a-token")]
    [InlineData("../../4/admin")]
    public async Task SendAsync_malformed_token_is_invalid_without_a_request(string token)
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(Push(token), CancellationToken.None);

        Assert.Equal(OutcomeKind.InvalidToken, outcome.Kind);
        Assert.Equal(DeliveryReason.InvalidToken, outcome.Reason);
        Assert.Equal(0, peers.Production.RequestCount + peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_short_hex_token_is_sent_and_apns_says_bad_device_token()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(Push("abcd1234"), CancellationToken.None);

        Assert.Equal(SendOutcome.InvalidToken("BadDeviceToken"), outcome);
        Assert.Equal(1, peers.Production.RequestCount);
        Assert.Equal(1, peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_device_token_for_another_topic_is_permanent_and_not_retried()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.OtherTopicTokens[Good] = 0;

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderRejected, "DeviceTokenNotForTopic"), outcome);
        Assert.Equal(1, peers.Production.RequestCount);
        Assert.Equal(0, peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_wrong_bundle_id_is_a_provider_auth_failure()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time, o => o.BundleId = "com.example.other");

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "BadTopic"), outcome);
    }

    [Fact]
    public async Task SendAsync_key_apple_does_not_know_is_invalid_provider_token()
    {
        var time = peers.Fresh();
        using var otherKey = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        using var provider = peers.Provider(time, o => o.PrivateKey = otherKey.ExportPkcs8PrivateKeyPem());

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "InvalidProviderToken"), outcome);
        Assert.Equal(1, peers.Production.RequestCount);
    }

    [Fact]
    public async Task SendAsync_wrong_key_id_is_invalid_provider_token()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time, o => o.KeyId = "ZZZ123DEFG");

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "InvalidProviderToken"), outcome);
    }

    [Fact]
    public async Task SendAsync_too_many_requests_is_rate_limited_with_retry_after()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.Faults[Good] = PeerFault.Reply(429, "TooManyRequests", retryAfter: "30");

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.RateLimited(TimeSpan.FromSeconds(30), "TooManyRequests"), outcome);
    }

    [Fact]
    public async Task SendAsync_shutdown_is_transient_with_retry_after()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.Faults[Good] = PeerFault.Reply(503, "Shutdown", retryAfter: "120");

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "Shutdown", TimeSpan.FromSeconds(120)), outcome);
    }

    [Fact]
    public async Task SendAsync_stream_reset_is_transient_and_detail_does_not_hold_the_token()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.Faults[Good] = new PeerFault { Abort = true, Times = 1 };

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
        Assert.DoesNotContain(Good, outcome.Detail, StringComparison.OrdinalIgnoreCase);

        // The connection survives for the next send.
        Assert.Equal(OutcomeKind.Sent, (await provider.SendAsync(Push(Good), CancellationToken.None)).Kind);
    }

    [Fact]
    public async Task SendAsync_unreachable_host_is_transient()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time, o => o.ProductionUrl = "https://127.0.0.1:1");

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
    }

    [Fact]
    public async Task SendAsync_no_answer_within_the_request_timeout_is_transient_timeout()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time, o => o.RequestTimeoutSeconds = 10);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fault = new PeerFault { HoldUntil = release.Task };
        peers.Production.Faults[Good] = fault;
        try
        {
            var send = provider.SendAsync(Push(Good), CancellationToken.None);
            await fault.Arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
            time.Advance(TimeSpan.FromSeconds(9));
            Assert.False(send.IsCompleted);
            time.Advance(TimeSpan.FromSeconds(2));

            var outcome = await send.WaitAsync(TimeSpan.FromSeconds(30));

            Assert.Equal(OutcomeKind.Transient, outcome.Kind);
            Assert.Equal(DeliveryReason.Timeout, outcome.Reason);
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task SendAsync_caller_cancellation_throws_operation_canceled()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fault = new PeerFault { HoldUntil = release.Task };
        peers.Production.Faults[Good] = fault;
        using var cts = new CancellationTokenSource();
        try
        {
            var send = provider.SendAsync(Push(Good), cts.Token);
            await fault.Arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await cts.CancelAsync();

            var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(cts.Token, thrown.CancellationToken);
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task SendAsync_payload_over_4096_bytes_is_rejected_without_a_request()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(Push(Good, new PushContent("t", new string('x', 4100))), CancellationToken.None);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.PayloadTooLarge, outcome.Reason);
        Assert.Equal(0, peers.Production.RequestCount + peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_payload_of_exactly_4096_bytes_is_sent()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        var empty = """{"aps":{"alert":{"title":"t","body":""}},"delivery_id":"msg-1"}""".Length;

        var outcome = await provider.SendAsync(Push(Good, new PushContent("t", new string('x', 4096 - empty), Sound: null)), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal(4096, System.Text.Encoding.UTF8.GetByteCount(peers.Production.Accepted.Single().Payload));
    }

    [Fact]
    public async Task SendAsync_collapse_id_over_64_bytes_is_permanent_without_a_request()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var tooLong = await provider.SendAsync(Push(Good, new PushContent("t", "b", CollapseId: new string('é', 33))), CancellationToken.None);
        var longest = await provider.SendAsync(Push(Good, new PushContent("t", "b", CollapseId: new string('c', 64))), CancellationToken.None);

        Assert.Equal(OutcomeKind.Permanent, tooLong.Kind);
        Assert.Equal(DeliveryReason.ProviderRejected, tooLong.Reason);
        Assert.StartsWith("BadCollapseId", tooLong.Detail, StringComparison.Ordinal);
        Assert.Equal(OutcomeKind.Sent, longest.Kind);
        Assert.Equal(1, peers.Production.RequestCount);
    }

    [Fact]
    public async Task SendAsync_data_key_aps_is_permanent_without_a_request()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcome = await provider.SendAsync(
            Push(Good, new PushContent("t", "b", Data: new Dictionary<string, string> { ["aps"] = "x" })), CancellationToken.None);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(0, peers.Production.RequestCount);
    }

    [Fact]
    public async Task SendAsync_data_cannot_override_delivery_id()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        await provider.SendAsync(
            Push(Good, new PushContent("t", "b", Data: new Dictionary<string, string> { ["delivery_id"] = "forged", ["link"] = "kept" })),
            CancellationToken.None);

        using var payload = JsonDocument.Parse(peers.Production.Accepted.Single().Payload);
        Assert.Equal("msg-1", payload.RootElement.GetProperty("delivery_id").GetString());
        Assert.Equal("kept", payload.RootElement.GetProperty("link").GetString());
    }

    /// <summary>Every response Apple documents, scripted at the peer, and the outcome it must become.</summary>
    [Theory]
    [InlineData(400, "BadCollapseId", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "BadExpirationDate", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "BadMessageId", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "BadPriority", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "BadTopic", OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(400, "DeviceTokenNotForTopic", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "DuplicateHeaders", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "IdleTimeout", OutcomeKind.Transient, DeliveryReason.ProviderUnavailable)]
    [InlineData(400, "InvalidPushType", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "MissingDeviceToken", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "MissingTopic", OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(400, "PayloadEmpty", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(400, "TopicDisallowed", OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(403, "BadCertificate", OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(403, "BadCertificateEnvironment", OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(403, "ExpiredProviderToken", OutcomeKind.Transient, DeliveryReason.ProviderAuth)]
    [InlineData(403, "Forbidden", OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(403, "InvalidProviderToken", OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(403, "MissingProviderToken", OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(404, "BadPath", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(405, "MethodNotAllowed", OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(410, "Unregistered", OutcomeKind.InvalidToken, DeliveryReason.InvalidToken)]
    [InlineData(410, "ExpiredToken", OutcomeKind.InvalidToken, DeliveryReason.InvalidToken)]
    [InlineData(413, "PayloadTooLarge", OutcomeKind.Permanent, DeliveryReason.PayloadTooLarge)]
    [InlineData(429, "TooManyProviderTokenUpdates", OutcomeKind.RateLimited, DeliveryReason.RateLimited)]
    [InlineData(429, "TooManyRequests", OutcomeKind.RateLimited, DeliveryReason.RateLimited)]
    [InlineData(500, "InternalServerError", OutcomeKind.Transient, DeliveryReason.ProviderUnavailable)]
    [InlineData(503, "ServiceUnavailable", OutcomeKind.Transient, DeliveryReason.ProviderUnavailable)]
    [InlineData(503, "Shutdown", OutcomeKind.Transient, DeliveryReason.ProviderUnavailable)]
    [InlineData(418, null, OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(502, null, OutcomeKind.Transient, DeliveryReason.ProviderUnavailable)]
    [InlineData(507, "SomethingNew", OutcomeKind.Transient, DeliveryReason.ProviderUnavailable)]
    public async Task SendAsync_maps_every_documented_apns_response(int status, string? reason, OutcomeKind kind, string expectedReason)
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.Faults[Good] = PeerFault.Reply(status, reason);

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(kind, outcome.Kind);
        Assert.Equal(expectedReason, outcome.Reason);
        Assert.Equal(reason ?? $"HTTP {status}", outcome.Detail);
        Assert.Null(outcome.ProviderId);
        Assert.Equal(1, peers.Production.RequestCount);
        Assert.Equal(0, peers.Sandbox.RequestCount);
    }

    [Fact]
    public async Task SendAsync_scripted_bad_device_token_maps_to_invalid_token()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.Faults[Good] = PeerFault.Reply(400, "BadDeviceToken");
        peers.Sandbox.Faults[Good] = PeerFault.Reply(400, "BadDeviceToken");

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.InvalidToken("BadDeviceToken"), outcome);
    }

    [Fact]
    public async Task SendAsync_error_body_that_is_not_apns_json_still_maps_by_status()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);
        peers.Production.Faults[Good] = PeerFault.Reply(500, "<html>");

        var outcome = await provider.SendAsync(Push(Good), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "HTTP 500"), outcome);
    }
}
