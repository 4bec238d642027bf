using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Fcm;
using Nudge.TestSupport;

namespace Nudge.Delivery.Tests.Fcm;

/// <summary>Black-box tests of <see cref="FcmProvider"/> against a loopback token endpoint + FCM peer.</summary>
public sealed class FcmProviderTests(ServiceAccountKey key) : IClassFixture<ServiceAccountKey>, IAsyncLifetime, IDisposable
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private FcmPeer _peer = null!;
    private readonly SocketsHttpHandler _handler = new();
    private FcmProvider _provider = null!;

    public async Task InitializeAsync()
    {
        _peer = await FcmPeer.StartAsync(key, _time);
        _provider = NewProvider();
    }

    public async Task DisposeAsync()
    {
        _provider.Dispose();
        await _peer.DisposeAsync();
    }

    public void Dispose() => _handler.Dispose();

    [Fact]
    public async Task Send_Success_PostsTheDocumentedBodyWithTheIssuedBearer()
    {
        var content = new PushContent(
            "Hi", "Your cart misses you", DeepLink: "app://cart", Image: "https://img.example/cart.png",
            Data: new Dictionary<string, string> { ["campaign"] = "c1", ["émoji"] = "🛒" },
            CollapseId: "cart", TimeToLive: TimeSpan.FromHours(1), HighPriority: true, Sound: "default", Badge: 3);

        var outcome = await _provider.SendAsync(new PushRequest("msg-1", "device-ok-1", "android", content), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal($"projects/{ServiceAccountKey.ProjectId}/messages/0:1", outcome.ProviderId);
        Assert.Null(outcome.Reason);
        var body = Assert.Single(_peer.AcceptedBodies);
        // BMP text goes out as UTF-8; System.Text.Json always escapes characters outside the BMP (the emoji).
        Assert.Equal(
            """
            {"message":{"token":"device-ok-1","notification":{"title":"Hi","body":"Your cart misses you","image":"https://img.example/cart.png"},"data":{"campaign":"c1","émoji":"\uD83D\uDED2","delivery_id":"msg-1","link":"app://cart","deep_link":"app://cart"},"android":{"priority":"HIGH","ttl":"3600s","collapse_key":"cart"},"apns":{"headers":{"apns-priority":"10","apns-collapse-id":"cart"},"payload":{"aps":{"sound":"default","badge":3,"mutable-content":1}}}}}
            """,
            body);
        Assert.Equal(Assert.Single(_peer.IssuedTokens), Assert.Single(_peer.BearersSeen));
        Assert.Equal("application/json; charset=utf-8", Assert.Single(_peer.ContentTypesSeen));
        Assert.Empty(_peer.Problems);
    }

    [Fact]
    public async Task Send_MinimalNormalPriority_OmitsWhatIsNotSet()
    {
        var content = new PushContent(null, null, HighPriority: false, Sound: null);

        var outcome = await _provider.SendAsync(new PushRequest("msg-2", "device-ok-2", "android", content), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal(
            """{"message":{"token":"device-ok-2","data":{"delivery_id":"msg-2"},"android":{"priority":"NORMAL"},"apns":{"headers":{"apns-priority":"5"},"payload":{"aps":{}}}}}""",
            Assert.Single(_peer.AcceptedBodies));
    }

    [Fact]
    public async Task Send_CallerDataNamedLikeOurKeys_OursWin()
    {
        var content = new PushContent("t", "b", DeepLink: "app://mine",
            Data: new Dictionary<string, string> { ["delivery_id"] = "spoof", ["link"] = "app://theirs", ["x"] = "1" });

        await _provider.SendAsync(new PushRequest("msg-3", "device-ok-3", "android", content), default);

        using var doc = JsonDocument.Parse(Assert.Single(_peer.AcceptedBodies));
        var data = doc.RootElement.GetProperty("message").GetProperty("data");
        Assert.Equal("msg-3", data.GetProperty("delivery_id").GetString());
        Assert.Equal("app://mine", data.GetProperty("link").GetString());
        Assert.Equal("1", data.GetProperty("x").GetString());
    }

    [Theory]
    [InlineData(FcmFault.Unregistered, OutcomeKind.InvalidToken, DeliveryReason.InvalidToken, "UNREGISTERED")]
    [InlineData(FcmFault.InvalidRegistrationToken, OutcomeKind.InvalidToken, DeliveryReason.InvalidToken, "INVALID_ARGUMENT")]
    [InlineData(FcmFault.SenderIdMismatch, OutcomeKind.Permanent, DeliveryReason.ProviderRejected, "SENDER_ID_MISMATCH")]
    [InlineData(FcmFault.Internal, OutcomeKind.Transient, DeliveryReason.ProviderUnavailable, "INTERNAL")]
    [InlineData(FcmFault.ThirdPartyAuth, OutcomeKind.Permanent, DeliveryReason.ProviderAuth, "THIRD_PARTY_AUTH_ERROR")]
    [InlineData(FcmFault.PermissionDeniedWithoutDetails, OutcomeKind.Permanent, DeliveryReason.ProviderAuth, "PERMISSION_DENIED")]
    [InlineData(FcmFault.NotFoundWithoutDetails, OutcomeKind.Permanent, DeliveryReason.ProviderRejected, "NOT_FOUND: Requested entity was not found.")]
    [InlineData(FcmFault.BadGatewayHtml, OutcomeKind.Transient, DeliveryReason.ProviderUnavailable, "HTTP 502")]
    [InlineData(FcmFault.Teapot, OutcomeKind.Permanent, DeliveryReason.ProviderRejected, "HTTP 418")]
    public async Task Send_FcmError_MapsToOutcome(FcmFault fault, OutcomeKind kind, string reason, string detail)
    {
        var outcome = await SendWithFault(fault);

        Assert.Equal(kind, outcome.Kind);
        Assert.Equal(reason, outcome.Reason);
        Assert.Equal(detail, outcome.Detail);
        Assert.Null(outcome.ProviderId);
        // No retry inside the provider for these: one request each.
        Assert.Equal(1, _peer.SendRequests);
    }

    [Fact]
    public async Task Send_InvalidArgumentNotAboutTheToken_IsPermanentRejectedWithoutTheToken()
    {
        const string device = "device-payload-fault-0123456789";
        _peer.Faults[device] = FcmFault.InvalidPayloadArgument;

        var outcome = await _provider.SendAsync(Request(device), default);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderRejected, outcome.Reason);
        Assert.StartsWith("INVALID_ARGUMENT: Invalid value at 'message.android.ttl'", outcome.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(device, outcome.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(120, 120)]
    [InlineData(5, 60)]
    [InlineData(null, 60)]
    public async Task Send_QuotaExceeded_IsRateLimitedForAtLeastAMinute(int? retryAfter, int expectedSeconds)
    {
        _peer.RetryAfterSeconds = retryAfter;

        var outcome = await SendWithFault(FcmFault.QuotaExceeded);

        Assert.Equal(OutcomeKind.RateLimited, outcome.Kind);
        Assert.Equal(DeliveryReason.RateLimited, outcome.Reason);
        Assert.Equal("QUOTA_EXCEEDED", outcome.Detail);
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), outcome.RetryAfter);
    }

    [Theory]
    [InlineData(30)]
    [InlineData(null)]
    public async Task Send_Unavailable_IsTransientHonouringRetryAfter(int? retryAfter)
    {
        _peer.RetryAfterSeconds = retryAfter;

        var outcome = await SendWithFault(FcmFault.Unavailable);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
        Assert.Equal("UNAVAILABLE", outcome.Detail);
        Assert.Equal(retryAfter is { } s ? TimeSpan.FromSeconds(s) : null, outcome.RetryAfter);
    }

    [Fact]
    public async Task Send_ConnectionAborted_IsTransientUnavailable()
    {
        var outcome = await SendWithFault(FcmFault.AbortConnection);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
        Assert.StartsWith("fcm: ", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_NoAnswerWithinTheTimeout_IsTransientTimeout()
    {
        _peer.Faults["device-slow"] = FcmFault.Slow;

        var send = _provider.SendAsync(Request("device-slow"), default);
        await _peer.SlowRequestArrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        _time.Advance(TimeSpan.FromSeconds(10));
        var outcome = await send.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.Timeout, outcome.Reason);
        Assert.Equal("fcm: no answer within 10 s", outcome.Detail);
    }

    [Fact]
    public async Task Send_CallerCancels_Throws()
    {
        _peer.Faults["device-slow"] = FcmFault.Slow;
        using var cts = new CancellationTokenSource();

        var send = _provider.SendAsync(Request("device-slow"), cts.Token);
        await _peer.SlowRequestArrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Send_AccessTokenRevoked_RefreshesOnceAndRetries()
    {
        Assert.Equal(OutcomeKind.Sent, (await _provider.SendAsync(Request("device-a"), default)).Kind);
        _peer.RevokeIssuedTokens();

        var outcome = await _provider.SendAsync(Request("device-b"), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal(2, _peer.TokensIssued);
        Assert.Equal(3, _peer.SendRequests);
        Assert.Equal(1, _peer.Unauthorized);
    }

    [Fact]
    public async Task Send_AccessTokenAlwaysRefused_IsPermanentAuthAfterOneRetry()
    {
        _peer.RefuseAllBearers = true;

        var outcome = await _provider.SendAsync(Request("device-a"), default);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderAuth, outcome.Reason);
        Assert.Equal("UNAUTHENTICATED", outcome.Detail);
        Assert.Equal(2, _peer.SendRequests);
        Assert.Equal(2, _peer.TokensIssued);
        Assert.NotEqual(_peer.BearersSeen.First(), _peer.BearersSeen.Last());
    }

    [Fact]
    public async Task Send_AccessTokenRefusedInParallel_RefreshesOnlyOnce()
    {
        Assert.Equal(OutcomeKind.Sent, (await _provider.SendAsync(Request("device-warm"), default)).Kind);
        _peer.RevokeIssuedTokens();

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => _provider.SendAsync(Request($"device-{i}"), default)));

        Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
        // Every refused send drops the same stale token; the credential shares one refresh between them.
        Assert.Equal(2, _peer.TokensIssued);
    }

    [Fact]
    public async Task Send_TokenEndpointInvalidGrant_IsPermanentAuth()
    {
        _peer.FailNextTokenRequests(TokenFault.InvalidGrant);

        var outcome = await _provider.SendAsync(Request("device-a"), default);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderAuth, outcome.Reason);
        Assert.Equal("token endpoint: invalid_grant (HTTP 400)", outcome.Detail);
        Assert.Equal(0, _peer.SendRequests);

        // The failure is not cached: the next send asks again and goes through.
        Assert.Equal(OutcomeKind.Sent, (await _provider.SendAsync(Request("device-a"), default)).Kind);
    }

    [Fact]
    public async Task Send_TokenEndpointServerError_IsTransient()
    {
        _peer.FailNextTokenRequests(TokenFault.ServerError);

        var outcome = await _provider.SendAsync(Request("device-a"), default);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
        Assert.StartsWith("token endpoint:", outcome.Detail, StringComparison.Ordinal);
        Assert.Contains("HTTP 503", outcome.Detail, StringComparison.Ordinal);
        Assert.Equal(1, _peer.TokenRequests);
    }

    [Fact]
    public async Task Send_TokenEndpointConnectionAborted_IsTransient()
    {
        _peer.FailNextTokenRequests(TokenFault.AbortConnection);

        var outcome = await _provider.SendAsync(Request("device-a"), default);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
        Assert.StartsWith("token endpoint:", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_TokenEndpointUnreachable_IsTransient()
    {
        // A port that was just free: nothing listens there.
        var closed = new Uri("http://127.0.0.1:" + TestEnvironment.FreePort() + "/token");
        using var provider = NewProvider(json: key.Json(closed));

        var outcome = await provider.SendAsync(Request("device-a"), default);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
        Assert.StartsWith("token endpoint:", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_KeyThePeerDoesNotKnow_SignatureIsRefusedAndOutcomeIsPermanentAuth()
    {
        using var other = System.Security.Cryptography.RSA.Create(2048);
        var json = key.Document(_peer.TokenUri, other.ExportPkcs8PrivateKeyPem()).ToJsonString();
        using var provider = NewProvider(json: json);

        var outcome = await provider.SendAsync(Request("device-a"), default);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderAuth, outcome.Reason);
        Assert.Contains(_peer.Problems, p => p.Contains("signature does not verify", StringComparison.Ordinal));
        Assert.Equal(0, _peer.SendRequests);
    }

    [Fact]
    public async Task Send_HundredSends_UseOneCachedToken()
    {
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(OutcomeKind.Sent, (await _provider.SendAsync(Request($"device-{i}"), default)).Kind);
        }

        Assert.Equal(1, _peer.TokenRequests);
        Assert.Equal(100, _peer.AcceptedBodies.Count);
        Assert.Single(_peer.BearersSeen.Distinct());
        Assert.Empty(_peer.Problems);
    }

    [Fact]
    public async Task Send_TokenAboutToExpire_IsRefreshedBeforeUse()
    {
        await _provider.SendAsync(Request("device-a"), default);
        // 30 s before expiry: Google.Apis.Auth no longer uses a token within 60 s of expiring and must fetch a new one.
        _time.Advance(TimeSpan.FromSeconds(3600 - 30));

        var outcome = await _provider.SendAsync(Request("device-b"), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal(2, _peer.TokensIssued);
        Assert.Equal(_peer.IssuedTokens.Last(), _peer.BearersSeen.Last());
        Assert.Equal(0, _peer.Unauthorized);
        Assert.Empty(_peer.Problems);
    }

    [Fact]
    public async Task Send_TokenExpired_IsReplacedWithoutA401()
    {
        await _provider.SendAsync(Request("device-a"), default);
        _time.Advance(TimeSpan.FromHours(2));

        var outcome = await _provider.SendAsync(Request("device-b"), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal(2, _peer.TokensIssued);
        Assert.Equal(0, _peer.Unauthorized);
        // The peer checks iat against test time: the assertion was signed with the injected clock.
        Assert.Empty(_peer.Problems);
    }

    [Fact]
    public async Task Send_TokenInRefreshWindow_IsStillUsedWhileANewOneIsFetchedInTheBackground()
    {
        await _provider.SendAsync(Request("device-a"), default);
        var first = Assert.Single(_peer.IssuedTokens);
        // 200 s before expiry: inside the library's refresh window (225 s) but still usable.
        _time.Advance(TimeSpan.FromSeconds(3600 - 200));

        var outcome = await _provider.SendAsync(Request("device-b"), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal(first, _peer.BearersSeen.Last());
        await WaitFor(() => _peer.TokensIssued == 2);
    }

    [Fact]
    public async Task Send_TwoHundredInParallel_AllSentWithOneToken()
    {
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => _provider.SendAsync(Request($"device-{i}"), default)));

        Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
        Assert.Equal(200, outcomes.Select(o => o.ProviderId).Distinct().Count());
        Assert.Equal(1, _peer.TokenRequests);
        Assert.Equal(200, _peer.AcceptedBodies.Count);
        Assert.Empty(_peer.Problems);
    }

    [Theory]
    [InlineData("from")]
    [InlineData("from_screen")]
    [InlineData("message_type")]
    [InlineData("google.c.a.e")]
    [InlineData("gcm.notification.title")]
    [InlineData("GCM.x")]
    public async Task Send_ReservedDataKey_IsRejectedWithoutCallingFcm(string dataKey)
    {
        var content = new PushContent("t", "b", Data: new Dictionary<string, string> { ["ok"] = "1", [dataKey] = "x" });

        var outcome = await _provider.SendAsync(new PushRequest("msg", "device-a", "android", content), default);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderRejected, outcome.Reason);
        Assert.Contains(dataKey, outcome.Detail, StringComparison.Ordinal);
        Assert.Equal(0, _peer.TokenRequests);
        Assert.Equal(0, _peer.SendRequests);
    }

    [Fact]
    public async Task Send_OversizePayload_NeverReachesThePeer()
    {
        var content = new PushContent("t", new string('x', 4100));

        var outcome = await _provider.SendAsync(new PushRequest("msg", "device-a", "android", content), default);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.PayloadTooLarge, outcome.Reason);
        Assert.Equal(0, _peer.TokenRequests);
        Assert.Equal(0, _peer.SendRequests);
    }

    [Fact]
    public async Task Send_PayloadOfExactly4096Bytes_IsSent()
    {
        // Multi-byte text: the limit is counted in UTF-8 bytes, not characters.
        var content = ContentOfMessageSize(4096);
        Assert.Equal(4096, MessageSize(content));

        var outcome = await _provider.SendAsync(new PushRequest("msg", "device-a", "android", content), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Empty(_peer.Problems);
        var over = await _provider.SendAsync(new PushRequest("msg", "device-a", "android", ContentOfMessageSize(4097)), default);
        Assert.Equal(DeliveryReason.PayloadTooLarge, over.Reason);
        Assert.Equal(1, _peer.SendRequests);
    }

    [Fact]
    public async Task Send_CollapseIdOver64Bytes_IsRejectedWithoutCallingFcm()
    {
        var content = new PushContent("t", "b", CollapseId: new string('c', 65));

        var outcome = await _provider.SendAsync(new PushRequest("msg", "device-a", "android", content), default);

        Assert.Equal(DeliveryReason.ProviderRejected, outcome.Reason);
        Assert.Equal(0, _peer.SendRequests);
    }

    [Fact]
    public async Task Send_EmptyDeviceToken_IsInvalidTokenWithoutCallingFcm()
    {
        var outcome = await _provider.SendAsync(Request(" "), default);

        Assert.Equal(OutcomeKind.InvalidToken, outcome.Kind);
        Assert.Equal(0, _peer.SendRequests);
    }

    [Fact]
    public async Task Send_ProjectIdOverride_IsUsedInThePath()
    {
        await using var peer = await FcmPeer.StartAsync(key, _time, projectId: "other-project");
        var options = new FcmOptions { ServiceAccountJson = key.Json(peer.TokenUri), ProjectId = "other-project", BaseUrl = peer.BaseUrl.AbsoluteUri };
        using var provider = new FcmProvider(options, _time, _handler);

        var outcome = await provider.SendAsync(Request("device-a"), default);

        Assert.Equal("other-project", provider.ProjectId);
        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.StartsWith("projects/other-project/", outcome.ProviderId, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_WrongProject_IsPermanentRejected()
    {
        var options = new FcmOptions { ServiceAccountJson = key.Json(_peer.TokenUri), ProjectId = "someone-else", BaseUrl = _peer.BaseUrl.AbsoluteUri };
        using var provider = new FcmProvider(options, _time, _handler);

        var outcome = await provider.SendAsync(Request("device-a"), default);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderRejected, outcome.Reason);
    }

    [Fact]
    public async Task Outcomes_NeverCarryKeyTextOrTheWholeDeviceToken()
    {
        var device = "dYx3:APA91b" + new string('Q', 140);
        var outcomes = new List<SendOutcome>();
        foreach (var fault in Enum.GetValues<FcmFault>().Where(f => f is not FcmFault.Slow))
        {
            _peer.Faults[device] = fault;
            outcomes.Add(await _provider.SendAsync(Request(device), default));
        }

        _peer.FailNextTokenRequests(TokenFault.InvalidGrant);
        _peer.RevokeIssuedTokens();
        outcomes.Add(await _provider.SendAsync(Request(device), default));

        foreach (var o in outcomes)
        {
            var text = o.ToString();
            Assert.DoesNotContain(device, text, StringComparison.Ordinal);
            Assert.DoesNotContain("PRIVATE KEY", text, StringComparison.Ordinal);
            Assert.DoesNotContain(key.PrivateKeyBase64[100..140], text, StringComparison.Ordinal);
            Assert.DoesNotContain("ya29.", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Name_IsFcm() => Assert.Equal("fcm", _provider.Name);

    private FcmProvider NewProvider(string? json = null) => new(
        new FcmOptions { ServiceAccountJson = json ?? key.Json(_peer.TokenUri), BaseUrl = _peer.BaseUrl.AbsoluteUri },
        _time,
        _handler);

    private async Task<SendOutcome> SendWithFault(FcmFault fault)
    {
        var device = $"device-{fault}";
        _peer.Faults[device] = fault;
        return await _provider.SendAsync(Request(device), default);
    }

    private static PushRequest Request(string deviceToken) =>
        new("msg-" + Guid.NewGuid().ToString("N"), deviceToken, "android", new PushContent("Title", "Body"));

    private static PushContent ContentOfMessageSize(int bytes)
    {
        // Pad an empty body with 2-byte characters (plus one ASCII char for an odd remainder).
        var empty = new PushContent("t", "");
        var missing = bytes - MessageSize(empty);
        return empty with { Body = new string('é', missing / 2) + (missing % 2 == 1 ? "x" : "") };
    }

    /// <summary>UTF-8 bytes of the message object, measured on a build under the limit.</summary>
    private static int MessageSize(PushContent content) =>
        FcmMessage.Build(new PushRequest("msg", "device-a", "android", content)).Body!.Length - "{\"message\":}".Length;

    private static async Task WaitFor(Func<bool> condition)
    {
        // A bound for a loaded machine, not an expectation of speed.
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within a minute");
            await Task.Delay(20);
        }
    }
}
