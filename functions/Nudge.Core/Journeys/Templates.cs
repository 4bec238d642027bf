using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Scriban;
using Scriban.Parsing;
using Scriban.Runtime;
using Scriban.Syntax;

namespace Nudge.Core.Journeys;

/// <summary>
/// Liquid rendering with Customer.io's variable roots: customer.*, event.* (the trigger event's data), journey.*.
/// A variable that does not exist is an error unless the template gives it a default
/// (<c>{{ customer.first_name | default: "there" }}</c>), so a message never goes out with a hole in it.
/// Scriban's Liquid mode does the work: Fluid.Core, the usual .NET Liquid engine, cannot load here (the package
/// mirror only has a Parlot version it is not binary-compatible with).
/// </summary>
public sealed partial class Templates
{
    [ThreadStatic]
    private static LiquidTemplateContext? _context;

    private readonly ConcurrentDictionary<string, Template> _cache = new(StringComparer.Ordinal);

    /// <summary>Checks that a template parses; returns the parser's message otherwise.</summary>
    public static string? ParseError(string source)
    {
        var t = Template.ParseLiquid(source);
        return t.HasErrors ? string.Join("; ", t.Messages.Select(m => m.Message)) : null;
    }

    /// <summary>Renders every field against one model; on any failure returns the field and why, and no content.</summary>
    public (JsonObject? Content, string? Error) RenderAll(IReadOnlyDictionary<string, string> fields, JsonObject model)
    {
        var missing = new List<string>();
        var globals = Globals(model, missing);
        var content = new JsonObject();
        foreach (var (name, source) in fields.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            var (text, error) = Render(source, globals, missing);
            if (error is not null)
            {
                return (null, $"{name}: {error}");
            }

            if (name.StartsWith("data.", StringComparison.Ordinal))
            {
                var data = content["data"] as JsonObject ?? [];
                data[name[5..]] = text;
                content["data"] = data;
            }
            else
            {
                content[name] = text;
            }
        }

        return (content, null);
    }

    public (string? Text, string? Error) Render(string source, JsonObject model)
    {
        var missing = new List<string>();
        return Render(source, Globals(model, missing), missing);
    }

    private static ScriptObject Globals(JsonObject model, List<string> missing)
    {
        var globals = new ScriptObject();
        foreach (var (k, v) in model)
        {
            globals[k] = ToScript(v, k, missing);
        }

        return globals;
    }

    private (string? Text, string? Error) Render(string source, ScriptObject globals, List<string> missing)
    {
        var template = _cache.GetOrAdd(source, s => Template.ParseLiquid(s));
        if (template.HasErrors)
        {
            return (null, "template does not parse: " + string.Join("; ", template.Messages.Select(m => m.Message)));
        }

        missing.Clear();

        // A Liquid context costs ~200 us to build (it registers every filter), so each thread keeps one and swaps globals.
        var context = _context ??= new LiquidTemplateContext { StrictVariables = true, LoopLimit = 10_000, RecursiveLimit = 32 };
        context.PushGlobal(globals);
        string text;
        try
        {
            text = template.Render(context);
        }
        catch (ScriptRuntimeException e)
        {
            _context = null; // a failed render may leave state behind; start the next one clean
            return (null, "render failed: " + e.OriginalMessage);
        }
        finally
        {
            context.PopGlobal();
        }

        var unresolved = missing.Distinct(StringComparer.Ordinal).Where(m => !HasDefault(source, m)).ToList();
        return unresolved.Count > 0 ? (null, "missing variable " + string.Join(", ", unresolved)) : (text, null);
    }

    /// <summary>True when the template pipes this exact variable (its full path) into the default filter.</summary>
    private static bool HasDefault(string source, string path) =>
        Regex.IsMatch(source, @"(?<![\w.\]])" + Regex.Escape(path) + @"\s*\|\s*default\b");

    private static object? ToScript(JsonNode? n, string path, List<string> missing) => n switch
    {
        null => null,
        JsonObject o => new TrackingObject(o, path, missing),
        JsonArray a => new ScriptArray(a.Select((x, i) => ToScript(x, $"{path}[{i}]", missing))),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => JsonNumbers.AsDecimal(v) is { } d && d == decimal.Truncate(d) && d is >= long.MinValue and <= long.MaxValue ? (long)d : JsonNumbers.AsDecimal(v),
            _ => null,
        },
        _ => null,
    };

    /// <summary>An object that remembers reads of members it does not have.</summary>
    private sealed class TrackingObject : ScriptObject
    {
        private readonly string _path;
        private readonly List<string> _missing;

        public TrackingObject(JsonObject o, string path, List<string> missing)
        {
            _path = path;
            _missing = missing;
            foreach (var (k, v) in o)
            {
                SetValue(k, ToScript(v, $"{path}.{k}", missing), readOnly: false);
            }
        }

        public override bool TryGetValue(TemplateContext? context, SourceSpan span, string member, out object? value)
        {
            if (base.TryGetValue(context, span, member, out value))
            {
                return true;
            }

            _missing.Add($"{_path}.{member}");
            return false;
        }
    }
}
