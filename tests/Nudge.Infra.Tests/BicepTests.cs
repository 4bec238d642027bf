using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Nudge.Infra.Tests;

/// <summary>
/// infra-bicep/ compiles and lints clean, with warnings as failures (most Bicep type errors are warnings with exit
/// code 0), and the gate does fail on a broken file.
/// </summary>
public sealed class BicepTests
{
    private static IEnumerable<string> BicepFiles() =>
        Directory.EnumerateFiles(Repo.InfraDir, "*.bicep", SearchOption.AllDirectories).Order(StringComparer.Ordinal);

    [Fact]
    public async Task MainAndEveryModule_Build_WithoutWarnings()
    {
        using var tmp = Repo.NewTempDir();
        var result = await Bicep.RunAsync(Repo.InfraDir, "build", "--pattern", "**/*.bicep", "--outdir", tmp.Path);
        Bicep.AssertClean(result, "build");

        var files = BicepFiles().ToList();
        Assert.Contains(Path.Combine(Repo.InfraDir, "main.bicep"), files);
        Assert.True(files.Count >= 5, "expected main.bicep and its modules: " + string.Join(", ", files));
        foreach (var file in files)
        {
            var json = Path.Combine(tmp.Path, Path.ChangeExtension(Path.GetRelativePath(Repo.InfraDir, file), ".json"));
            Assert.True(File.Exists(json), $"{file} was not compiled to {json}");
            var template = JsonNode.Parse(await File.ReadAllTextAsync(json))!;
            Assert.NotNull(template["resources"]);
        }
    }

    [Fact]
    public async Task MainAndEveryModule_Lint_WithoutWarnings()
    {
        Bicep.AssertClean(await Bicep.RunAsync(Repo.InfraDir, "lint", "--pattern", "**/*.bicep"), "lint");
    }

    [Fact]
    public async Task EveryModule_IsALocalFile()
    {
        // br/public: (registry) and ts: (template spec) modules cannot be restored on our machines.
        var modules = 0;
        foreach (var file in BicepFiles())
        {
            foreach (Match m in Regex.Matches(await File.ReadAllTextAsync(file), @"^\s*module\s+\w+\s+'([^']+)'", RegexOptions.Multiline))
            {
                modules++;
                var path = m.Groups[1].Value;
                Assert.DoesNotContain(":", path, StringComparison.Ordinal);
                Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(file)!, path)), $"{file}: module {path} is not a local file");
            }
        }

        Assert.True(modules >= 5, $"main.bicep is expected to use local modules; found {modules}");
    }

    [Theory]
    [InlineData("dev", "serverless")]
    [InlineData("prod", "autoscale")]
    public async Task ParameterFiles_Build_AndLint_WithoutWarnings(string environment, string cosmosMode)
    {
        var file = $"{environment}.bicepparam";
        var built = await Bicep.RunAsync(Repo.InfraDir, "build-params", file, "--stdout");
        Bicep.AssertClean(built, "build-params " + file);
        Bicep.AssertClean(await Bicep.RunAsync(Repo.InfraDir, "lint", file), "lint " + file);

        // --stdout prints {"parametersJson": "...", "templateJson": "..."}.
        var parameters = JsonNode.Parse(JsonNode.Parse(built.Output)!["parametersJson"]!.GetValue<string>())!["parameters"]!;
        Assert.Equal(environment, parameters["environmentName"]!["value"]!.GetValue<string>());
        Assert.Equal(cosmosMode, parameters["cosmosThroughputMode"]!["value"]!.GetValue<string>());
        // With no NUDGE_* variables set, no secret has a value (secrets never live in the repository).
        foreach (var secret in new[] { "authApiKey", "authAdminKey", "twilioAuthToken", "sendGridApiKey", "apnsPrivateKey" })
        {
            Assert.Equal("", parameters[secret]!["value"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task ParameterFiles_ReadSecretsFromTheEnvironment()
    {
        var env = new Dictionary<string, string?>
        {
            ["NUDGE_AUTH_API_KEY"] = "k-123",
            ["NUDGE_EXISTING_SECRETS"] = "nudge-twilio-auth-token, nudge-sendgrid-api-key",
        };
        var built = await Bicep.RunAsync(Repo.InfraDir, env, "build-params", "dev.bicepparam", "--stdout");
        Bicep.AssertClean(built, "build-params dev.bicepparam");
        var parameters = JsonNode.Parse(JsonNode.Parse(built.Output)!["parametersJson"]!.GetValue<string>())!["parameters"]!;
        Assert.Equal("k-123", parameters["authApiKey"]!["value"]!.GetValue<string>());
        Assert.Equal(["nudge-twilio-auth-token", "nudge-sendgrid-api-key"],
            parameters["existingSecrets"]!["value"]!.AsArray().Select(n => n!.GetValue<string>()));
    }

    /// <summary>Each snippet must be caught by the gate; some only through the warning text, as bicep exits 0.</summary>
    [Theory]
    [InlineData("misspelled property", "BCP089", true, """
        resource sa 'Microsoft.Storage/storageAccounts@2025-01-01' = {
          name: 'stbroken'
          location: 'westeurope'
          kind: 'StorageV2'
          sku: { name: 'Standard_LRS' }
          properties: { allowSharedKeyAcess: false }
        }
        """)]
    [InlineData("value outside the allowed ones", "BCP036", true, """
        resource sa 'Microsoft.Storage/storageAccounts@2025-01-01' = {
          name: 'stbroken'
          location: 'westeurope'
          kind: 'StorageV2'
          sku: { name: 'Standard_LRS' }
          properties: { accessTier: 'Lukewarm' }
        }
        """)]
    [InlineData("unknown API version", "BCP081", true, """
        resource sa 'Microsoft.Storage/storageAccounts@2099-01-01' = {
          name: 'stbroken'
          location: 'westeurope'
          kind: 'StorageV2'
          sku: { name: 'Standard_LRS' }
        }
        """)]
    [InlineData("wrong type", "BCP036", true, """
        resource q 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
          name: 'ns/events'
          properties: { maxDeliveryCount: 'ten' }
        }
        """)]
    [InlineData("unknown symbol", "BCP057", false, """
        output x string = notDeclaredAnywhere
        """)]
    [InlineData("unused parameter (linter)", "no-unused-params", true, """
        param unused string
        """)]
    public async Task BrokenBicep_IsReported(string what, string code, bool exitsZero, string snippet)
    {
        using var tmp = Repo.NewTempDir();
        File.Copy(Path.Combine(Repo.InfraDir, "bicepconfig.json"), Path.Combine(tmp.Path, "bicepconfig.json"));
        await File.WriteAllTextAsync(Path.Combine(tmp.Path, "broken.bicep"), snippet + "\n");

        var build = await Bicep.RunAsync(tmp.Path, "build", "broken.bicep", "--stdout");
        var lint = await Bicep.RunAsync(tmp.Path, "lint", "broken.bicep");
        var reported = build.Output + lint.Output;
        Assert.False(Bicep.IsClean(build) && Bicep.IsClean(lint), $"{what} passed the gate: build {build}; lint {lint}");
        Assert.Contains(code, reported, StringComparison.Ordinal);
        if (exitsZero)
        {
            // This is why the gate reads the output: bicep itself calls it a success.
            Assert.Equal(0, build.ExitCode);
        }
    }

    [Fact]
    public async Task LintScript_PassesOnTheRepository()
    {
        var result = await Proc.RunAsync("bash", [Path.Combine(Repo.InfraDir, "lint.sh")], Repo.Root,
            new Dictionary<string, string?> { ["BICEP"] = Bicep.Path });
        Assert.True(result.ExitCode == 0, "infra-bicep/lint.sh failed: " + result);
        Assert.Equal(4, result.Output.Split('\n').Count(l => l.StartsWith("ok: bicep ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task LintScript_FailsOnABrokenModule()
    {
        using var tmp = Repo.NewTempDir();
        Repo.CopyTree(Repo.InfraDir, tmp.Path);
        // Type errors inside a module: bicep exits 0 and prints warnings.
        await File.WriteAllTextAsync(Path.Combine(tmp.Path, "modules", "broken.bicep"), """
            resource sa 'Microsoft.Storage/storageAccounts@2025-01-01' = {
              name: 'stbroken'
              location: 'westeurope'
              kind: 'StorageV2'
              sku: { name: 'Standard_LRS' }
              properties: { allowSharedKeyAcess: false }
            }

            """);
        var result = await Proc.RunAsync("bash", [Path.Combine(tmp.Path, "lint.sh")], tmp.Path,
            new Dictionary<string, string?> { ["BICEP"] = Bicep.Path });
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("FAIL: bicep build", result.Output, StringComparison.Ordinal);
        Assert.Contains("broken.bicep", result.Output, StringComparison.Ordinal);
    }
}
