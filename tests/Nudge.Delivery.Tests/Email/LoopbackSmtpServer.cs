using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Nudge.Delivery.Tests.Email;

/// <summary>
/// A scripted SMTP server on 127.0.0.1 speaking just enough of RFC 5321 for MailKit: greeting, EHLO (AUTH PLAIN LOGIN,
/// no PIPELINING so commands come one at a time), AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT. Replies come from the
/// script properties, so each test picks the SMTP code it wants the provider to see.
/// </summary>
internal sealed class LoopbackSmtpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _sessions = [];
    private readonly Task _accept;
    private int _connections;

    public LoopbackSmtpServer()
    {
        _listener.Start();
        _accept = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Sessions accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>The greeting line.</summary>
    public string Greeting { get; set; } = "220 loopback ESMTP ready";

    /// <summary>Reply to AUTH once the credentials are in, given user name and password.</summary>
    public Func<string, string, string> Auth { get; set; } = (_, _) => "235 2.7.0 Authentication successful";

    /// <summary>Reply to MAIL FROM.</summary>
    public string MailFrom { get; set; } = "250 2.1.0 Ok";

    /// <summary>Reply to RCPT TO, given the recipient address.</summary>
    public Func<string, string> RcptTo { get; set; } = _ => "250 2.1.5 Ok";

    /// <summary>Reply after the final dot of DATA; null never answers (the client times out).</summary>
    public string? DataEnd { get; set; } = "250 2.0.0 Ok: queued as LOOP1";

    /// <summary>Awaited before the reply after the final dot: lets a test hold a session busy.</summary>
    public Func<Task>? HoldDataEnd { get; set; }

    /// <summary>Close every session right after accepting this many messages on it (0: never).</summary>
    public int CloseAfterMessages { get; set; }

    /// <summary>Every command line received, in order (AUTH lines included).</summary>
    public ConcurrentQueue<string> Commands { get; } = new();

    /// <summary>Raw messages accepted (DATA content, dot-unstuffed).</summary>
    public ConcurrentQueue<string> Messages { get; } = new();

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            lock (_sessions)
            {
                _sessions.Add(SessionAsync(client));
            }
        }
    }

    private async Task SessionAsync(TcpClient client)
    {
        using var _ = client;
        var ct = _stop.Token;
        try
        {
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.UTF8);
            await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { NewLine = "\r\n", AutoFlush = true };
            await writer.WriteLineAsync(Greeting);
            if (!Greeting.StartsWith('2'))
            {
                return;
            }

            var accepted = 0;
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                Commands.Enqueue(line);
                var verb = line.Split(' ', 2)[0].ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await writer.WriteLineAsync("250-loopback\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10485760");
                        break;
                    case "HELO":
                        await writer.WriteLineAsync("250 loopback");
                        break;
                    case "AUTH":
                        await writer.WriteLineAsync(await AuthAsync(line, reader, writer, ct));
                        break;
                    case "MAIL":
                        await writer.WriteLineAsync(MailFrom);
                        if (MailFrom.StartsWith("421", StringComparison.Ordinal))
                        {
                            return;
                        }

                        break;
                    case "RCPT":
                        var reply = RcptTo(Address(line));
                        await writer.WriteLineAsync(reply);
                        if (reply.StartsWith("421", StringComparison.Ordinal))
                        {
                            return;
                        }

                        break;
                    case "DATA":
                        await writer.WriteLineAsync("354 End data with <CR><LF>.<CR><LF>");
                        var data = new StringBuilder();
                        while (await reader.ReadLineAsync(ct) is { } d && d != ".")
                        {
                            data.Append(d.StartsWith("..", StringComparison.Ordinal) ? d[1..] : d).Append("\r\n");
                        }

                        if (HoldDataEnd is { } hold)
                        {
                            await hold().WaitAsync(ct);
                        }

                        if (DataEnd is null)
                        {
                            await Task.Delay(Timeout.Infinite, ct);
                        }

                        // Recorded before the answer: a client that has its 250 must find its message here.
                        var accept = DataEnd!.StartsWith('2');
                        if (accept)
                        {
                            Messages.Enqueue(data.ToString());
                        }

                        await writer.WriteLineAsync(DataEnd);
                        if (accept && ++accepted == CloseAfterMessages)
                        {
                            return;
                        }

                        break;
                    case "RSET":
                    case "NOOP":
                        await writer.WriteLineAsync("250 2.0.0 Ok");
                        break;
                    case "QUIT":
                        await writer.WriteLineAsync("221 2.0.0 Bye");
                        return;
                    default:
                        await writer.WriteLineAsync("502 5.5.2 Command not recognized");
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away or the server is stopping.
        }
    }

    private async Task<string> AuthAsync(string line, StreamReader reader, StreamWriter writer, CancellationToken ct)
    {
        var parts = line.Split(' ');
        var mechanism = parts.Length > 1 ? parts[1].ToUpperInvariant() : "";
        if (mechanism == "PLAIN")
        {
            var initial = parts.Length > 2 ? parts[2] : null;
            if (initial is null)
            {
                await writer.WriteLineAsync("334 ");
                initial = await reader.ReadLineAsync(ct) ?? "";
            }

            var fields = Encoding.UTF8.GetString(Convert.FromBase64String(initial)).Split('\0');
            return Auth(fields[1], fields[2]);
        }

        if (mechanism == "LOGIN")
        {
            var user = parts.Length > 2 ? parts[2] : null;
            if (user is null)
            {
                await writer.WriteLineAsync("334 VXNlcm5hbWU6");
                user = await reader.ReadLineAsync(ct) ?? "";
            }

            await writer.WriteLineAsync("334 UGFzc3dvcmQ6");
            var password = await reader.ReadLineAsync(ct) ?? "";
            return Auth(Encoding.UTF8.GetString(Convert.FromBase64String(user)), Encoding.UTF8.GetString(Convert.FromBase64String(password)));
        }

        return "504 5.5.4 Unrecognized authentication type";
    }

    private static string Address(string command)
    {
        var start = command.IndexOf('<');
        var end = command.IndexOf('>', start + 1);
        return start >= 0 && end > start ? command[(start + 1)..end] : "";
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept;
        Task[] sessions;
        lock (_sessions)
        {
            sessions = [.. _sessions];
        }

        await Task.WhenAll(sessions);
        _listener.Dispose();
        _stop.Dispose();
    }
}
