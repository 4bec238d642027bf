using System.Globalization;
using System.Text.RegularExpressions;
using Nudge.Host.Hosting;
using Nudge.TestSupport;

namespace Nudge.Host.Tests;

/// <summary>
/// docs/configuration.md names every setting the options classes bind (NudgeOptions, walked recursively, and every
/// provider's options under its section), each with its environment variable and, for simple values, the class's default;
/// and it names no setting that does not exist.
/// </summary>
public partial class ConfigurationDocsTests
{
    private const string DocPath = "docs/configuration.md";

    [Fact]
    public void ConfigurationDoc_NamesEverySetting_WithItsEnvironmentVariableAndDefault()
    {
        var doc = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot(), DocPath));

        var problems = Differences(CodeSettings(), doc);

        Assert.True(problems.Count == 0,
            $"{DocPath} does not match the options classes ({problems.Count} differences):{string.Concat(problems.Select(p => Environment.NewLine + "  - " + p))}");
    }

    [Fact]
    public void Differences_NameEveryMissingUnknownAndWrongRow()
    {
        // A doc with one row of each kind of mistake, checked against the real settings: each is reported, by name.
        var code = CodeSettings();
        const string doc = """
            | setting | environment variable | default | meaning |
            |---|---|---|---|
            | `Nudge:DataDir` | `Nudge__DataDir` | `elsewhere` | wrong default |
            | `Nudge:Workers:BatchSize` | `Nudge_Workers_BatchSize` | `1024` | wrong variable |
            | `Nudge:PublicBaseUrl` | `Nudge__PublicBaseUrl` | `https://x` | documented default for an unset one |
            | `Nudge:Workers:Enabled` | `Nudge__Workers__Enabled` | none | unset for a default of true |
            | `Nudge:Workers:Enabled` | `Nudge__Workers__Enabled` | `true` | twice |
            | `Nudge:Providers:Fcm:Nonsense` | `Nudge__Providers__Fcm__Nonsense` | none | no such setting |
            | `Nudge:Alerts:Window`, `Baseline` | | | two names in one row |
            """;

        var problems = Differences(code, doc);

        Assert.Contains(problems, p => p.StartsWith("Nudge:DataDir: default documented as `elsewhere`", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Workers:BatchSize: environment variable documented as `Nudge_Workers_BatchSize`", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:PublicBaseUrl: default documented as `https://x`, the code has none", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Workers:Enabled: default documented as none, the code's is `true`", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Workers:Enabled: documented more than once", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Providers:Fcm:Nonsense: documented", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("line 9: ", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Providers:Twilio:AuthToken: missing", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Journeys:Caps:{i}: missing", StringComparison.Ordinal));
    }

    /// <summary>A setting row of the doc: its line (1-based), environment variable cell and default cell.</summary>
    private sealed record DocRow(int Line, string Name, string Variable, string DefaultCell);

    /// <summary>Every setting the options classes bind (the catalog start-up also checks keys against).</summary>
    private static List<KnownSetting> CodeSettings() => [.. SettingsCatalog.All];

    /// <summary>Every difference between the code's settings and the doc's setting rows, each naming its setting (or line).</summary>
    private static List<string> Differences(List<KnownSetting> code, string doc)
    {
        var problems = new List<string>();
        var rows = new List<DocRow>();
        var lines = doc.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (!line.StartsWith('|'))
            {
                continue;
            }

            var cells = CellSeparator().Split(line.Trim('|')).Select(c => c.Trim()).ToArray();
            if (!cells[0].Contains("Nudge:", StringComparison.Ordinal))
            {
                continue;
            }

            var name = SingleCode().Match(cells[0]);
            if (!name.Success || cells.Length < 3)
            {
                problems.Add($"line {i + 1}: a setting row names exactly one setting in full in its first cell, then its environment variable and default: {line}");
                continue;
            }

            rows.Add(new DocRow(i + 1, name.Groups[1].Value, cells[1], cells[2]));
        }

        var documented = rows.GroupBy(r => r.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var known = code.ToDictionary(s => s.Name, StringComparer.Ordinal);
        foreach (var setting in code)
        {
            if (!documented.TryGetValue(setting.Name, out var found))
            {
                problems.Add($"{setting.Name}: missing (add a row: `{setting.Name}` | `{Variable(setting.Name)}` | {Shown(setting.Default)})");
                continue;
            }

            if (found.Count > 1)
            {
                problems.Add($"{setting.Name}: documented more than once (lines {string.Join(", ", found.Select(r => r.Line))})");
            }

            foreach (var row in found)
            {
                var variable = SingleCode().Match(row.Variable);
                if (!variable.Success || variable.Groups[1].Value != Variable(setting.Name))
                {
                    problems.Add($"{setting.Name}: environment variable documented as {(row.Variable.Length == 0 ? "nothing" : row.Variable)}, is `{Variable(setting.Name)}` (line {row.Line})");
                }

                if (setting.Simple && DocumentedDefault(row.DefaultCell) is var (ok, value) && (!ok || value != setting.Default))
                {
                    var actual = setting.Default is null ? "the code has none" : $"the code's is {Shown(setting.Default)}";
                    problems.Add($"{setting.Name}: default documented as {(ok ? Shown(value) : row.DefaultCell)}, {actual} (line {row.Line})");
                }
            }
        }

        foreach (var row in rows.Where(r => !known.ContainsKey(r.Name)))
        {
            problems.Add($"{row.Name}: documented (line {row.Line}) but no options class has it");
        }

        return problems;
    }

    private static string Variable(string name) => name.Replace(":", "__", StringComparison.Ordinal);

    private static string Shown(string? value) => value is null ? "none" : $"`{value}`";

    /// <summary>The default a cell gives: "none..." is unset, else its first code span; not ok when it has neither.</summary>
    private static (bool Ok, string? Value) DocumentedDefault(string cell)
    {
        if (cell.StartsWith("none", StringComparison.Ordinal))
        {
            return (true, null);
        }

        var code = FirstCode().Match(cell);
        return code.Success ? (true, code.Groups[1].Value) : (false, null);
    }

    [GeneratedRegex(@"(?<!\\)\|")]
    private static partial Regex CellSeparator();

    [GeneratedRegex(@"^`([^`]+)`$")]
    private static partial Regex SingleCode();

    [GeneratedRegex(@"`([^`]*)`")]
    private static partial Regex FirstCode();
}
