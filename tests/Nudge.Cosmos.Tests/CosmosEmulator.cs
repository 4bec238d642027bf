using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Azure.Cosmos;
using Nudge.TestSupport;

namespace Nudge.Cosmos.Tests;

/// <summary>The tests that share one emulator process (they run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class CosmosCollection : ICollectionFixture<CosmosEmulator>
{
    public const string Name = "cosmos emulator";
}

/// <summary>
/// A Cosmos DB emulator for the tests: @vercel/cosmosdb-server (npm, installed by <c>npm ci</c> in tests/clients) run
/// through Emulator/cosmos-emulator.cjs, on a free 127.0.0.1 port, with a self-signed certificate made for this run.
/// Each test gets its own database (<see cref="NewDatabase"/>). Stopped by its process id on dispose.
/// </summary>
public sealed class CosmosEmulator : IAsyncLifetime
{
    /// <summary>The emulator's well-known account key (the server accepts any key, the SDK needs a base64 one).</summary>
    public const string Key = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Process? _process;
    private string? _certificates;
    private string? _thumbprint;

    public string Endpoint { get; private set; } = "";

    public async Task InitializeAsync()
    {
        // Before any client exists: otherwise the SDK probes the Azure VM metadata address, which is off this machine.
        Environment.SetEnvironmentVariable("COSMOS_DISABLE_IMDS_ACCESS", "true");

        var root = TestEnvironment.RepositoryRoot();
        var clients = Path.Combine(root, "tests", "clients");
        var package = Path.Combine(clients, "node_modules", "@vercel", "cosmosdb-server", "package.json");
        if (!File.Exists(package))
        {
            throw new InvalidOperationException(
                $"The Cosmos DB emulator is not installed ({package} is missing): run `npm ci` in {clients} (./test.sh does it). {HowToInstall}");
        }

        _certificates = Directory.CreateTempSubdirectory("nudge-cosmos-").FullName;
        var (cert, key) = WriteCertificate(_certificates);
        var port = TestEnvironment.FreePort();
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardInput = true, // the wrapper exits when this closes: it never outlives the tests
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = clients,
        };
        foreach (var a in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "Emulator", "cosmos-emulator.cjs"),
            "--port", port.ToString(CultureInfo.InvariantCulture), "--cert", cert, "--key", key, "--modules", clients,
        })
        {
            start.ArgumentList.Add(a);
        }

        try
        {
            _process = ChildProcesses.Start(start);
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"node is not installed ({e.Message}). {HowToInstall}", e);
        }

        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        // ~0.3 s on a quiet machine; the machine is shared with builds, so allow far more.
        var exited = _process.WaitForExitAsync();
        if (await Task.WhenAny(_ready.Task, exited, Task.Delay(TimeSpan.FromMinutes(2))) != _ready.Task)
        {
            var message = _process.HasExited
                ? $"the Cosmos DB emulator exited with code {_process.ExitCode}: {Output()}"
                : $"the Cosmos DB emulator was not ready within 2 minutes: {Output()}";

            // Stopped here rather than left to DisposeAsync: a fixture that failed to start is not always disposed.
            await ChildProcesses.StopAsync(_process);
            throw new InvalidOperationException(message);
        }

        Endpoint = $"https://127.0.0.1:{port}/";
        Admin = new CosmosClient(Endpoint, Key, new CosmosClientOptions
        {
            ConnectionMode = ConnectionMode.Gateway,
            LimitToEndpoint = true,
            HttpClientFactory = () => new HttpClient(new SocketsHttpHandler
            {
                SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c?.GetCertHashString() == _thumbprint },
            }),
        });
    }

    /// <summary>What to do when node or the emulator package is missing.</summary>
    public static string HowToInstall =>
        "Install Node.js 20+ with npm (Debian: apt-get install -y nodejs npm), then run `npm ci` in tests/clients. " +
        "CI (CI=true) installs both and fails without them.";

    /// <summary>Store settings for a database of its own (created on first open) in this emulator.</summary>
    public CosmosStoreOptions NewDatabase() => Options("t" + Guid.NewGuid().ToString("N"));

    /// <summary>Store settings for <paramref name="database"/> in this emulator.</summary>
    public CosmosStoreOptions Options(string database) => new()
    {
        Endpoint = Endpoint,
        Key = Key,
        Database = database,
        CreateContainers = true,
        AcceptAnyServerCertificate = true,
    };

    /// <summary>A client on the emulator for looking at documents directly (only this run's certificate is trusted).</summary>
    public CosmosClient Admin { get; private set; } = null!;

    /// <summary>Drops a test's database.</summary>
    public async Task DeleteDatabaseAsync(string database)
    {
        try
        {
            await Admin.GetDatabase(database).DeleteAsync();
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            // Never created (the test failed before opening its store).
        }
    }

    public async Task DisposeAsync()
    {
        Admin?.Dispose();
        if (_process is not null)
        {
            // The handle is bound to the PID we started: this stops that node process (and its children) only.
            await ChildProcesses.StopAsync(_process);
            _process.Dispose();
        }

        if (_certificates is not null)
        {
            Directory.Delete(_certificates, recursive: true);
        }
    }

    /// <summary>A self-signed certificate for 127.0.0.1 and localhost, made for this run only (PEM files).</summary>
    private (string Cert, string Key) WriteCertificate(string folder)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        _thumbprint = certificate.GetCertHashString();
        var cert = Path.Combine(folder, "cert.pem");
        var key = Path.Combine(folder, "key.pem");
        File.WriteAllText(cert, certificate.ExportCertificatePem());
        File.WriteAllText(key, rsa.ExportPkcs8PrivateKeyPem());
        return (cert, key);
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

        if (line.StartsWith("Ready on ", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
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
