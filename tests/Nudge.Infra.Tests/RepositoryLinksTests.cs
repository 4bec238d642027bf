namespace Nudge.Infra.Tests;

/// <summary>
/// The repository stands alone: its markdown links resolve inside it, and nothing it holds cites a page that is not in
/// it. The first three tests scan the tracked files; the rest prove on a small made-up repository that the checks catch
/// each kind of bad link, so a check that passes because it looks at nothing would fail here.
/// </summary>
public sealed class RepositoryLinksTests
{
    /// <summary>This file's own examples of bad links and citations, which the scans of the repository skip.</summary>
    private const string ThisFile = "tests/Nudge.Infra.Tests/RepositoryLinksTests.cs";

    [Fact]
    public async Task MarkdownFiles_EveryRelativeLinkAndImageResolvesInsideTheRepository()
    {
        var tracked = await TrackedAsync();
        var markdown = tracked.Where(f => f.EndsWith(".md", StringComparison.Ordinal) && File.Exists(Repo.PathOf(f))).ToList();
        Assert.Contains("README.md", markdown);
        Assert.Contains("docs/architecture.md", markdown);

        var problems = markdown.SelectMany(f => RepositoryLinks.MarkdownLinkProblems(Repo.Root, f, tracked)).ToList();

        Assert.True(problems.Count == 0, "Markdown links that do not resolve inside the repository:" + Lines(problems));
    }

    [Fact]
    public async Task TrackedFiles_NameNoFolderOutsideTheRepository()
    {
        var problems = (await TextFilesAsync())
            .SelectMany(f => RepositoryLinks.OutsideReferenceProblems(f.Path, f.Text))
            .ToList();

        Assert.True(problems.Count == 0, "References to a folder outside the repository:" + Lines(problems));
    }

    [Fact]
    public async Task TrackedFiles_CiteOnlyMarkdownFilesThatAreInTheRepository()
    {
        var tracked = await TrackedAsync();
        var problems = (await TextFilesAsync())
            .SelectMany(f => RepositoryLinks.MarkdownMentionProblems(Repo.Root, f.Path, f.Text, tracked))
            .ToList();

        Assert.True(problems.Count == 0, "Markdown files cited that are not in the repository:" + Lines(problems));
    }

    [Fact]
    public void MarkdownLinkProblems_NameFileLineAndLink_ForEachKindOfBadLink()
    {
        using var repo = Repo.NewTempDir();
        var root = Path.Combine(repo.Path, "repo");
        Write(root, "docs/guide.md", """
            # Guide

            ## Second heading

            ## Second heading

            ## `IStore` and reports, conversions
            """);
        Write(root, "docs/untracked.md", "# Not added");
        Write(root, "img/logo.png", "png");
        Write(root, "README.md", """
            # Readme

            Good: [guide](docs/guide.md), [anchor](docs/guide.md#second-heading), [again](docs/guide.md#second-heading-1),
            [code heading](docs/guide.md#istore-and-reports-conversions), [here](#readme), [folder](docs/), ![logo](img/logo.png),
            [root](/docs/guide.md), [web](https://example.com/x.md), [mail](mailto:a@example.com).
            Code is not a link: `[x](nowhere.md)`, batch[3](y) is.
            ```
            [in a fence](nowhere-either.md)
            ```
            Outside: [up](../outside.md)
            Missing: [gone](docs/missing.md) ![pic](img/none.png)
            Anchor: [bad](docs/guide.md#no-such-heading) [self](#nothing-here)
            Untracked: [local](docs/untracked.md)
            Scheme: [file](file:///etc/passwd)
            <img src="img/absent.svg">

            [ref]: docs/ref-missing.md
            """);
        var tracked = new HashSet<string>(StringComparer.Ordinal) { "README.md", "docs/guide.md", "img/logo.png" };

        var problems = RepositoryLinks.MarkdownLinkProblems(root, "README.md", tracked);

        string[] expected =
        [
            "README.md:6: y: no such file in the repository",
            "README.md:10: ../outside.md: resolves outside the repository",
            "README.md:11: docs/missing.md: no such file in the repository",
            "README.md:11: img/none.png: no such file in the repository",
            "README.md:12: docs/guide.md#no-such-heading: docs/guide.md has no heading or anchor #no-such-heading",
            "README.md:12: #nothing-here: this file has no heading or anchor #nothing-here",
            "README.md:13: docs/untracked.md: exists but is not tracked by git",
            "README.md:14: file:///etc/passwd: the scheme file: leaves the repository",
            "README.md:15: img/absent.svg: no such file in the repository",
            "README.md:17: docs/ref-missing.md: no such file in the repository",
        ];
        Assert.Equal(expected, problems);
    }

    [Fact]
    public void OutsideReferenceProblems_NameEveryLineThatPointsAtTheSharedFolder()
    {
        var text = $"fine\nsee `{RepositoryLinks.SharedFolder}/DESIGN.md`\nfine\n// {RepositoryLinks.SharedFolder}/facts\n";

        Assert.Equal(
            new[]
            {
                $"README.md:2: names {RepositoryLinks.SharedFolder}, a folder outside the repository",
                $"README.md:4: names {RepositoryLinks.SharedFolder}, a folder outside the repository",
            },
            RepositoryLinks.OutsideReferenceProblems("README.md", text));
    }

    [Fact]
    public void MarkdownMentionProblems_AcceptFilesThatExist_AndNameTheRest()
    {
        using var repo = Repo.NewTempDir();
        var root = Path.Combine(repo.Path, "repo");
        Write(root, "README.md", "# Readme");
        Write(root, "journeys/README.md", "# Journeys");
        var tracked = new HashSet<string>(StringComparer.Ordinal) { "README.md", "journeys/README.md", "src/Queue.cs" };
        var text = """
            /// <summary>The queues (see README.md and journeys/README.md; https://example.com/DESIGN.md is elsewhere).</summary>
            /// <summary>The queues (DESIGN.md).</summary>
            // facts/functions-custom-handler.md, ../../README.md and /work/shared/STYLE.md
            """;

        var problems = RepositoryLinks.MarkdownMentionProblems(root, "src/Queue.cs", text, tracked);

        string[] expected =
        [
            "src/Queue.cs:2: names DESIGN.md, which is not a file in the repository",
            "src/Queue.cs:3: names facts/functions-custom-handler.md, which is not a file in the repository",
            "src/Queue.cs:3: names ../../README.md, which is not a file in the repository (the path leaves it)",
            "src/Queue.cs:3: names /work/shared/STYLE.md, which is not a file in the repository",
        ];
        Assert.Equal(expected, problems);
    }

    [Theory]
    [InlineData("Reports, conversions and alerts", "reports-conversions-and-alerts")]
    [InlineData("Webhooks, statuses and consent", "webhooks-statuses-and-consent")]
    [InlineData("Azure Functions (today: a custom handler)", "azure-functions-today-a-custom-handler")]
    [InlineData("The `IStore` contract", "the-istore-contract")]
    [InlineData("Send claims and fencing", "send-claims-and-fencing")]
    [InlineData("See [the guide](x.md) now", "see-the-guide-now")]
    [InlineData("cart_recovery / winback", "cart_recovery--winback")]
    public void Slug_IsGitHubsAnchorForTheHeading(string heading, string anchor) =>
        Assert.Equal(anchor, RepositoryLinks.Slug(heading));

    private static void Write(string root, string relative, string text)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private static string Lines(IEnumerable<string> problems) => string.Concat(problems.Select(p => Environment.NewLine + "  " + p));

    /// <summary>The files git tracks (relative, '/' separators), without installed npm packages.</summary>
    private static async Task<IReadOnlySet<string>> TrackedAsync()
    {
        var git = Proc.Which("git");
        if (git is null)
        {
            Assert.Fail("git is not on PATH: install it (apt-get install -y git); these tests list the tracked files with git ls-files.");
        }

        // core.quotePath off: names with non-ASCII letters come out as they are, not as quoted escapes.
        var r = await Proc.RunAsync(git!, ["-c", "core.quotePath=off", "ls-files"], Repo.Root);
        Assert.True(r.ExitCode == 0, $"git ls-files failed in {Repo.Root} (is it a git checkout?) {r}");
        var files = r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(f => !f.Split('/').Contains("node_modules"))
            .ToHashSet(StringComparer.Ordinal);
        Assert.Contains("README.md", files);
        return files;
    }

    /// <summary>Every tracked text file present in the working tree (a NUL byte marks a binary one), except this file.</summary>
    private static async Task<IReadOnlyList<(string Path, string Text)>> TextFilesAsync()
    {
        var files = new List<(string, string)>();
        foreach (var f in (await TrackedAsync()).Where(f => f != ThisFile).Order(StringComparer.Ordinal))
        {
            var path = Repo.PathOf(f);
            if (!File.Exists(path))
            {
                continue; // deleted in the working tree, not yet in the index
            }

            var text = await File.ReadAllTextAsync(path);
            if (!text.Contains('\0', StringComparison.Ordinal))
            {
                files.Add((f, text));
            }
        }

        Assert.True(files.Count > 100, $"only {files.Count} tracked text files found under {Repo.Root}");
        return files;
    }
}
