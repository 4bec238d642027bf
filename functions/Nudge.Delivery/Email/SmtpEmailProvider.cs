using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Nudge.Delivery.Email;

/// <summary>
/// Sends email through an SMTP server with MailKit. Sessions are opened and authenticated on first use and kept
/// between sends, at most <see cref="SmtpEmailOptions.MaxConnections"/> of them (one by default), each used by one send
/// at a time; a session the server dropped, or one idle too long, is replaced. Sends beyond the sessions queue for one
/// as long as the sessions keep finishing sends. Every failure becomes a
/// <see cref="SendOutcome"/>: only the caller's cancellation token may end a send with <see cref="OperationCanceledException"/>.
/// </summary>
public sealed partial class SmtpEmailProvider : IEmailProvider, IAsyncDisposable, IDisposable
{
    // Servers close idle sessions (RFC 5321 4.5.3.2.7 suggests 5 minutes; hosted relays often use less, and NATs drop
    // silent flows without telling either side). Reconnecting after this long idle is cheaper than finding out by timeout.
    private static readonly TimeSpan MaxIdle = TimeSpan.FromSeconds(60);

    private readonly EmailOptions _options;
    private readonly TimeProvider _time;
    private readonly MailboxAddress _from;
    private readonly MailboxAddress? _replyTo;
    private readonly SecureSocketOptions _security;
    private readonly string _host;
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentStack<Session> _idle = new();
    private int _connectionsOpened;

    // When a session last came back usable (UTC ticks on _time): the queue is moving while this keeps advancing.
    private long _lastProgressTicks;
    private volatile bool _disposed;

    /// <summary>
    /// Creates the provider; no connection is made until the first send.
    /// Throws <see cref="ArgumentException"/> when From, ReplyTo, Smtp or RequestTimeoutSeconds are not usable.
    /// </summary>
    public SmtpEmailProvider(EmailOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.ValidateCommon();
        problems.AddRange(options.ValidateSmtp());
        EmailOptions.ThrowIfInvalid(problems, nameof(options));

        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        var from = EmailAddresses.Parse(options.From)!;
        _from = new MailboxAddress(string.IsNullOrWhiteSpace(options.FromName) ? from.Name : options.FromName, from.Address);
        _replyTo = string.IsNullOrWhiteSpace(options.ReplyTo) ? null : EmailAddresses.Parse(options.ReplyTo);
        _security = SmtpEmailOptions.SecurityMode(options.Smtp.Security)!.Value;
        _host = options.Smtp.Host!.Trim();
        _slots = new SemaphoreSlim(options.Smtp.MaxConnections, options.Smtp.MaxConnections);
    }

    public string Name => "smtp";

    /// <summary>False: an SMTP server's 250 says it queued the mail, and nothing reports what happened next.</summary>
    public bool ReportsDelivery => false;

    /// <summary>SMTP sessions opened so far (tests check that sends share them).</summary>
    internal int ConnectionsOpened => Volatile.Read(ref _connectionsOpened);

    /// <summary>
    /// Sends one message. Sent carries the Message-ID (without angle brackets), which is stable per
    /// <see cref="EmailRequest.MessageId"/>. A send waits for a session for as long as sessions keep coming back from
    /// their sends, so a burst on a healthy server is sent in full whatever its size; when no session has come back for
    /// RequestTimeoutSeconds (the server hangs or drops them) the outcome is RateLimited ("smtp_busy"): nothing was sent.
    /// Throws <see cref="OperationCanceledException"/> only when <paramref name="ct"/> is cancelled,
    /// <see cref="ArgumentException"/> when the request has no MessageId, and <see cref="ObjectDisposedException"/>
    /// after disposal.
    /// </summary>
    public async Task<SendOutcome> SendAsync(EmailRequest request, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var content = EmailContent.From(request, out var refused);
        if (content is null)
        {
            return refused!;
        }

        using var message = Build(content, request.MessageId);

        // Waiting for a session has its own budget, so a backlog does not eat into the send's and does not look like a
        // slow server (which a circuit breaker would count against the provider).
        if (!await WaitForSessionAsync(ct))
        {
            return SendOutcome.RateLimited(null, "smtp_busy");
        }

        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var budget = new CancellationTokenSource(_options.RequestTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, budget.Token);
            return await SendOnSessionAsync(message, linked.Token, ct);
        }
        finally
        {
            _slots.Release();
        }
    }

    private async Task<SendOutcome> SendOnSessionAsync(MimeMessage message, CancellationToken token, CancellationToken callerToken)
    {
        var session = TakeIdle();
        for (var attempt = 1; ; attempt++)
        {
            var reused = session is not null;
            var stage = Stage.Connect;
            try
            {
                session ??= await ConnectAsync(token);
                stage = Stage.Send;
                await session.Client.SendAsync(message, token);
                Return(session);
                return SendOutcome.Sent(message.MessageId);
            }
            catch (OperationCanceledException) when (callerToken.IsCancellationRequested)
            {
                // The session is mid-command: nothing more can be said on it.
                session?.Client.Dispose();
                throw;
            }
            catch (Exception ex)
            {
                var (outcome, keep, connectionLost) = Classify(ex, stage, token.IsCancellationRequested);
                if (session is not null && keep && session.Client.IsConnected)
                {
                    Return(session);
                }
                else
                {
                    session?.Client.Dispose();
                }

                session = null;

                // A kept session the server had already closed fails before the message is accepted: retry once on a
                // fresh one. (An IO error after the final dot could in theory duplicate the message, as any retry could.)
                if (reused && connectionLost && attempt == 1 && !token.IsCancellationRequested)
                {
                    continue;
                }

                return outcome;
            }
        }
    }

    /// <summary>
    /// Takes a session slot; false when none came free and no session came back from a send for RequestTimeout. A fixed
    /// wait would fail the tail of any burst larger than what the server sends in RequestTimeout (50 messages at 300 ms
    /// each already), though every session is working.
    /// </summary>
    private async Task<bool> WaitForSessionAsync(CancellationToken ct)
    {
        var queued = _time.GetUtcNow();
        using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var slot = _slots.WaitAsync(giveUp.Token);
        while (!slot.IsCompleted)
        {
            var progress = new DateTimeOffset(Interlocked.Read(ref _lastProgressTicks), TimeSpan.Zero);
            var left = (progress > queued ? progress : queued) + _options.RequestTimeout - _time.GetUtcNow();
            if (left <= TimeSpan.Zero)
            {
                giveUp.Cancel();
                break;
            }

            using var tick = new CancellationTokenSource();
            await Task.WhenAny(slot, Task.Delay(left, _time, tick.Token));
            await tick.CancelAsync();
        }

        try
        {
            await slot;
            return true;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>A kept session still worth using, or null; stale ones are closed on the way.</summary>
    private Session? TakeIdle()
    {
        while (_idle.TryPop(out var session))
        {
            if (session.Client.IsConnected && _time.GetUtcNow() - session.LastUsed < MaxIdle)
            {
                return session;
            }

            session.Client.Dispose();
        }

        return null;
    }

    private void Return(Session session)
    {
        session.LastUsed = _time.GetUtcNow();
        Interlocked.Exchange(ref _lastProgressTicks, session.LastUsed.UtcTicks);
        _idle.Push(session);

        // Disposal may have drained the stack between the check and the push: drain again rather than leak.
        if (_disposed)
        {
            CloseIdle();
        }
    }

    private async Task<Session> ConnectAsync(CancellationToken token)
    {
        var client = new SmtpClient { Timeout = (int)_options.RequestTimeout.TotalMilliseconds };
        Interlocked.Increment(ref _connectionsOpened);
        try
        {
            await client.ConnectAsync(_host, _options.Smtp.Port, _security, token);
            if (!string.IsNullOrEmpty(_options.Smtp.UserName))
            {
                await client.AuthenticateAsync(_options.Smtp.UserName, _options.Smtp.Password ?? "", token);
            }
        }
        catch
        {
            client.Dispose();
            throw;
        }

        return new Session(client) { LastUsed = _time.GetUtcNow() };
    }

    private sealed class Session(SmtpClient client)
    {
        public SmtpClient Client { get; } = client;

        public DateTimeOffset LastUsed { get; set; }
    }

    private MimeMessage Build(EmailContent content, string deliveryId)
    {
        var message = new MimeMessage { Subject = content.Subject, MessageId = content.MessageIdHeader, Date = _time.GetUtcNow() };
        message.From.Add(_from);
        message.To.Add(content.To);
        if (_replyTo is not null)
        {
            message.ReplyTo.Add(_replyTo);
        }

        message.Headers.Add(EmailContent.DeliveryIdHeader, deliveryId);
        foreach (var (name, value) in content.Headers)
        {
            message.Headers.Add(name, value);
        }

        var text = new TextPart("plain") { Text = content.Text };
        message.Body = content.Html is null
            ? text
            : new MultipartAlternative { text, new TextPart("html") { Text = content.Html } };
        return message;
    }

    private enum Stage
    {
        Connect,
        Send,
    }

    /// <summary>The outcome for a failed step, whether the session may be kept, and whether it was lost under us.</summary>
    private static (SendOutcome Outcome, bool Keep, bool ConnectionLost) Classify(Exception ex, Stage stage, bool budgetSpent)
    {
        switch (ex)
        {
            case OperationCanceledException or TimeoutException when budgetSpent || ex is TimeoutException:
                return (SendOutcome.Transient(DeliveryReason.Timeout, "timeout"), false, false);
            case AuthenticationException:
                return (SendOutcome.Permanent(DeliveryReason.ProviderAuth, "auth_failed"), false, false);
            case ServiceNotAuthenticatedException:
                // MailKit's reading of "530 authentication required": no UserName/Password configured for a server that wants them.
                return (SendOutcome.Permanent(DeliveryReason.ProviderAuth, "530"), false, false);
            case SmtpCommandException command:
                return ClassifyCommand(command);
            case SslHandshakeException:
                return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "tls_handshake_failed"), false, false);
            case NotSupportedException when stage == Stage.Connect:
                // STARTTLS or AUTH required by the settings but not offered by the server: a configuration problem.
                return (SendOutcome.Permanent(DeliveryReason.ProviderAuth, "not_supported_by_server"), false, false);
            case SocketException socket:
                return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, SocketDetail(socket)), false, stage == Stage.Send);
            case IOException io when io.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut }:
                return (SendOutcome.Transient(DeliveryReason.Timeout, "timeout"), false, false);
            case IOException io when io.InnerException is SocketException inner:
                return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, SocketDetail(inner)), false, stage == Stage.Send);
            case IOException:
                return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "connection_lost"), false, stage == Stage.Send);
            case SmtpProtocolException:
                return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "protocol_error"), false, stage == Stage.Send);
            case ServiceNotConnectedException:
                return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "not_connected"), false, true);
            default:
                return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "error:" + ex.GetType().Name), false, false);
        }
    }

    private static (SendOutcome Outcome, bool Keep, bool ConnectionLost) ClassifyCommand(SmtpCommandException ex)
    {
        var code = (int)ex.StatusCode;
        var enhanced = EnhancedStatus().Match(ex.Message ?? "");
        var detail = enhanced.Success ? $"{code} {enhanced.Value}" : code.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var enhancedClass = enhanced.Success ? enhanced.Value[2..] : "";

        if (code is >= 400 and < 500)
        {
            // 421: the server is closing the session (often an idle or per-session limit): a fresh one may well work.
            return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail), code != 421, code == 421);
        }

        if (code is < 500 or >= 600)
        {
            return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail), false, false);
        }

        // 530 authentication required, 535 / x.7.8 credentials refused, x.7.9 mechanism too weak: our settings are wrong.
        if (code is 530 or 535 || enhancedClass is "7.8" or "7.9")
        {
            return (SendOutcome.Permanent(DeliveryReason.ProviderAuth, detail), true, false);
        }

        if (ex.ErrorCode == SmtpErrorCode.RecipientNotAccepted && IsBadMailbox(code, enhancedClass))
        {
            return (SendOutcome.Permanent(DeliveryReason.InvalidRecipient, detail), true, false);
        }

        if ((code == 552 && ex.ErrorCode == SmtpErrorCode.MessageNotAccepted) || enhancedClass == "3.4")
        {
            return (SendOutcome.Permanent(DeliveryReason.PayloadTooLarge, detail), true, false);
        }

        return (SendOutcome.Permanent(DeliveryReason.ProviderRejected, detail), true, false);
    }

    // The address itself is bad (no such mailbox, bad syntax, mailbox disabled), as opposed to a policy or relay refusal
    // such as "550 5.7.1 relaying denied", which says nothing about the recipient and must not mark them undeliverable.
    private static bool IsBadMailbox(int code, string enhancedClass) => enhancedClass.Length > 0
        ? enhancedClass.StartsWith("1.", StringComparison.Ordinal) || enhancedClass == "2.1"
        : code is 550 or 551 or 553;

    private static string SocketDetail(SocketException ex) => ex.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "connection_refused",
        SocketError.ConnectionReset => "connection_reset",
        SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => "host_not_found",
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
        _ => "socket_error",
    };

    [GeneratedRegex(@"^[245]\.\d{1,3}\.\d{1,3}\b", RegexOptions.None, 1000)]
    private static partial Regex EnhancedStatus();

    private void CloseIdle()
    {
        while (_idle.TryPop(out var session))
        {
            session.Client.Dispose();
        }
    }

    /// <summary>Says QUIT on idle sessions and closes them; sessions in use close when their send ends.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        while (_idle.TryPop(out var session))
        {
            using var quit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await session.Client.DisconnectAsync(true, quit.Token);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Closing anyway.
            }

            session.Client.Dispose();
        }
    }

    /// <summary>Closes idle sessions without QUIT; sessions in use close when their send ends.</summary>
    public void Dispose()
    {
        _disposed = true;
        CloseIdle();
    }
}
