using System.Text;
using System.Text.RegularExpressions;

namespace Nudge.Infra.Tests;

/// <summary>
/// Checks that the repository stands alone: what its files link to or name is inside it. Three checks, each returning
/// problems as "file:line: what: why" (empty when all is well):
/// <list type="bullet">
/// <item><see cref="MarkdownLinkProblems"/>: every relative link and image of a markdown file (inline, reference
/// definitions, HTML href/src; not inside code) resolves inside the root to a tracked file or folder, and a #fragment
/// into a markdown file names one of its headings (GitHub's anchors) or an explicit HTML anchor. http(s) and mailto
/// links are external and allowed; any other scheme is not.</item>
/// <item><see cref="OutsideReferenceProblems"/>: no text names the sibling folder the project's notes once lived in
/// (<see cref="SharedFolder"/>).</item>
/// <item><see cref="MarkdownMentionProblems"/>: a markdown file named in any text (a comment citing a page by its file
/// name) exists in the repository, so a citation cannot point at a page that is not here.</item>
/// </list>
/// </summary>
internal static partial class RepositoryLinks
{
    /// <summary>
    /// The folder beside the repository that held design notes it used to cite. Spelt in two pieces so this file does not
    /// contain the reference it looks for.
    /// </summary>
    public static readonly string SharedFolder = ".." + "/shared";

    /// <summary>Schemes a link may use to leave the repository: the web and mail.</summary>
    private static readonly string[] ExternalSchemes = ["http", "https", "mailto"];

    /// <summary>Problems of the relative links in one markdown file.</summary>
    /// <param name="root">The repository root (full path).</param>
    /// <param name="file">The markdown file, relative to <paramref name="root"/> with '/' separators.</param>
    /// <param name="tracked">Every tracked file, relative to the root with '/' separators.</param>
    public static IReadOnlyList<string> MarkdownLinkProblems(string root, string file, IReadOnlySet<string> tracked)
    {
        var problems = new List<string>();
        var lines = WithoutCode(File.ReadAllLines(Path.Combine(root, file)));
        var folders = Folders(tracked);
        for (var n = 0; n < lines.Length; n++)
        {
            foreach (var target in LinkTargets(lines[n]))
            {
                if (Problem(root, file, target, tracked, folders) is { } why)
                {
                    problems.Add($"{file}:{n + 1}: {target}: {why}");
                }
            }
        }

        return problems;
    }

    /// <summary>Lines of <paramref name="text"/> (a tracked file) that name <see cref="SharedFolder"/>.</summary>
    public static IReadOnlyList<string> OutsideReferenceProblems(string file, string text) =>
        [.. text.Split('\n').Select((line, i) => (line, i))
            .Where(l => l.line.Contains(SharedFolder, StringComparison.Ordinal))
            .Select(l => $"{file}:{l.i + 1}: names {SharedFolder}, a folder outside the repository")];

    /// <summary>Markdown files named in <paramref name="text"/> (a tracked file) that are not in the repository.</summary>
    public static IReadOnlyList<string> MarkdownMentionProblems(string root, string file, string text, IReadOnlySet<string> tracked)
    {
        var problems = new List<string>();
        var names = tracked.Where(t => t.EndsWith(".md", StringComparison.Ordinal)).Select(t => t.Split('/')[^1]).ToHashSet(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (var n = 0; n < lines.Length; n++)
        {
            // A URL names a page on some other site, not a file here.
            var line = Url().Replace(lines[n], " ");
            foreach (Match m in MarkdownMention().Matches(line))
            {
                var mention = m.Groups["path"].Value;
                var inside = Candidates(root, file, mention).Where(p => IsInside(root, p)).ToList();
                var found = inside.Any(p => tracked.Contains(Relative(root, p)))
                    || (!mention.Contains('/', StringComparison.Ordinal) && names.Contains(mention));
                if (!found)
                {
                    problems.Add($"{file}:{n + 1}: names {mention}, which is not a file in the repository"
                        + (inside.Count == 0 ? " (the path leaves it)" : ""));
                }
            }
        }

        return problems;
    }

    /// <summary>Every link target on one line (code already blanked out).</summary>
    public static IEnumerable<string> LinkTargets(string line)
    {
        foreach (Match m in InlineLink().Matches(line))
        {
            yield return m.Groups["target"].Value.Trim('<', '>');
        }

        if (ReferenceDefinition().Match(line) is { Success: true } d)
        {
            yield return d.Groups["target"].Value.Trim('<', '>');
        }

        foreach (Match m in HtmlLink().Matches(line))
        {
            yield return m.Groups["target"].Value;
        }
    }

    /// <summary>
    /// GitHub's anchors for the headings of a markdown text (ATX and setext, outside code), plus explicit HTML anchors
    /// (id or name attributes): the heading text without markup, lower case, without punctuation, spaces as hyphens; a
    /// repeated anchor gets -1, -2, ...
    /// </summary>
    public static IReadOnlySet<string> Anchors(string[] rawLines)
    {
        var lines = WithoutCode(rawLines);
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var n = 0; n < lines.Length; n++)
        {
            // Code is blanked out to find headings, but a heading's anchor is made from its raw text: inline code in a
            // heading is part of the anchor.
            string? heading = null;
            if (AtxHeading().IsMatch(lines[n]))
            {
                heading = AtxHeading().Match(rawLines[n]).Groups["text"].Value;
            }
            else if (n + 1 < lines.Length && lines[n].Trim().Length > 0 && SetextUnderline().IsMatch(lines[n + 1]) && !NotSetext().IsMatch(lines[n]))
            {
                heading = rawLines[n].Trim();
            }

            if (heading is not null)
            {
                var slug = Slug(heading);
                var count = seen.GetValueOrDefault(slug);
                seen[slug] = count + 1;
                anchors.Add(count == 0 ? slug : $"{slug}-{count}");
            }

            foreach (Match m in HtmlAnchor().Matches(lines[n]))
            {
                anchors.Add(m.Groups["id"].Value);
            }
        }

        return anchors;
    }

    /// <summary>GitHub's anchor for a heading's text.</summary>
    public static string Slug(string heading)
    {
        // Rendered text: a link or image shows its text, inline code and emphasis markers show nothing.
        var text = LinkMarkup().Replace(heading, "$1").Replace("`", "", StringComparison.Ordinal).Replace("*", "", StringComparison.Ordinal);
        text = text.ToLowerInvariant();
        var slug = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (char.IsLetterOrDigit(c) || c is '-' or '_' || char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.NonSpacingMark)
            {
                slug.Append(c);
            }
            else if (c == ' ')
            {
                slug.Append('-');
            }
        }

        return slug.ToString();
    }

    private static string? Problem(string root, string file, string target, IReadOnlySet<string> tracked, IReadOnlySet<string> folders)
    {
        if (target.Length == 0)
        {
            return "empty link";
        }

        if (Scheme().Match(target) is { Success: true } scheme)
        {
            return ExternalSchemes.Contains(scheme.Groups[1].Value.ToLowerInvariant()) ? null : $"the scheme {scheme.Groups[1].Value}: leaves the repository";
        }

        if (target.StartsWith("//", StringComparison.Ordinal))
        {
            return null; // protocol-relative: another host
        }

        var hash = target.IndexOf('#', StringComparison.Ordinal);
        var pathPart = Uri.UnescapeDataString(hash < 0 ? target : target[..hash]);
        var fragment = hash < 0 ? null : Uri.UnescapeDataString(target[(hash + 1)..]);
        var query = pathPart.IndexOf('?', StringComparison.Ordinal);
        pathPart = query < 0 ? pathPart : pathPart[..query];

        // GitHub resolves a leading '/' from the repository root, anything else from the linking file's folder.
        var full = pathPart.Length == 0
            ? Path.Combine(root, file)
            : Path.GetFullPath(pathPart.StartsWith('/') ? Path.Combine(root, pathPart.TrimStart('/')) : Path.Combine(root, Path.GetDirectoryName(file) ?? "", pathPart));
        if (!IsInside(root, full))
        {
            return "resolves outside the repository";
        }

        var relative = Relative(root, full);
        if (relative.Length > 0 && !tracked.Contains(relative) && !folders.Contains(relative))
        {
            return File.Exists(full) || Directory.Exists(full) ? "exists but is not tracked by git" : "no such file in the repository";
        }

        if (fragment is { Length: > 0 } && relative.EndsWith(".md", StringComparison.Ordinal) && File.Exists(full)
            && !Anchors(File.ReadAllLines(full)).Contains(fragment))
        {
            return $"{(relative == file ? "this file" : relative)} has no heading or anchor #{fragment}";
        }

        return null;
    }

    /// <summary>Every folder that holds a tracked file, relative to the root ("" for the root itself).</summary>
    private static HashSet<string> Folders(IReadOnlySet<string> tracked)
    {
        var folders = new HashSet<string>(StringComparer.Ordinal) { "" };
        foreach (var f in tracked)
        {
            for (var slash = f.LastIndexOf('/'); slash > 0; slash = f.LastIndexOf('/', slash - 1))
            {
                if (!folders.Add(f[..slash]))
                {
                    break;
                }
            }
        }

        return folders;
    }

    /// <summary>Where a mention may point: from the mentioning file's folder, or from the root.</summary>
    private static IEnumerable<string> Candidates(string root, string file, string mention)
    {
        yield return Path.GetFullPath(Path.Combine(root, Path.GetDirectoryName(file) ?? "", mention));
        yield return Path.GetFullPath(Path.Combine(root, mention.TrimStart('/')));
    }

    private static bool IsInside(string root, string full)
    {
        var r = Path.GetFullPath(root).TrimEnd('/');
        return full == r || full.StartsWith(r + "/", StringComparison.Ordinal);
    }

    private static string Relative(string root, string full) =>
        full == Path.GetFullPath(root).TrimEnd('/') ? "" : Path.GetRelativePath(root, full).Replace('\\', '/').TrimEnd('/');

    /// <summary>
    /// The lines with fenced code blocks and inline code spans blanked out (line count kept), so code that looks like a
    /// link (an array index followed by a call) is not taken for one.
    /// </summary>
    private static string[] WithoutCode(string[] lines)
    {
        var result = new string[lines.Length];
        string? fence = null;
        for (var n = 0; n < lines.Length; n++)
        {
            var m = Fence().Match(lines[n]);
            if (fence is null && m.Success)
            {
                fence = m.Groups[1].Value;
                result[n] = "";
            }
            else if (fence is not null)
            {
                if (m.Success && m.Groups[1].Value.StartsWith(fence[0]) && m.Groups[1].Value.Length >= fence.Length && m.Groups[2].Value.Trim().Length == 0)
                {
                    fence = null;
                }

                result[n] = "";
            }
            else
            {
                result[n] = CodeSpan().Replace(lines[n], c => new string(' ', c.Length));
            }
        }

        return result;
    }

    [GeneratedRegex(@"^ {0,3}(`{3,}|~{3,})(.*)$")]
    private static partial Regex Fence();

    [GeneratedRegex(@"(`+)(?:(?!\1).)+?\1")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"\]\(\s*(?<target><[^>]*>|[^\s)]+)")]
    private static partial Regex InlineLink();

    [GeneratedRegex(@"^ {0,3}\[[^\]]+\]:\s*(?<target><[^>]*>|\S+)")]
    private static partial Regex ReferenceDefinition();

    [GeneratedRegex(@"<(?:a|img|source)\b[^>]*\b(?:href|src)\s*=\s*[""'](?<target>[^""']*)[""']", RegexOptions.IgnoreCase)]
    private static partial Regex HtmlLink();

    [GeneratedRegex(@"<[a-z]+\b[^>]*\b(?:id|name)\s*=\s*[""'](?<id>[^""']+)[""']", RegexOptions.IgnoreCase)]
    private static partial Regex HtmlAnchor();

    [GeneratedRegex(@"^ {0,3}#{1,6}\s+(?<text>.*?)(?:\s+#+)?\s*$")]
    private static partial Regex AtxHeading();

    [GeneratedRegex(@"^ {0,3}(?:=+|-+)\s*$")]
    private static partial Regex SetextUnderline();

    /// <summary>Lines an underline cannot make a heading: list items, quotes, table rows.</summary>
    [GeneratedRegex(@"^\s*(?:[-*+>|]|\d+[.)])")]
    private static partial Regex NotSetext();

    [GeneratedRegex(@"!?\[([^\]]*)\]\([^)]*\)")]
    private static partial Regex LinkMarkup();

    [GeneratedRegex(@"^([a-zA-Z][a-zA-Z0-9+.-]*):")]
    private static partial Regex Scheme();

    [GeneratedRegex(@"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")]
    private static partial Regex Url();

    /// <summary>A path ending in .md: letters, digits, _ - . and /, starting with a name or ./ ../ or /.</summary>
    [GeneratedRegex(@"(?<![\w.\-/])(?<path>(?:\.{1,2}/|/)*[\w\-][\w.\-/]*\.md)\b")]
    private static partial Regex MarkdownMention();
}
