using System.Net.Http.Headers;
using System.Runtime.Versioning;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Nudge.Host.Hosting;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// The data folder holds profiles, consent and credentials: the folder is 0700 and every file in it 0600 (SQLite's
/// -wal and -shm included), whether Nudge creates them or finds them from an older version.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class DataFolderPermissionTests : IDisposable
{
    private const UnixFileMode Folder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode File600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _root = Directory.CreateTempSubdirectory("nudge-perms-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task ANewDataFolder_IsOwnerOnly_AndSoIsEveryFileInIt()
    {
        var dataDir = Path.Combine(_root, "nudge-data");

        await RunOnceAsync(dataDir);

        Assert.Equal(Folder, File.GetUnixFileMode(dataDir));
        AssertEveryFileOwnerOnly(dataDir, expected: ["credentials.json", "nudge.db", "nudge.lock", "queue.db"]);
    }

    [Fact]
    public async Task AFolderFromAnOlderVersion_IsTightened()
    {
        var dataDir = Path.Combine(_root, "old");
        Directory.CreateDirectory(dataDir, Folder | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        await RunOnceAsync(dataDir);
        var readable = File600 | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(dataDir, Folder | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        foreach (var f in Directory.EnumerateFiles(dataDir))
        {
            File.SetUnixFileMode(f, readable);
        }

        await RunOnceAsync(dataDir);

        Assert.Equal(Folder, File.GetUnixFileMode(dataDir));
        AssertEveryFileOwnerOnly(dataDir, expected: ["credentials.json", "nudge.db", "nudge.lock", "queue.db"]);
    }

    [Fact]
    public async Task AFolderHoldingOtherFiles_KeepsItsMode_ButNudgesFilesAreOwnerOnly()
    {
        // Someone pointed Nudge:DataDir at a folder of their own: its mode, and their notes.txt, are theirs to choose.
        var shared = Folder | UnixFileMode.GroupRead | UnixFileMode.GroupExecute;
        Directory.CreateDirectory(_root + "/mine", shared);
        File.WriteAllText(Path.Combine(_root, "mine", "notes.txt"), "mine");

        await RunOnceAsync(Path.Combine(_root, "mine"));

        Assert.Equal(shared, File.GetUnixFileMode(Path.Combine(_root, "mine")));
        foreach (var f in new[] { "credentials.json", "nudge.db", "nudge.lock", "queue.db" })
        {
            Assert.Equal(File600, File.GetUnixFileMode(Path.Combine(_root, "mine", f)));
        }
    }

    private static void AssertEveryFileOwnerOnly(string dataDir, string[] expected)
    {
        var files = Directory.EnumerateFileSystemEntries(dataDir).Where(f => !f.EndsWith("notes.txt", StringComparison.Ordinal))
            .Select(f => (Name: Path.GetFileName(f), Mode: File.GetUnixFileMode(f))).ToList();
        Assert.Empty(expected.Except(files.Select(f => f.Name)));
        Assert.All(files, f => Assert.True(f.Mode == File600, $"{f.Name} is {Convert.ToString((int)f.Mode, 8)}, not 600"));
    }

    /// <summary>
    /// Starts the embedded server on the folder (credentials generated on the first run, read on the next), writes an
    /// event (so the WAL files exist), and stops it.
    /// </summary>
    private static async Task RunOnceAsync(string dataDir)
    {
        var app = await NudgeServer.BuildAsync(["--urls=http://127.0.0.1:0", $"--Nudge:DataDir={dataDir}", "--Logging:LogLevel:Default=Warning"]);
        try
        {
            await app.StartAsync();
            var c = app.Services.GetRequiredService<Nudge.Host.Auth.Credentials>();
            using var track = new HttpClient { BaseAddress = NudgeServer.BaseAddress(app) };
            track.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Basic(c.SiteId, c.ApiKey));
            var r = await track.PutAsync("/api/v1/customers/perm-1", new StringContent("""{"email":"perm@example.com"}""", Encoding.UTF8, "application/json"));
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());

            // While it runs, the WAL files are there: they are checked too.
            AssertEveryFileOwnerOnly(dataDir, expected: ["nudge.db-wal", "queue.db-wal", "queue.db-shm"]);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
