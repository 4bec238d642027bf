using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Nudge.TestSupport;

namespace Nudge.Host.Tests;

/// <summary>Nudge.Host as a real child process (dotnet Nudge.Host.dll), so tests can kill -9 it.</summary>
public sealed partial class NudgeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private NudgeProcess(Process process) => _process = process;

    public Uri BaseAddress { get; private set; } = null!;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>The child's process id (its CPU time is in /proc/{pid}/stat).</summary>
    public int Pid => _process.Id;

    /// <summary>Starts it and waits until it listens: up to two minutes, as a shared 2-core machine may need.</summary>
    /// <exception cref="InvalidOperationException">It exited before listening (its output is in the message).</exception>
    /// <exception cref="TimeoutException">It did not listen within the time; it was stopped.</exception>
    public static Task<NudgeProcess> StartAsync(string dataDir, params string[] extraArgs) =>
        StartAsync(dataDir, extraArgs, TimeSpan.FromMinutes(2));

    /// <inheritdoc cref="StartAsync(string, string[])"/>
    public static Task<NudgeProcess> StartAsync(string dataDir, string[] extraArgs, TimeSpan timeout) =>
        StartAsync(dataDir, extraArgs, timeout, launcher: []);

    /// <summary>
    /// Starts the host under <paramref name="launcher"/> (a program and its arguments, e.g. strace and its options), which
    /// runs <c>dotnet Nudge.Host.dll ...</c>; with none, dotnet is the child. <see cref="Pid"/> is then the launcher's.
    /// </summary>
    public static async Task<NudgeProcess> StartAsync(string dataDir, string[] extraArgs, TimeSpan timeout, IReadOnlyList<string> launcher)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Nudge.Host.dll");
        var psi = new ProcessStartInfo(launcher.Count > 0 ? launcher[0] : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dataDir,
        };
        foreach (var a in launcher.Skip(1).Concat(launcher.Count > 0 ? ["dotnet"] : []).Concat([dll, "--urls=http://127.0.0.1:0", $"--Nudge:DataDir={dataDir}"]).Concat(extraArgs))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_NOLOGO"] = "1";
        var p = new NudgeProcess(ChildProcesses.Start(psi));
        try
        {
            p._process.OutputDataReceived += (_, e) => p.OnLine(e.Data);
            p._process.ErrorDataReceived += (_, e) => p.OnLine(e.Data);
            p._process.BeginOutputReadLine();
            p._process.BeginErrorReadLine();
            var exited = p._process.WaitForExitAsync();
            var ready = await Task.WhenAny(p._listening.Task, exited, Task.Delay(timeout));
            if (ready == exited)
            {
                // WaitForExitAsync returns once the output is read to its end, so the message holds all of it.
                throw new InvalidOperationException($"Nudge.Host exited with code {p._process.ExitCode} before listening: {p.Output}");
            }

            if (ready != p._listening.Task)
            {
                throw new TimeoutException($"Nudge.Host did not listen within {timeout.TotalSeconds:0} s: {p.Output}");
            }

            p.BaseAddress = await p._listening.Task;
            return p;
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }
    }

    /// <summary>SIGKILL: no shutdown hooks, no flushing; only what was durable survives.</summary>
    public Task KillHardAsync() => ChildProcesses.StopAsync(_process);

    /// <summary>Waits until the child has exited (e.g. a launcher whose own child was stopped).</summary>
    public Task WaitForExitAsync(CancellationToken ct = default) => _process.WaitForExitAsync(ct);

    /// <summary>
    /// Waits until its output holds <paramref name="text"/>: lines after the "listening" one (the rest of the banner)
    /// arrive on the reader thread a little later. Up to a minute, for a loaded machine; false if it never came.
    /// </summary>
    public async Task<bool> WaitForOutputAsync(string text)
    {
        var waited = Stopwatch.StartNew();
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (waited.Elapsed > TimeSpan.FromMinutes(1) || HasExited)
            {
                return Output.Contains(text, StringComparison.Ordinal);
            }

            await Task.Delay(20);
        }

        return true;
    }

    /// <summary>Stops it by its PID (SIGKILL) if it still runs.</summary>
    public async ValueTask DisposeAsync()
    {
        await ChildProcesses.StopAsync(_process);
        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (Listening().Match(line) is { Success: true } m)
        {
            _listening.TrySetResult(new Uri(m.Groups[1].Value));
        }
    }

    [GeneratedRegex(@"Nudge is listening on (http://\S+)")]
    private static partial Regex Listening();
}
