using System.Text.RegularExpressions;

namespace Nudge.Infra.Tests;

/// <summary>README's "Deploy to Azure" section names what the templates and the workflow actually use.</summary>
public sealed class ReadmeTests
{
    private static string DeploySection()
    {
        var readme = File.ReadAllText(Repo.PathOf("README.md"));
        var start = readme.IndexOf("\n## Deploy to Azure\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no '## Deploy to Azure' section");
        var section = readme[start..];
        Assert.False(section[1..].Contains("\n## ", StringComparison.Ordinal), "'## Deploy to Azure' is expected to be the last section of README.md");
        return section;
    }

    [Fact]
    public void DeploySection_NamesEveryAppSetting()
    {
        var section = DeploySection();
        foreach (var setting in TemplateTests.PlainSettings.Keys.Concat(TemplateTests.SecretSettings.Keys))
        {
            // Rows list siblings by their last segment after the first full name (Nudge__Auth__SiteId, `ApiKey`, ...).
            var last = setting.Split("__")[^1];
            Assert.True(section.Contains($"`{setting}`", StringComparison.Ordinal) || section.Contains($"`{last}`", StringComparison.Ordinal),
                $"README's Deploy to Azure section does not mention {setting}");
        }
    }

    [Fact]
    public void DeploySection_NamesEveryVariableTheDeploymentReads()
    {
        var section = DeploySection();
        var names = Directory.EnumerateFiles(Repo.InfraDir, "*.bicepparam")
            .SelectMany(f => Regex.Matches(File.ReadAllText(f), @"readEnvironmentVariable\('(\w+)'").Select(m => m.Groups[1].Value))
            .Concat(Regex.Matches(File.ReadAllText(Path.Combine(Repo.WorkflowsDir, "deploy.yml")), @"\b(?:secrets|vars)\.(\w+)").Select(m => m.Groups[1].Value))
            .Distinct();
        foreach (var name in names)
        {
            Assert.True(section.Contains($"`{name}`", StringComparison.Ordinal), $"README's Deploy to Azure section does not mention {name}");
        }
    }
}
