using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Nudge.TestSupport;

namespace Nudge.Delivery.Tests.Email;

/// <summary>
/// A real maildev (npm maildev 3.0.0, installed by <c>npm ci</c> in tests/clients) on free 127.0.0.1 ports, with its
/// mail kept in a temporary folder; stopped by its process id on dispose.
/// </summary>
public sealed class MaildevFixture : IAsyncLifetime
{
    private readonly StringBuilder _output = new();
    private Process? _process;
    private string? _mailDirectory;

    public int SmtpPort { get; private set; }

    public HttpClient Api { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync()
    {
        var root = TestEnvironment.RepositoryRoot();
        var package = Path.Combine(root, "tests", "clients", "node_modules", "maildev", "package.json");
        if (!File.Exists(package))
        {
            throw new InvalidOperationException(
                $"maildev is not installed ({package} is missing): run `npm ci` in {Path.Combine(root, "tests", "clients")} first.");
        }

        // maildev 3 keeps its entry point under dist/; read it from package.json rather than guessing the layout.
        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(package));
        var bin = manifest.RootElement.GetProperty("bin");
        var entry = bin.ValueKind == JsonValueKind.String ? bin.GetString()! : bin.GetProperty("maildev").GetString()!;
        var script = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(package)!, entry));

        SmtpPort = TestEnvironment.FreePort();
        var webPort = TestEnvironment.FreePort();
        _mailDirectory = Directory.CreateTempSubdirectory("nudge-maildev-").FullName;
        Api.BaseAddress = new Uri($"http://127.0.0.1:{webPort}/");

        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.Combine(root, "tests", "clients"),
        };
        foreach (var arg in new[]
        {
            script, "--ip", "127.0.0.1", "--web-ip", "127.0.0.1", "-s", SmtpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-w", webPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--mail-directory", _mailDirectory, "--silent",
        })
        {
            start.ArgumentList.Add(arg);
        }

        _process = ChildProcesses.Start(start);
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        // ~0.8 s on a quiet machine; the build machine is shared, so allow far more.
        var waited = Stopwatch.StartNew();
        while (true)
        {
            string? failed = null;
            if (_process.HasExited)
            {
                failed = $"maildev exited with code {_process.ExitCode}: {Output()}";
            }
            else if (await ReadyAsync())
            {
                return;
            }
            else if (waited.Elapsed > TimeSpan.FromMinutes(2))
            {
                failed = $"maildev did not become ready within 2 minutes: {Output()}";
            }

            if (failed is not null)
            {
                // Stopped here rather than left to DisposeAsync: a fixture that failed to start is not always disposed.
                await ChildProcesses.StopAsync(_process);
                throw new InvalidOperationException(failed);
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Every message maildev holds (GET /api/email).</summary>
    public async Task<JsonElement[]> EmailsAsync()
    {
        using var doc = JsonDocument.Parse(await Api.GetStringAsync("api/email"));
        return [.. doc.RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    /// <summary>Messages to <paramref name="address"/>, waiting until at least <paramref name="count"/> have arrived.</summary>
    public async Task<JsonElement[]> WaitForAsync(string address, int count = 1)
    {
        // Ends as soon as they are there; the bound only stops a test whose messages never come, on a possibly loaded machine.
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            var found = (await EmailsAsync())
                .Where(e => e.GetProperty("to").EnumerateArray().Any(t => string.Equals(t.GetProperty("address").GetString(), address, StringComparison.OrdinalIgnoreCase)))
                .ToArray();
            if (found.Length >= count || DateTime.UtcNow > deadline)
            {
                return found;
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The raw message as maildev received it (GET /api/email/{id}/source).</summary>
    public Task<string> SourceAsync(JsonElement email) => Api.GetStringAsync($"api/email/{email.GetProperty("id").GetString()}/source");

    public async Task DisposeAsync()
    {
        Api.Dispose();
        if (_process is not null)
        {
            // The handle is bound to the PID we started, so this stops that process (and its children) only.
            await ChildProcesses.StopAsync(_process);
            _process.Dispose();
        }

        if (_mailDirectory is not null)
        {
            try
            {
                Directory.Delete(_mailDirectory, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: it is a temp folder.
            }
        }
    }

    private async Task<bool> ReadyAsync()
    {
        try
        {
            using var smtp = new TcpClient();
            await smtp.ConnectAsync(IPAddress.Loopback, SmtpPort);
            using var health = await Api.GetAsync("api/healthz");
            return health.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is SocketException or HttpRequestException or TaskCanceledException)
        {
            // Not listening yet, or too slow to answer on a loaded machine: asked again.
            return false;
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private string Output()
    {
        lock (_output)
        {
            return _output.Length == 0 ? "(no output)" : _output.ToString();
        }
    }
}
