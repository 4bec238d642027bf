using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Tests.Support;
using Nudge.Delivery.Twilio;

namespace Nudge.Delivery.Tests.Twilio;

public sealed class TwilioProviderTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider time = new(Now);
    private TwilioPeer peer = null!;

    public async Task InitializeAsync() => peer = await TwilioPeer.StartAsync();

    public async Task DisposeAsync() => await peer.DisposeAsync();

    private TwilioProvider Provider(Action<TwilioOptions>? change = null) => new(peer.Options(change), time);

    private static SmsRequest Sms(string to, string body = "Your cart misses you", Uri? callback = null) =>
        new("msg-1", to, body, callback);

    [Fact]
    public async Task SendAsync_WithMessagingService_PostsExactFormFieldsWithBasicAuth()
    {
        using var twilio = Provider();
        var callback = new Uri("https://nudge.example.com/webhooks/twilio/status?message_id=msg-1");

        var outcome = await twilio.SendAsync(Sms("+14155550100", "Hi & bye = 50% off + free", callback), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        var req = Assert.Single(peer.Requests);
        Assert.Equal($"/2010-04-01/Accounts/{TwilioPeer.AccountSid}/Messages.json", req.Path);
        Assert.Equal("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{TwilioPeer.AccountSid}:{TwilioPeer.AuthToken}")), req.Authorization);
        Assert.StartsWith("application/x-www-form-urlencoded", req.ContentType, StringComparison.Ordinal);
        // Twilio's library chooses the field order; each field is form-encoded exactly once.
        Assert.Equal(
            new[]
            {
                "Body=Hi+%26+bye+%3D+50%25+off+%2B+free", $"MessagingServiceSid={TwilioPeer.ServiceSid}",
                "StatusCallback=https%3A%2F%2Fnudge.example.com%2Fwebhooks%2Ftwilio%2Fstatus%3Fmessage_id%3Dmsg-1", "To=%2B14155550100",
            },
            req.RawBody.Split('&').Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["To"] = "+14155550100",
                ["MessagingServiceSid"] = TwilioPeer.ServiceSid,
                ["Body"] = "Hi & bye = 50% off + free",
                ["StatusCallback"] = "https://nudge.example.com/webhooks/twilio/status?message_id=msg-1",
            },
            req.Form.ToDictionary(p => p.Key, p => p.Value));
    }

    [Fact]
    public async Task SendAsync_WithFromAndNoCallback_SendsFromAndNoStatusCallback()
    {
        using var twilio = Provider(o => { o.MessagingServiceSid = null; o.From = "+14155550199"; });

        var outcome = await twilio.SendAsync(Sms("+447700900123", "Grüße"), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        var form = Assert.Single(peer.Requests).Form.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(new Dictionary<string, string> { ["To"] = "+447700900123", ["From"] = "+14155550199", ["Body"] = "Grüße" }, form);
    }

    [Fact]
    public async Task SendAsync_Accepted_ReturnsSidSegmentsAndCost()
    {
        using var twilio = Provider(o => o.PricePerSegmentUsd = 0.01m);

        var outcome = await twilio.SendAsync(Sms("+14155550100", new string('a', 161)), default);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Matches("^SM[0-9a-f]{32}$", outcome.ProviderId);
        Assert.Equal(2, outcome.Segments);
        Assert.Equal(0.02m, outcome.EstimatedCost);
        Assert.Null(outcome.Reason);
    }

    [Fact]
    public async Task SendAsync_DefaultPrice_EstimatesOneSegmentAtListPrice()
    {
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550100", "🎉"), default);

        Assert.Equal(1, outcome.Segments);
        Assert.Equal(0.0079m, outcome.EstimatedCost);
    }

    [Theory]
    [InlineData(21610, OutcomeKind.Permanent, DeliveryReason.RecipientUnsubscribed)]
    [InlineData(21211, OutcomeKind.Permanent, DeliveryReason.InvalidRecipient)]
    [InlineData(21614, OutcomeKind.Permanent, DeliveryReason.InvalidRecipient)]
    [InlineData(30003, OutcomeKind.Permanent, DeliveryReason.InvalidRecipient)]
    [InlineData(30006, OutcomeKind.Permanent, DeliveryReason.InvalidRecipient)]
    [InlineData(30004, OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(30005, OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(30007, OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(30008, OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(30034, OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    [InlineData(21617, OutcomeKind.Permanent, DeliveryReason.PayloadTooLarge)]
    [InlineData(21606, OutcomeKind.Permanent, DeliveryReason.ProviderAuth)]
    [InlineData(21999, OutcomeKind.Permanent, DeliveryReason.ProviderRejected)]
    public async Task SendAsync_TwilioErrorCode_MapsToOutcome(int code, OutcomeKind kind, string reason)
    {
        peer.Scripts["+14155550123"] = new PeerScript(400, code);
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550123"), default);

        Assert.Equal(kind, outcome.Kind);
        Assert.Equal(reason, outcome.Reason);
        Assert.Equal(code.ToString(System.Globalization.CultureInfo.InvariantCulture), outcome.Detail);
        Assert.Null(outcome.Segments);
    }

    [Fact]
    public async Task SendAsync_ToNotE164_IsInvalidRecipientFromThePeersOwnCheck()
    {
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("0044 7700 900123"), default);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.InvalidRecipient, "21211"), outcome);
    }

    [Fact]
    public async Task SendAsync_EmptyBody_IsRejectedWith21602()
    {
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550100", ""), default);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderRejected, "21602"), outcome);
    }

    [Fact]
    public async Task SendAsync_WrongAuthToken_IsProviderAuth20003()
    {
        using var twilio = Provider(o => o.AuthToken = "0000000000000000000000000000dead");

        var outcome = await twilio.SendAsync(Sms("+14155550100"), default);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "20003"), outcome);
        Assert.Empty(peer.Requests);
    }

    [Fact]
    public async Task SendAsync_OtherAccountSid_IsProviderAuth()
    {
        using var twilio = Provider(o => o.AccountSid = "AC" + new string('9', 32));

        var outcome = await twilio.SendAsync(Sms("+14155550100"), default);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "20003"), outcome);
    }

    [Fact]
    public async Task SendAsync_BaseUrlWithWrongPath_IsProviderAuth20404()
    {
        using var twilio = Provider(o => o.BaseUrl = new Uri(peer.BaseUrl, "/v1").AbsoluteUri);

        var outcome = await twilio.SendAsync(Sms("+14155550100"), default);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "20404"), outcome);
    }

    [Fact]
    public async Task SendAsync_Http429WithSeconds_IsRateLimitedHonouringRetryAfter()
    {
        peer.Scripts["+14155550123"] = new PeerScript(429, 20429, RetryAfter: "30");
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550123"), default);

        Assert.Equal(SendOutcome.RateLimited(TimeSpan.FromSeconds(30), "20429"), outcome);
    }

    [Fact]
    public async Task SendAsync_Http429WithDateAndNoBody_IsRateLimitedFromTheClock()
    {
        peer.Scripts["+14155550123"] = new PeerScript(429, RetryAfter: Now.AddMinutes(2).ToString("R"));
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550123"), default);

        Assert.Equal(SendOutcome.RateLimited(TimeSpan.FromMinutes(2), "http_429"), outcome);
    }

    [Fact]
    public async Task SendAsync_Code20429On400_IsRateLimitedWithoutDelay()
    {
        peer.Scripts["+14155550123"] = new PeerScript(400, 20429);
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550123"), default);

        Assert.Equal(SendOutcome.RateLimited(null, "20429"), outcome);
    }

    [Theory]
    [InlineData(500, null, "http_500")]
    [InlineData(503, null, "http_503")]
    [InlineData(500, 20500, "20500")]
    public async Task SendAsync_ServerError_IsTransientProviderUnavailable(int status, int? code, string detail)
    {
        peer.Scripts["+14155550123"] = new PeerScript(status, code, RawBody: code is null ? "<html>oops</html>" : null);
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550123"), default);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail), outcome);
    }

    [Fact]
    public async Task SendAsync_Http503WithRetryAfter_CarriesTheDelay()
    {
        peer.Scripts["+14155550123"] = new PeerScript(503, RetryAfter: "7");
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550123"), default);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "http_503", TimeSpan.FromSeconds(7)), outcome);
    }

    [Theory]
    [InlineData(400, "http_400", DeliveryReason.ProviderRejected)]
    [InlineData(401, "http_401", DeliveryReason.ProviderAuth)]
    [InlineData(403, "http_403", DeliveryReason.ProviderAuth)]
    public async Task SendAsync_ClientErrorWithoutTwilioBody_IsPermanent(int status, string detail, string reason)
    {
        peer.Scripts["+14155550123"] = new PeerScript(status, RawBody: "not json");
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550123"), default);

        Assert.Equal(SendOutcome.Permanent(reason, detail), outcome);
    }

    [Fact]
    public async Task SendAsync_ConnectionAborted_IsTransientProviderUnavailable()
    {
        peer.Scripts["+14155550123"] = new PeerScript(Abort: true);
        using var twilio = Provider();

        var outcome = await twilio.SendAsync(Sms("+14155550123"), default);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
        Assert.StartsWith("http_", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SendAsync_NothingListening_IsTransientProviderUnavailable()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        using var twilio = Provider(o => o.BaseUrl = $"http://127.0.0.1:{port}");

        var outcome = await twilio.SendAsync(Sms("+14155550100"), default);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "http_connectionerror"), outcome);
    }

    [Fact]
    public async Task SendAsync_NoAnswerWithinTimeout_IsTransientTimeout()
    {
        peer.Scripts["+14155550123"] = new PeerScript(Hang: true);
        using var twilio = Provider(o => o.RequestTimeoutSeconds = 5);

        var send = twilio.SendAsync(Sms("+14155550123"), default);
        await peer.Hanging.Task.WaitAsync(TimeSpan.FromSeconds(30));
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(send.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        var outcome = await send.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(SendOutcome.Transient(DeliveryReason.Timeout, "no answer in 5s"), outcome);
    }

    [Fact]
    public async Task SendAsync_CallerCancels_ThrowsOperationCanceled()
    {
        peer.Scripts["+14155550123"] = new PeerScript(Hang: true);
        using var twilio = Provider();
        using var cts = new CancellationTokenSource();

        var send = twilio.SendAsync(Sms("+14155550123"), cts.Token);
        await peer.Hanging.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task SendAsync_AlreadyCancelledToken_ThrowsWithoutCalling()
    {
        using var twilio = Provider();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => twilio.SendAsync(Sms("+14155550100"), new CancellationToken(true)));
        Assert.Empty(peer.Requests);
    }

    [Fact]
    public async Task SendAsync_OverHttpsWithGivenHandler_Works()
    {
        await using var tls = await TwilioPeer.StartAsync(https: true);
        using var handler = TestCertificate.TrustingHandler();
        using var twilio = new TwilioProvider(tls.Options(), time, handler);

        var outcome = await twilio.SendAsync(Sms("+14155550100"), default);

        Assert.Equal("https", tls.BaseUrl.Scheme);
        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
    }

    [Fact]
    public async Task Outcomes_NeverContainTheAuthToken()
    {
        peer.Scripts["+14155550101"] = new PeerScript(400, 21610);
        peer.Scripts["+14155550102"] = new PeerScript(429, RetryAfter: "1");
        peer.Scripts["+14155550103"] = new PeerScript(Abort: true);
        peer.Scripts["+14155550104"] = new PeerScript(500, RawBody: TwilioPeer.AuthToken);
        using var good = Provider();
        using var bad = Provider(o => o.AuthToken = "badbadbadbadbadbadbadbadbadbad00");

        var outcomes = new List<SendOutcome>
        {
            await good.SendAsync(Sms("+14155550100"), default),
            await bad.SendAsync(Sms("+14155550100"), default),
        };
        foreach (var to in new[] { "+14155550101", "+14155550102", "+14155550103", "+14155550104" })
        {
            outcomes.Add(await good.SendAsync(Sms(to), default));
        }

        Assert.All(outcomes, o =>
        {
            Assert.DoesNotContain(TwilioPeer.AuthToken, o.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("badbadbad", o.ToString(), StringComparison.Ordinal);
        });
        Assert.Equal("twilio", good.Name);
    }

    [Fact]
    public void Constructor_InvalidOptions_ThrowsListingProblemsWithoutTheToken()
    {
        var options = peer.Options(o => { o.AccountSid = "nope"; o.AuthToken = "s3cr3t token"; });

        var ex = Assert.Throws<ArgumentException>(() => new TwilioProvider(options, time));

        Assert.Contains("Nudge:Providers:Twilio:AccountSid", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Nudge:Providers:Twilio:AuthToken", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", ex.ToString(), StringComparison.Ordinal);
    }
}
