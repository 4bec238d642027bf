using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Email;

namespace Nudge.Delivery.Tests.Email;

/// <summary>SendGridEmailProvider against an in-process SendGrid stand-in: wire format and every status mapping.</summary>
public class SendGridEmailProviderTests : IClassFixture<SendGridPeer>
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

    private readonly SendGridPeer _peer;
    private readonly FakeTimeProvider _clock = new(Now);

    public SendGridEmailProviderTests(SendGridPeer peer)
    {
        _peer = peer;
        _peer.Respond = SendGridPeer.Accept;
        _peer.Requests.Clear();
    }

    private EmailOptions Options(string? apiKey = SendGridPeer.ApiKey, string? baseUrl = null) => new()
    {
        Provider = "sendgrid",
        From = "news@example.com",
        FromName = "Nudge News",
        ReplyTo = "help@example.com",
        SendGrid = new SendGridEmailOptions { ApiKey = apiKey, BaseUrl = baseUrl ?? _peer.BaseUrl.ToString() },
    };

    private static EmailRequest Request(string? html = "<p>Hi &amp; welcome</p>", string? text = "Hi & welcome") => new(
        "01JSENDGRID00000000000001",
        "ann@example.com",
        "Welcome \"Ann\" ✨",
        html,
        text,
        new Dictionary<string, string>
        {
            ["List-Unsubscribe"] = "<https://nudge.example.com/u/tok>",
            ["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click",
        });

    [Fact]
    public async Task Accepted_202_is_sent_with_the_x_message_id()
    {
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Sent("sg-msg-1"), outcome);
        var request = Assert.Single(_peer.Requests);
        Assert.Equal("/v3/mail/send", request.Path);
        Assert.Equal("Bearer " + SendGridPeer.ApiKey, request.Authorization);
        Assert.Equal("application/json; charset=utf-8", request.ContentType);
    }

    [Fact]
    public async Task Wire_body_is_exactly_the_mail_send_shape()
    {
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        await sendGrid.SendAsync(Request(), CancellationToken.None);

        // One line on the wire; split here for reading.
        var expected = """
            {"personalizations":[{"to":[{"email":"ann@example.com"}],"custom_args":{"delivery_id":"01JSENDGRID00000000000001"}}],
            "from":{"email":"news@example.com","name":"Nudge News"},"reply_to":{"email":"help@example.com"},
            "subject":"Welcome \"Ann\" ✨",
            "content":[{"type":"text/plain","value":"Hi & welcome"},{"type":"text/html","value":"<p>Hi &amp; welcome</p>"}],
            "headers":{"X-Nudge-Delivery-Id":"01JSENDGRID00000000000001","List-Unsubscribe":"<https://nudge.example.com/u/tok>","List-Unsubscribe-Post":"List-Unsubscribe=One-Click"}}
            """.ReplaceLineEndings("");
        Assert.Equal(expected, Assert.Single(_peer.Requests).Body);
    }

    [Fact]
    public async Task Body_parses_with_personalization_from_subject_content_in_order_and_headers()
    {
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        await sendGrid.SendAsync(Request(), CancellationToken.None);

        using var doc = JsonDocument.Parse(Assert.Single(_peer.Requests).Body);
        var root = doc.RootElement;
        var personalization = Assert.Single(root.GetProperty("personalizations").EnumerateArray());
        Assert.Equal("ann@example.com", Assert.Single(personalization.GetProperty("to").EnumerateArray()).GetProperty("email").GetString());
        Assert.Equal("01JSENDGRID00000000000001", personalization.GetProperty("custom_args").GetProperty("delivery_id").GetString());
        Assert.Equal("news@example.com", root.GetProperty("from").GetProperty("email").GetString());
        Assert.Equal("Nudge News", root.GetProperty("from").GetProperty("name").GetString());
        Assert.Equal("Welcome \"Ann\" ✨", root.GetProperty("subject").GetString());
        Assert.Equal(["text/plain", "text/html"], root.GetProperty("content").EnumerateArray().Select(c => c.GetProperty("type").GetString()));
        Assert.Equal("<https://nudge.example.com/u/tok>", root.GetProperty("headers").GetProperty("List-Unsubscribe").GetString());
        Assert.Equal("List-Unsubscribe=One-Click", root.GetProperty("headers").GetProperty("List-Unsubscribe-Post").GetString());
    }

    [Fact]
    public async Task Html_only_sends_a_derived_text_part_first()
    {
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        await sendGrid.SendAsync(Request(html: "<p>Hello <b>there</b></p><p>Bye</p>", text: null), CancellationToken.None);

        using var doc = JsonDocument.Parse(Assert.Single(_peer.Requests).Body);
        var content = doc.RootElement.GetProperty("content").EnumerateArray().ToArray();
        Assert.Equal(("text/plain", "Hello there\n\nBye"), (content[0].GetProperty("type").GetString(), content[0].GetProperty("value").GetString()));
        Assert.Equal(("text/html", "<p>Hello <b>there</b></p><p>Bye</p>"), (content[1].GetProperty("type").GetString(), content[1].GetProperty("value").GetString()));
    }

    [Fact]
    public async Task Bad_request_400_is_provider_rejected_with_the_first_field_and_message()
    {
        _peer.Respond = SendGridPeer.Error(400, "Does not contain a valid address.", "personalizations.0.to.0.email");
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderRejected, "personalizations.0.to.0.email: Does not contain a valid address."), outcome);
    }

    [Fact]
    public async Task A_long_400_message_is_shortened()
    {
        _peer.Respond = SendGridPeer.Error(400, new string('x', 1000));
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(DeliveryReason.ProviderRejected, outcome.Reason);
        Assert.Equal(160, outcome.Detail!.Length);
        Assert.EndsWith("…", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_key_401_is_provider_auth_and_never_shows_the_key()
    {
        using var sendGrid = new SendGridEmailProvider(Options(apiKey: "SG.wrong.key-s3cret"), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "401 The provided authorization grant is invalid, expired, or revoked"), outcome);
        Assert.DoesNotContain("s3cret", outcome.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Forbidden_403_is_provider_auth()
    {
        _peer.Respond = SendGridPeer.Error(403, "The from address does not match a verified Sender Identity.", "from");
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "403 from: The from address does not match a verified Sender Identity."), outcome);
    }

    [Fact]
    public async Task Too_large_413_is_payload_too_large()
    {
        _peer.Respond = SendGridPeer.Error(413, "The JSON payload you have included in your request is too large.");
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.PayloadTooLarge, "413"), outcome);
    }

    [Fact]
    public async Task Throttled_429_is_rate_limited_for_the_retry_after_seconds()
    {
        _peer.Respond = SendGridPeer.Error(429, "too many requests", headers: h => h.RetryAfter = "30");
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.RateLimited(TimeSpan.FromSeconds(30), "429"), outcome);
    }

    [Fact]
    public async Task Throttled_429_without_retry_after_waits_until_the_rate_limit_reset()
    {
        var reset = Now.AddSeconds(42).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        _peer.Respond = SendGridPeer.Error(429, "too many requests", headers: h => h["X-RateLimit-Reset"] = reset);
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.RateLimited(TimeSpan.FromSeconds(42), "429"), outcome);
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    public async Task Server_errors_are_transient(int status)
    {
        _peer.Respond = context =>
        {
            context.Response.StatusCode = status;
            return Task.CompletedTask;
        };
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, status.ToString(System.Globalization.CultureInfo.InvariantCulture)), outcome);
    }

    [Fact]
    public async Task Unavailable_503_passes_on_retry_after()
    {
        _peer.Respond = SendGridPeer.Error(503, "down for maintenance", headers: h => h.RetryAfter = "120");
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "503", TimeSpan.FromMinutes(2)), outcome);
    }

    [Fact]
    public async Task No_answer_within_the_budget_is_a_timeout()
    {
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _peer.Respond = async context =>
        {
            received.TrySetResult();
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        };
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var send = sendGrid.SendAsync(Request(), CancellationToken.None);
        await received.Task.WaitAsync(TimeSpan.FromSeconds(30));
        _clock.Advance(TimeSpan.FromSeconds(16));

        Assert.Equal(SendOutcome.Transient(DeliveryReason.Timeout, "timeout"), await send.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Caller_cancellation_throws()
    {
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _peer.Respond = async context =>
        {
            received.TrySetResult();
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        };
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);
        using var cts = new CancellationTokenSource();

        var send = sendGrid.SendAsync(Request(), cts.Token);
        await received.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send);
    }

    [Fact]
    public async Task Nothing_listening_is_transient()
    {
        using var sendGrid = new SendGridEmailProvider(Options(baseUrl: $"http://127.0.0.1:{SmtpEmailProviderTests.ClosedPort()}"), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "connection_error"), outcome);
    }

    [Fact]
    public async Task Bad_recipient_or_reserved_header_is_refused_without_calling_sendgrid()
    {
        using var sendGrid = new SendGridEmailProvider(Options(), _clock);

        var badTo = await sendGrid.SendAsync(Request() with { To = "nobody" }, CancellationToken.None);
        var reserved = await sendGrid.SendAsync(Request() with { Headers = new Dictionary<string, string> { ["From"] = "x@example.com" } }, CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.InvalidRecipient, "invalid_address"), badTo);
        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderRejected, "reserved_header:From"), reserved);
        Assert.Empty(_peer.Requests);
    }

    [Fact]
    public async Task Base_url_with_a_trailing_slash_still_posts_to_v3_mail_send()
    {
        using var sendGrid = new SendGridEmailProvider(Options(baseUrl: _peer.BaseUrl.ToString().TrimEnd('/') + "/"), _clock);

        var outcome = await sendGrid.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal("/v3/mail/send", Assert.Single(_peer.Requests).Path);
    }
}
