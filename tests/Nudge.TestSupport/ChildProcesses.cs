using System.Diagnostics;
using System.Globalization;

namespace Nudge.TestSupport;

/// <summary>
/// Starts the child processes tests need (Nudge.Host, the node emulators, maildev, tools) and stops them by PID. Every
/// child is recorded with its PID and its start time (so a reused PID is never taken for it) in
/// artifacts/test-children/, one file per test process; after `dotnet test`, test.sh runs tests/check-children.sh,
/// which names and kills any recorded child still running and fails the run.
/// </summary>
public static class ChildProcesses
{
    private static readonly Lock Gate = new();

    /// <summary>Where the records go: artifacts/test-children under the repository root (git ignores artifacts/).</summary>
    public static string RegistryDirectory => Path.Combine(TestEnvironment.RepositoryRoot(), "artifacts", "test-children");

    /// <summary>Starts <paramref name="start"/> and records the child; the caller must stop it with <see cref="StopAsync"/>.</summary>
    /// <exception cref="InvalidOperationException">The process could not be started.</exception>
    public static Process Start(ProcessStartInfo start)
    {
        ArgumentNullException.ThrowIfNull(start);
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        try
        {
            Record(process, start);
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }

        return process;
    }

    /// <summary>
    /// Stops the child by its PID (SIGKILL to it and its descendants) unless it has exited, and waits until it has.
    /// Never throws for a child that is already gone.
    /// </summary>
    public static async Task StopAsync(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited (or never started) in between.
            return;
        }

        // SIGKILL cannot be refused; the bound only guards against a stray holder of the redirected output pipes,
        // which WaitForExitAsync also waits for.
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(bound.Token);
        }
        catch (OperationCanceledException)
        {
            // Killed; the pipes closing late does not keep the child alive.
        }
    }

    private static void Record(Process process, ProcessStartInfo start)
    {
        if (!OperatingSystem.IsLinux() || StartTime(process.Id) is not { } started)
        {
            // Not Linux (no /proc to check against later), or already exited and reaped: nothing can be left behind.
            return;
        }

        var what = string.Join(' ', new[] { start.FileName }.Concat(start.ArgumentList.Take(1)).Append(start.Arguments).Where(s => s.Length > 0))
            .Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');
        if (what.Length > 200)
        {
            what = what[..200];
        }

        var line = string.Create(CultureInfo.InvariantCulture, $"{process.Id}\t{started}\t{what}\n");
        lock (Gate)
        {
            Directory.CreateDirectory(RegistryDirectory);
            File.AppendAllText(Path.Combine(RegistryDirectory, $"testhost-{Environment.ProcessId}.tsv"), line);
        }
    }

    /// <summary>Field 22 of /proc/{pid}/stat: clock ticks from boot to the process's start; null when it is gone.</summary>
    private static string? StartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");

            // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields[19];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
