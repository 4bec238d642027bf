using System.Diagnostics;
using System.Text;
using Nudge.TestSupport;

namespace Nudge.Functions.Tests;

/// <summary>
/// Nudge.Host started as the Functions host starts it: a child process with FUNCTIONS_CUSTOMHANDLER_PORT (or the legacy
/// FUNCTIONS_HTTPWORKER_PORT) and the app settings as environment variables. Stopped by its PID.
/// </summary>
public sealed class HandlerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private HandlerProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

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

    /// <summary>The settings every Functions-mode start needs, as environment variables (app settings).</summary>
    public static Dictionary<string, string> Settings(string dataDir) => new()
    {
        ["Nudge__DataDir"] = dataDir,
        ["Nudge__Auth__SiteId"] = FunctionsHostFixture.SiteId,
        ["Nudge__Auth__ApiKey"] = FunctionsHostFixture.ApiKey,
        ["Nudge__Auth__SegmentWriteKey"] = FunctionsHostFixture.WriteKey,
        ["Nudge__Auth__AdminKey"] = FunctionsHostFixture.AdminKey,
        ["Nudge__Auth__LinkKey"] = FunctionsHostFixture.LinkKey,
        ["Nudge__PublicBaseUrl"] = "https://nudge-test.azurewebsites.net",
        ["Nudge__Journeys__Dir"] = Path.Combine(AppContext.BaseDirectory, "testdata", "journeys"),
    };

    /// <summary>Starts <paramref name="fileName"/> (with <paramref name="args"/>) and waits for the readiness probe to answer.</summary>
    public static async Task<HandlerProcess> StartAsync(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string> env,
        string workingDirectory, string portVariable = "FUNCTIONS_CUSTOMHANDLER_PORT")
    {
        var port = TestEnvironment.FreePort();
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["FUNCTIONS_WORKER_RUNTIME"] = "custom";
        psi.Environment[portVariable] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        var p = new HandlerProcess(ChildProcesses.Start(psi), port);
        try
        {
            p._process.OutputDataReceived += (_, e) => p.Append(e.Data);
            p._process.ErrorDataReceived += (_, e) => p.Append(e.Data);
            p._process.BeginOutputReadLine();
            p._process.BeginErrorReadLine();
            await p.WaitUntilReadyAsync();
            return p;
        }
        catch
        {
            // Whatever ended the wait (a probe timing out included), the child must not outlive it.
            await p.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs it to completion (for start-up failures) and returns the exit code with everything it printed.</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string> env, string workingDirectory)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["FUNCTIONS_CUSTOMHANDLER_PORT"] = TestEnvironment.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        using var process = ChildProcesses.Start(psi);
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("the handler did not exit within 2 minutes");
            }

            return (process.ExitCode, await stdout + await stderr);
        }
        finally
        {
            await ChildProcesses.StopAsync(process);
        }
    }

    /// <summary>Stops it by its PID (SIGKILL) if it still runs.</summary>
    public async ValueTask DisposeAsync()
    {
        await ChildProcesses.StopAsync(_process);
        _process.Dispose();
    }

    /// <summary>
    /// As the Functions host does: GET / until any HTTP answer. Each probe may take long on a loaded machine and is then
    /// simply repeated; only the child exiting, or two minutes without an answer, ends the wait.
    /// </summary>
    /// <exception cref="InvalidOperationException">The child exited first.</exception>
    /// <exception cref="TimeoutException">No answer within two minutes.</exception>
    private async Task WaitUntilReadyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync();
                throw new InvalidOperationException($"the handler exited with code {_process.ExitCode} before answering the readiness probe: {Output}");
            }

            try
            {
                using var r = await http.GetAsync(BaseAddress);
                return;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                await Task.Delay(50);
            }
        }

        throw new TimeoutException("the handler did not answer the readiness probe within 2 minutes: " + Output);
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
