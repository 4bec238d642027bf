using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Nudge.Host.Hosting;

namespace Nudge.Functions.Tests;

/// <summary>Functions mode as the host starts it: the port variable, loopback only, no workers, settings checked up front.</summary>
public sealed class StartupTests
{
    private static string HostDll => Path.Combine(AppContext.BaseDirectory, "Nudge.Host.dll");

    [Theory]
    [InlineData("FUNCTIONS_CUSTOMHANDLER_PORT")]
    [InlineData("FUNCTIONS_HTTPWORKER_PORT")]
    public async Task PortVariable_StartsFunctionsModeOnLoopbackWithoutWorkers(string variable)
    {
        var dataDir = Directory.CreateTempSubdirectory("nudge-fn-proc-").FullName;
        try
        {
            await using (var p = await HandlerProcess.StartAsync("dotnet", [HostDll, "--urls=http://0.0.0.0:0"], HandlerProcess.Settings(dataDir), dataDir, variable))
            {
                using var http = new HttpClient { BaseAddress = p.BaseAddress };
                var ready = await http.GetFromJsonAsync<JsonObject>("/");

                Assert.Equal("ready", ready!["status"]!.GetValue<string>());
                Assert.Contains($"Nudge is listening on http://127.0.0.1:{p.Port} (Azure Functions custom handler", p.Output);
                Assert.Contains("workers off", p.Output);
                Assert.DoesNotContain("credentials", p.Output, StringComparison.OrdinalIgnoreCase);

                // The handler ignores --urls: it listens on 127.0.0.1 only, so another loopback address finds nobody there.
                using var other = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
                var refused = await Assert.ThrowsAnyAsync<Exception>(() => other.GetAsync(new Uri($"http://127.0.0.2:{p.Port}/")));
                Assert.True(refused is HttpRequestException or TaskCanceledException, refused.ToString());
            }

            // Functions mode keeps no generated credentials and no local queue.
            Assert.False(File.Exists(Path.Combine(dataDir, "credentials.json")));
            Assert.False(File.Exists(Path.Combine(dataDir, "queue.db")));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task MissingCredentials_FailStartUpNamingEverySetting()
    {
        var dataDir = Directory.CreateTempSubdirectory("nudge-fn-proc-").FullName;
        try
        {
            var env = HandlerProcess.Settings(dataDir);
            env.Remove("Nudge__Auth__ApiKey");
            env["Nudge__Auth__AdminKey"] = "";
            env["Nudge__Auth__LinkKey"] = "short";

            var (code, output) = await HandlerProcess.RunToExitAsync("dotnet", [HostDll], env, dataDir);

            Assert.Equal(NudgeConfigurationException.ExitCode, code);
            Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
            Assert.Contains("Nudge__Auth__ApiKey", output);
            Assert.Contains("Nudge__Auth__AdminKey", output);
            Assert.Contains("Nudge:Auth:LinkKey must be at least 32 characters", output);
            Assert.DoesNotContain(FunctionsHostFixture.WriteKey, output);
            Assert.Empty(Directory.EnumerateFileSystemEntries(dataDir));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task MissingPublicBaseUrl_FailsStartUp()
    {
        var dataDir = Directory.CreateTempSubdirectory("nudge-fn-").FullName;
        try
        {
            var args = FunctionsHostFixture.Args(dataDir).Where(a => !a.StartsWith("--Nudge:PublicBaseUrl", StringComparison.Ordinal)).ToArray();

            var e = await Assert.ThrowsAsync<NudgeConfigurationException>(() => NudgeServer.BuildAsync(args));

            Assert.Contains("Nudge__PublicBaseUrl", e.Message);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task CosmosStore_MissingOrInvalidSettings_FailStartUpClearly()
    {
        var dataDir = Directory.CreateTempSubdirectory("nudge-fn-").FullName;
        try
        {
            var missing = await Assert.ThrowsAsync<NudgeConfigurationException>(() =>
                NudgeServer.BuildAsync(FunctionsHostFixture.Args(dataDir, "--Nudge:Store:Kind=cosmos")));
            var invalid = await Assert.ThrowsAsync<NudgeConfigurationException>(() =>
                NudgeServer.BuildAsync(FunctionsHostFixture.Args(dataDir, "--Nudge:Store:Kind=cosmos", "--Nudge:Cosmos:Endpoint=nudge.documents.azure.com",
                    "--Nudge:Cosmos:Database=a/b", "--Nudge:Cosmos:Key=not base64!")));
            var unknown = await Assert.ThrowsAsync<NudgeConfigurationException>(() =>
                NudgeServer.BuildAsync(FunctionsHostFixture.Args(dataDir, "--Nudge:Store:Kind=mongo")));

            Assert.Contains("Nudge:Cosmos:Endpoint (app setting Nudge__Cosmos__Endpoint) is required", missing.Message);
            Assert.Contains("Nudge__Cosmos__Endpoint) must be an absolute https URL", invalid.Message);
            Assert.Contains("Nudge__Cosmos__Database) 'a/b' is not a valid Cosmos DB name", invalid.Message);
            Assert.Contains("Nudge__Cosmos__Key) is not a base64 account key", invalid.Message);
            Assert.DoesNotContain("not base64!", invalid.Message);
            Assert.Contains("'mongo' is not a store", unknown.Message);

            // Nothing was created for a store that is not SQLite.
            Assert.Empty(Directory.EnumerateFileSystemEntries(dataDir));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task BadPortVariable_FailsStartUp()
    {
        var e = await Assert.ThrowsAsync<NudgeConfigurationException>(() => NudgeServer.BuildAsync(["--FUNCTIONS_CUSTOMHANDLER_PORT=http"]));

        Assert.Contains("FUNCTIONS_CUSTOMHANDLER_PORT: 'http' is not a TCP port", e.Message);
    }
}
