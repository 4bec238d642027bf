using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Email;

namespace Nudge.Delivery.Tests.Email;

/// <summary>SMTP replies and failures mapped to outcomes, against a scripted loopback server.</summary>
public class SmtpEmailProviderTests
{
    private const string Password = "pw-Sm7p-s3cret-never-shown";

    private static EmailOptions Options(int port, string? user = "nudge", int timeoutSeconds = 10) => new()
    {
        Provider = "smtp",
        From = "news@example.com",
        FromName = "Nudge",
        RequestTimeoutSeconds = timeoutSeconds,
        Smtp = new SmtpEmailOptions { Host = "127.0.0.1", Port = port, Security = "none", UserName = user, Password = user is null ? null : Password },
    };

    private static EmailRequest Request(string to = "ann@example.com", string id = "01JDELIVERY0000000000000001") =>
        new(id, to, "Hello", "<p>Hi</p>", "Hi", new Dictionary<string, string>());

    [Fact]
    public async Task Accepted_message_is_sent_with_a_stable_message_id_after_authenticating()
    {
        await using var server = new LoopbackSmtpServer();
        string? seenUser = null, seenPassword = null;
        server.Auth = (u, p) =>
        {
            (seenUser, seenPassword) = (u, p);
            return "235 2.7.0 Authentication successful";
        };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        Assert.Equal("01JDELIVERY0000000000000001@nudge", outcome.ProviderId);
        Assert.Equal("nudge", seenUser);
        Assert.Equal(Password, seenPassword);
        var raw = Assert.Single(server.Messages);
        // Header names are case-insensitive; MimeKit writes "Message-Id".
        Assert.Contains("Message-ID: <01JDELIVERY0000000000000001@nudge>\r\n", raw, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("X-Nudge-Delivery-Id: 01JDELIVERY0000000000000001", raw, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown", "550 5.1.1")]
    [InlineData("550 Requested action not taken: mailbox unavailable", "550")]
    [InlineData("553 5.1.3 Bad recipient address syntax", "553 5.1.3")]
    [InlineData("551 User not local", "551")]
    public async Task Recipient_refused_as_a_bad_mailbox_is_invalid_recipient(string reply, string detail)
    {
        await using var server = new LoopbackSmtpServer { RcptTo = _ => reply };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.InvalidRecipient, detail), outcome);
    }

    [Fact]
    public async Task Relay_denied_550_is_provider_rejected_not_a_bad_recipient()
    {
        await using var server = new LoopbackSmtpServer { RcptTo = _ => "550 5.7.1 Relaying denied" };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderRejected, "550 5.7.1"), outcome);
    }

    [Theory]
    [InlineData("554 5.6.0 Message content rejected", DeliveryReason.ProviderRejected, "554 5.6.0")]
    [InlineData("552 5.3.4 Message size exceeds fixed limit", DeliveryReason.PayloadTooLarge, "552 5.3.4")]
    [InlineData("550 Message rejected as spam", DeliveryReason.ProviderRejected, "550")]
    public async Task Five_hundred_after_data_is_permanent(string reply, string reason, string detail)
    {
        await using var server = new LoopbackSmtpServer { DataEnd = reply };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(reason, detail), outcome);
    }

    [Theory]
    [InlineData("553 5.7.1 Sender address rejected: not owned by user", DeliveryReason.ProviderRejected, "553 5.7.1")]
    [InlineData("530 5.7.0 Authentication required", DeliveryReason.ProviderAuth, "530")]
    [InlineData("550 5.7.0 Sending blocked by policy", DeliveryReason.ProviderRejected, "550 5.7.0")]
    public async Task Sender_refused_is_permanent(string reply, string reason, string detail)
    {
        await using var server = new LoopbackSmtpServer { MailFrom = reply };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(reason, detail), outcome);
    }

    [Theory]
    [InlineData("450 4.2.1 Mailbox busy", "450 4.2.1")]
    [InlineData("451 4.3.0 Local error in processing", "451 4.3.0")]
    [InlineData("452 4.5.3 Too many recipients", "452 4.5.3")]
    [InlineData("421 4.7.0 Try again later, closing connection", "421 4.7.0")]
    public async Task Four_hundred_on_the_recipient_is_transient(string reply, string detail)
    {
        await using var server = new LoopbackSmtpServer { RcptTo = _ => reply };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail), outcome);
    }

    [Fact]
    public async Task Four_hundred_after_data_is_transient()
    {
        await using var server = new LoopbackSmtpServer { DataEnd = "451 4.7.1 Greylisted, try again later" };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "451 4.7.1"), outcome);
    }

    [Fact]
    public async Task Busy_greeting_421_is_transient()
    {
        await using var server = new LoopbackSmtpServer { Greeting = "421 4.3.2 Service not available, closing channel" };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(OutcomeKind.Transient, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderUnavailable, outcome.Reason);
    }

    [Fact]
    public async Task Refused_credentials_are_provider_auth_and_never_echo_the_password()
    {
        await using var server = new LoopbackSmtpServer { Auth = (_, _) => "535 5.7.8 Authentication credentials invalid" };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(OutcomeKind.Permanent, outcome.Kind);
        Assert.Equal(DeliveryReason.ProviderAuth, outcome.Reason);
        Assert.DoesNotContain(Password, outcome.ToString(), StringComparison.Ordinal);
        Assert.Empty(server.Messages);
    }

    [Fact]
    public async Task A_refused_recipient_keeps_the_session_for_the_next_send()
    {
        await using var server = new LoopbackSmtpServer { RcptTo = to => to.StartsWith("gone", StringComparison.Ordinal) ? "550 5.1.1 User unknown" : "250 2.1.5 Ok" };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var refused = await smtp.SendAsync(Request("gone@example.com", "m1"), CancellationToken.None);
        var sent = await smtp.SendAsync(Request("ann@example.com", "m2"), CancellationToken.None);

        Assert.Equal(DeliveryReason.InvalidRecipient, refused.Reason);
        Assert.Equal(OutcomeKind.Sent, sent.Kind);
        Assert.Equal(1, server.Connections);
        Assert.Single(server.Messages);
    }

    [Fact]
    public async Task A_session_the_server_closed_is_reopened_without_failing_the_send()
    {
        await using var server = new LoopbackSmtpServer { CloseAfterMessages = 1 };
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var first = await smtp.SendAsync(Request(id: "m1"), CancellationToken.None);
        await WaitUntil(() => server.Commands.Count(c => c.StartsWith("MAIL", StringComparison.Ordinal)) == 1);
        await Task.Delay(100); // let the close reach the client's socket
        var second = await smtp.SendAsync(Request(id: "m2"), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, first.Kind);
        Assert.Equal(OutcomeKind.Sent, second.Kind);
        Assert.Equal(2, server.Connections);
        Assert.Equal(2, server.Messages.Count);
    }

    [Fact]
    public async Task Server_that_stops_answering_is_a_timeout()
    {
        await using var server = new LoopbackSmtpServer { DataEnd = null };
        await using var smtp = new SmtpEmailProvider(Options(server.Port, timeoutSeconds: 1));

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Transient(DeliveryReason.Timeout, "timeout"), outcome);
    }

    [Fact]
    public async Task Caller_cancellation_throws()
    {
        await using var server = new LoopbackSmtpServer { DataEnd = null };
        await using var smtp = new SmtpEmailProvider(Options(server.Port, timeoutSeconds: 30));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => smtp.SendAsync(Request(), cts.Token));
    }

    [Fact]
    public async Task Queued_sends_wait_past_the_budget_while_the_session_keeps_finishing_sends()
    {
        using var release = new SemaphoreSlim(0);
        await using var server = new LoopbackSmtpServer { HoldDataEnd = () => release.WaitAsync() };
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var smtp = new SmtpEmailProvider(Options(server.Port, timeoutSeconds: 10), clock);

        // m1 holds the only session; m2 and m3 queue for it.
        var first = smtp.SendAsync(Request(id: "m1"), CancellationToken.None);
        await WaitUntil(() => server.Commands.Count(c => c == "DATA") == 1);
        var queued = new[] { smtp.SendAsync(Request(id: "m2"), CancellationToken.None), smtp.SendAsync(Request(id: "m3"), CancellationToken.None) };

        // 8 s later m1 completes and m2 takes the session.
        clock.Advance(TimeSpan.FromSeconds(8));
        release.Release();
        Assert.Equal(OutcomeKind.Sent, (await first.WaitAsync(TimeSpan.FromSeconds(60))).Kind);
        await WaitUntil(() => server.Commands.Count(c => c == "DATA") == 2);

        // m3 has now waited 17 s, longer than the 10 s budget, but the session came back 9 s ago: it keeps waiting.
        clock.Advance(TimeSpan.FromSeconds(3));
        clock.Advance(TimeSpan.FromSeconds(6));
        release.Release();
        await WaitUntil(() => server.Commands.Count(c => c == "DATA") == 3);
        release.Release();
        var outcomes = await Task.WhenAll(queued).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
        Assert.Equal(3, server.Messages.Count);
        Assert.Equal(1, server.Connections);
    }

    [Fact]
    public async Task A_burst_larger_than_the_server_sends_within_the_budget_is_sent_in_full()
    {
        // The server takes 1 s (of the provider's clock) per message, so 30 messages on one session take 30 s: three
        // times the 10 s budget. A fixed wait would give the last 20 or so smtp_busy from a server that never stalled.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = new LoopbackSmtpServer
        {
            HoldDataEnd = () =>
            {
                clock.Advance(TimeSpan.FromSeconds(1));
                return Task.CompletedTask;
            },
        };
        await using var smtp = new SmtpEmailProvider(Options(server.Port, timeoutSeconds: 10), clock);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => smtp.SendAsync(Request(id: $"b{i:D2}"), CancellationToken.None)))
            .WaitAsync(TimeSpan.FromMinutes(2));

        Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
        Assert.Equal(30, server.Messages.Count);
        Assert.Equal(1, server.Connections);
    }

    [Fact]
    public async Task Waiting_while_no_session_comes_back_is_rate_limited_not_a_failure()
    {
        using var release = new SemaphoreSlim(0);
        await using var server = new LoopbackSmtpServer { HoldDataEnd = () => release.WaitAsync() };
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var smtp = new SmtpEmailProvider(Options(server.Port, timeoutSeconds: 10), clock);

        // m1 holds the only session from 0 s; m2 and m3 queue for it at 2 s.
        var first = smtp.SendAsync(Request(id: "m1"), CancellationToken.None);
        await WaitUntil(() => server.Commands.Count(c => c == "DATA") == 1);
        clock.Advance(TimeSpan.FromSeconds(2));
        var second = smtp.SendAsync(Request(id: "m2"), CancellationToken.None);
        var third = smtp.SendAsync(Request(id: "m3"), CancellationToken.None);

        // At 10 s m1 runs out of time without an answer; m2 gets the slot and opens a new session, which hangs too.
        clock.Advance(TimeSpan.FromSeconds(8));
        Assert.Equal(SendOutcome.Transient(DeliveryReason.Timeout, "timeout"), await first.WaitAsync(TimeSpan.FromSeconds(60)));
        await WaitUntil(() => server.Commands.Count(c => c == "DATA") == 2);

        // At 12 s m3 has waited its 10 s and no session came back in that time: the server is saturated.
        clock.Advance(TimeSpan.FromSeconds(2));
        var gaveUp = await third.WaitAsync(TimeSpan.FromSeconds(60));
        release.Release(2);

        Assert.Equal(SendOutcome.RateLimited(null, "smtp_busy"), gaveUp);
        Assert.Equal(OutcomeKind.Sent, (await second.WaitAsync(TimeSpan.FromSeconds(60))).Kind);
        Assert.Equal(2, server.Commands.Count(c => c == "DATA"));
    }

    [Fact]
    public async Task Sessions_never_exceed_max_connections()
    {
        await using var server = new LoopbackSmtpServer();
        var options = Options(server.Port);
        options.Smtp.MaxConnections = 3;
        await using var smtp = new SmtpEmailProvider(options);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => smtp.SendAsync(Request(id: $"p{i}"), CancellationToken.None)));

        Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
        Assert.InRange(server.Connections, 1, 3);
        Assert.Equal(30, server.Messages.Count);
    }

    [Fact]
    public async Task Nothing_listening_is_transient()
    {
        var smtp = new SmtpEmailProvider(Options(ClosedPort(), user: null));
        await using (smtp)
        {
            var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

            Assert.Equal(SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "connection_refused"), outcome);
        }
    }

    [Fact]
    public async Task Starttls_required_but_not_offered_is_a_configuration_failure()
    {
        await using var server = new LoopbackSmtpServer();
        var options = Options(server.Port);
        options.Smtp.Security = "starttls";
        await using var smtp = new SmtpEmailProvider(options);

        var outcome = await smtp.SendAsync(Request(), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderAuth, "not_supported_by_server"), outcome);
        Assert.Empty(server.Messages);
    }

    [Theory]
    [InlineData("not an address")]
    [InlineData("a@example.com, b@example.com")]
    [InlineData("a@example.com\r\nBcc: victim@example.com")]
    public async Task Bad_recipient_address_is_refused_without_connecting(string to)
    {
        await using var server = new LoopbackSmtpServer();
        await using var smtp = new SmtpEmailProvider(Options(server.Port));

        var outcome = await smtp.SendAsync(Request(to), CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.InvalidRecipient, "invalid_address"), outcome);
        Assert.Equal(0, server.Connections);
    }

    [Theory]
    [InlineData("Bcc", "victim@example.com", "reserved_header:Bcc")]
    [InlineData("X-Tag", "a\r\nBcc: victim@example.com", "invalid_header_value:X-Tag")]
    [InlineData("Bad Name", "x", "invalid_header_name")]
    public async Task Header_injection_is_refused(string name, string value, string detail)
    {
        await using var server = new LoopbackSmtpServer();
        await using var smtp = new SmtpEmailProvider(Options(server.Port));
        var request = Request() with { Headers = new Dictionary<string, string> { [name] = value } };

        var outcome = await smtp.SendAsync(request, CancellationToken.None);

        Assert.Equal(SendOutcome.Permanent(DeliveryReason.ProviderRejected, detail), outcome);
    }

    [Fact]
    public void Message_id_is_stable_and_safe_for_any_delivery_id()
    {
        Assert.Equal("01J@nudge", EmailContent.MessageIdFor("01J"));
        var odd = EmailContent.MessageIdFor("a b<c>@d");
        Assert.Equal(odd, EmailContent.MessageIdFor("a b<c>@d"));
        Assert.Matches("^h[0-9a-f]{32}@nudge$", odd);
    }

    internal static int ClosedPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        // Real time, for the loopback server to see a command: generous, as the machine may be loaded.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(20);
        }
    }
}
