using System.Globalization;
using System.Text.RegularExpressions;

namespace Nudge.Host.Tests;

/// <summary>
/// A log of <c>strace -f -tt -yy</c> read into system calls, in the order strace saw their entries and exits.
/// </summary>
/// <remarks>
/// The order is causal: a traced thread stops at each entry and exit until strace has handled it, so when one thread's
/// call returns before another thread's call starts (one waits for the other, as a response waits for a commit), strace
/// saw that exit before that entry. A call interrupted by another thread's event is written as <c>... &lt;unfinished
/// ...&gt;</c> at its entry and <c>&lt;... name resumed&gt;</c> at its exit; the two halves are joined here.
/// </remarks>
public sealed partial class StraceLog
{
    private const string Unfinished = " <unfinished ...>";

    private StraceLog(IReadOnlyList<Syscall> calls) => Calls = calls;

    /// <summary>Every complete call, ordered by exit.</summary>
    public IReadOnlyList<Syscall> Calls { get; }

    public static StraceLog Parse(IEnumerable<string> lines)
    {
        var calls = new List<Syscall>();
        var open = new Dictionary<int, (string Name, string Text, int Entry)>();
        var at = 0;
        foreach (var line in lines)
        {
            at++;
            if (Line().Match(line) is not { Success: true } m)
            {
                continue;
            }

            var pid = int.Parse(m.Groups["pid"].Value, CultureInfo.InvariantCulture);
            var rest = m.Groups["rest"].Value;
            if (Resumed().Match(rest) is { Success: true } r)
            {
                if (open.Remove(pid, out var o) && o.Name == r.Groups["name"].Value)
                {
                    calls.Add(Syscall.Of(pid, o.Name, o.Text + r.Groups["tail"].Value, o.Entry, at));
                }

                continue;
            }

            // Signals (--- SIG... ---) and exits (+++ ... +++) are not calls.
            if (Call().Match(rest) is not { Success: true } c)
            {
                continue;
            }

            var text = c.Groups["args"].Value;
            if (text.EndsWith(Unfinished, StringComparison.Ordinal))
            {
                open[pid] = (c.Groups["name"].Value, text[..^Unfinished.Length], at);
            }
            else
            {
                calls.Add(Syscall.Of(pid, c.Groups["name"].Value, text, at, at));
            }
        }

        return new StraceLog(calls);
    }

    [GeneratedRegex(@"^(?<pid>\d+) +\d\d:\d\d:\d\d\.\d+ (?<rest>.*)$")]
    private static partial Regex Line();

    [GeneratedRegex(@"^<\.\.\. (?<name>\w+) resumed>(?<tail>.*)$")]
    private static partial Regex Resumed();

    [GeneratedRegex(@"^(?<name>\w+)\((?<args>.*)$")]
    private static partial Regex Call();
}

/// <summary>
/// One system call: its thread, name, the descriptor of its first argument as -yy prints it (<c>202&lt;/data/queue.db-wal&gt;</c>,
/// <c>240&lt;TCP:[127.0.0.1:7071-&gt;127.0.0.1:45678]&gt;</c>), its arguments and result as printed (buffers up to -s bytes),
/// and the positions of its entry and exit in the log.
/// </summary>
public sealed partial record Syscall(int Pid, string Name, string Fd, string Text, long Result, int Entry, int Exit)
{
    public static Syscall Of(int pid, string name, string text, int entry, int exit) => new(
        pid, name, FdOf().Match(text) is { Success: true } f ? f.Value : "", text,
        ResultOf().Match(text) is { Success: true } r ? long.Parse(r.Groups[1].Value, CultureInfo.InvariantCulture) : long.MinValue, entry, exit);

    /// <summary>A read from a descriptor (a socket's bytes arrive through one of these).</summary>
    public bool IsRead => Name is "read" or "readv" or "recvfrom" or "recvmsg";

    /// <summary>A write to a descriptor that is not positioned (a socket's bytes leave through one of these).</summary>
    public bool IsSend => Name is "write" or "writev" or "sendto" or "sendmsg";

    /// <summary>A successful fsync or fdatasync.</summary>
    public bool IsSync => Name is "fsync" or "fdatasync" && Result == 0;

    /// <summary>The file's path, or null when the descriptor is not a file.</summary>
    public string? Path => Fd.IndexOf('<', StringComparison.Ordinal) is var i and >= 0 && Fd[i + 1] == '/' ? Fd[(i + 1)..^1] : null;

    /// <summary>Local and remote ports of a TCP socket, or null.</summary>
    public (int Local, int Remote)? Ports => TcpPorts().Match(Fd) is { Success: true } m
        ? (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture))
        : null;

    public bool Carries(string text) => Text.Contains(text, StringComparison.Ordinal);

    /// <summary>Where the call sits in the log, for messages: its name, descriptor and log lines.</summary>
    public override string ToString() => $"{Name}({Fd}) by thread {Pid} at log line {Entry}{(Exit != Entry ? $"-{Exit}" : "")}";

    // A socket's descriptor holds "->" (and, for IPv6, brackets), so it runs to "]>"; a file's has no angle brackets.
    [GeneratedRegex(@"^\d+<(?:TCP(?:v6)?:\[.*?\]>|[^<>]*(?:<[^<>]*>)?>)")]
    private static partial Regex FdOf();

    [GeneratedRegex(@"\) += (-?\d+)(?: [A-Z].*)?$")]
    private static partial Regex ResultOf();

    [GeneratedRegex(@"^\d+<TCP(?:v6)?:\[.*:(\d+)->.*:(\d+)\]>$")]
    private static partial Regex TcpPorts();
}
