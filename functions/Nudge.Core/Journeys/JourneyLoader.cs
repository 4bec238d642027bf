using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;

namespace Nudge.Core.Journeys;

/// <summary>
/// Parses and validates journey files (YAML; see journeys/README.md for the format). Collects every problem in a file
/// before failing, each with the file, line and path, so a broken file is fixed in one pass.
/// </summary>
public static partial class JourneyLoader
{
    /// <summary>The reserved step target that completes the journey.</summary>
    public const string End = "end";

    private static readonly HashSet<string> TopKeys = new(StringComparer.Ordinal)
    {
        "id", "version", "name", "trigger", "max_event_age", "reentry", "concurrent", "exit", "goal", "holdout",
        "priority", "transactional", "testing", "steps", "description", "caps",
    };

    private static readonly string[] StepKinds = ["delay", "delay_until", "wait_for", "branch", "send", "update", "exit"];

    /// <summary>Loads several files and checks that journey ids are unique across them.</summary>
    /// <exception cref="JourneyValidationException">Any file is invalid.</exception>
    public static IReadOnlyList<JourneyDefinition> LoadAll(IEnumerable<(string File, string Text)> files)
    {
        var problems = new List<JourneyProblem>();
        var journeys = new List<JourneyDefinition>();
        foreach (var (file, text) in files)
        {
            try
            {
                journeys.Add(Parse(file, text));
            }
            catch (JourneyValidationException e)
            {
                problems.AddRange(e.Problems);
            }
        }

        foreach (var dup in journeys.GroupBy(j => j.Id).Where(g => g.Count() > 1))
        {
            problems.Add(new JourneyProblem(dup.Last().SourceFile, dup.Last().IdLine, "id", $"journey id '{dup.Key}' is also used by {dup.First().SourceFile}"));
        }

        return problems.Count > 0 ? throw new JourneyValidationException(problems) : journeys;
    }

    /// <exception cref="JourneyValidationException">The file is invalid.</exception>
    public static JourneyDefinition Parse(string file, string text)
    {
        JsonNode? root;
        Dictionary<string, int> lines;
        try
        {
            (root, lines) = YamlJson.Parse(text);
        }
        catch (YamlException e)
        {
            throw new JourneyValidationException([new JourneyProblem(file, (int)e.Start.Line, "", "not valid YAML: " + e.Message)]);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet reports some unterminated structures (an unclosed '{') this way, without a position.
            throw new JourneyValidationException([new JourneyProblem(file, text.Count(c => c == '\n') + 1, "", "not valid YAML: the document ends inside an unclosed structure (" + e.Message + ")")]);
        }

        var r = new Reader(file, lines);
        if (root is not JsonObject o)
        {
            r.Add("", "a journey file must be a mapping with id, version, trigger and steps");
            throw new JourneyValidationException(r.Problems);
        }

        foreach (var key in o.Select(p => p.Key).Where(k => !TopKeys.Contains(k)))
        {
            r.Add(key, $"unknown key; expected one of {string.Join(", ", TopKeys.Order(StringComparer.Ordinal))}");
        }

        var id = r.Str(o, "id", "id", required: true);
        if (id is not null && !IdPattern().IsMatch(id))
        {
            r.Add("id", "must be lower-case letters, digits, _ or -, starting with a letter");
        }

        var version = r.Int(o, "version", "version", required: true, min: 1);
        var trigger = ReadTrigger(r, o);
        var steps = ReadSteps(r, o);
        var exits = o["exit"] is null ? [] : r.List(o, "exit", "exit").Select((n, i) => ReadRule(r, n, $"exit[{i}]")).OfType<EventRule>().ToList();
        GoalRule? goal = null;
        if (r.Obj(o, "goal", "goal") is { } g)
        {
            var rule = ReadRule(r, g, "goal");
            var within = r.Duration(g, "within", "goal.within", required: true, positive: true);
            goal = rule is null ? null : new GoalRule(rule, within ?? TimeSpan.Zero, r.Bool(g, "exit", "goal.exit") ?? true);
            if (within > TimeSpan.FromDays(90))
            {
                r.Add("goal.within", "must be at most 90d (Customer.io's longest conversion window)");
            }
        }

        var (reentry, period) = ReadReentry(r, o);
        var holdout = r.Number(o, "holdout", "holdout") ?? 0;
        if (holdout is < 0 or > 100)
        {
            r.Add("holdout", "must be a percentage from 0 to 100");
        }

        var maxAge = r.Duration(o, "max_event_age", "max_event_age", required: false, positive: true) ?? TimeSpan.FromHours(72);
        var caps = new List<CapRule>();
        if (o["caps"] is not null)
        {
            var list = r.List(o, "caps", "caps");
            for (var i = 0; i < list.Count; i++)
            {
                if (r.StrValue(list[i], $"caps[{i}]") is { } capText)
                {
                    if (CapRule.TryParse(capText, out var rule))
                    {
                        caps.Add(rule);
                    }
                    else
                    {
                        r.Add($"caps[{i}]", $"'{capText}' is not channel:count/window, e.g. push:1/24h");
                    }
                }
            }
        }

        if (r.Problems.Count > 0)
        {
            throw new JourneyValidationException(r.Problems);
        }

        return new JourneyDefinition
        {
            Id = id!,
            Version = version!.Value,
            Name = r.Str(o, "name", "name", required: false) ?? id!,
            SourceFile = file,
            IdLine = lines.GetValueOrDefault("id", 1),
            Trigger = trigger!,
            MaxEventAge = maxAge,
            Reentry = reentry,
            ReentryPeriod = period,
            AllowConcurrent = r.Bool(o, "concurrent", "concurrent") ?? false,
            Exits = exits,
            Goal = goal,
            HoldoutPercent = holdout,
            Priority = r.Int(o, "priority", "priority", required: false, min: -1000) ?? 0,
            Caps = caps,
            Transactional = r.Bool(o, "transactional", "transactional") ?? false,
            Testing = r.Bool(o, "testing", "testing") ?? false,
            Steps = steps,
        };
    }

    private static Trigger? ReadTrigger(Reader r, JsonObject o)
    {
        if (r.Obj(o, "trigger", "trigger") is not { } t)
        {
            if (o["trigger"] is null)
            {
                r.Add("trigger", "is required");
            }

            return null;
        }

        var where = ReadConditions(r, t, "trigger.where");
        if (t["event"] is not null || t["events"] is not null)
        {
            var names = t["events"] is not null
                ? r.List(t, "events", "trigger.events").Select((n, i) => r.StrValue(n, $"trigger.events[{i}]")).OfType<string>().ToList()
                : [r.Str(t, "event", "trigger.event", required: true)!];
            if (names.Count == 0)
            {
                r.Add("trigger.events", "must name at least one event");
            }

            return new EventTrigger(names, where);
        }

        if (t["attribute"] is not null)
        {
            var attr = r.Str(t, "attribute", "trigger.attribute", required: true);
            var offset = r.Duration(t, "offset", "trigger.offset", required: false, positive: false) ?? TimeSpan.Zero;
            return attr is null ? null : new DateTrigger(attr, offset, where);
        }

        if (t["inactive"] is not null)
        {
            var ev = r.Str(t, "inactive", "trigger.inactive", required: true);
            var period = r.Duration(t, "for", "trigger.for", required: true, positive: true);
            return ev is null || period is null ? null : new InactivityTrigger(ev, period.Value, where);
        }

        r.Add("trigger", "must have event (or events), attribute (with offset), or inactive (with for)");
        return null;
    }

    private static (ReentryPolicy, TimeSpan) ReadReentry(Reader r, JsonObject o)
    {
        var n = o["reentry"];
        if (n is null)
        {
            return (ReentryPolicy.EveryTime, TimeSpan.Zero);
        }

        if (n is JsonObject obj && obj["once_per"] is not null)
        {
            var p = r.Duration(obj, "once_per", "reentry.once_per", required: true, positive: true);
            return (ReentryPolicy.OncePerPeriod, p ?? TimeSpan.Zero);
        }

        return r.StrValue(n, "reentry") switch
        {
            "once" => (ReentryPolicy.Once, TimeSpan.Zero),
            "every_time" => (ReentryPolicy.EveryTime, TimeSpan.Zero),
            null => (ReentryPolicy.EveryTime, TimeSpan.Zero),
            var other => Fail(other),
        };

        (ReentryPolicy, TimeSpan) Fail(string v)
        {
            r.Add("reentry", $"'{v}' is not once, every_time or {{ once_per: <duration> }}");
            return (ReentryPolicy.EveryTime, TimeSpan.Zero);
        }
    }

    private static EventRule? ReadRule(Reader r, JsonNode? n, string path)
    {
        if (n is not JsonObject o)
        {
            r.Add(path, "must be a mapping with event, and optionally where and match");
            return null;
        }

        var ev = r.Str(o, "event", path + ".event", required: true);
        var where = ReadConditions(r, o, path + ".where");
        var match = o["match"] is null ? [] : r.List(o, "match", path + ".match").Select((m, i) => r.StrValue(m, $"{path}.match[{i}]")).OfType<string>().ToList();
        return ev is null ? null : new EventRule(ev, where, match);
    }

    private static List<Condition> ReadConditions(Reader r, JsonObject o, string path)
    {
        var list = new List<Condition>();
        var key = path[(path.LastIndexOf('.') + 1)..];
        if (o[key] is null)
        {
            return list;
        }

        var items = r.List(o, key, path);
        for (var i = 0; i < items.Count; i++)
        {
            var p = $"{path}[{i}]";
            if (items[i] is not JsonObject c)
            {
                r.Add(p, "a condition is a mapping with path, op and value");
                continue;
            }

            var at = r.Str(c, "path", p + ".path", required: true);
            if (at is not null && !PathPattern().IsMatch(at))
            {
                r.Add(p + ".path", $"'{at}' must start with event., trigger., customer. or steps.<id>.");
            }

            var opText = r.Str(c, "op", p + ".op", required: false) ?? "eq";
            if (!Enum.TryParse<ConditionOp>(opText.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var op) || opText.Any(char.IsUpper))
            {
                r.Add(p + ".op", $"'{opText}' is not one of eq, ne, gt, gte, lt, lte, exists, not_exists, in, contains");
                continue;
            }

            if (op is not (ConditionOp.Exists or ConditionOp.NotExists) && !c.ContainsKey("value"))
            {
                r.Add(p + ".value", $"is required for op {opText}");
            }

            if (op == ConditionOp.In && c["value"] is not JsonArray)
            {
                r.Add(p + ".value", "must be a list for op in");
            }

            if (at is not null)
            {
                list.Add(new Condition(at, op, c["value"]?.DeepClone()));
            }
        }

        return list;
    }

    private static List<Step> ReadSteps(Reader r, JsonObject o)
    {
        var steps = new List<Step>();
        if (o["steps"] is null)
        {
            r.Add("steps", "is required: a list of steps");
            return steps;
        }

        var items = r.List(o, "steps", "steps");
        if (items.Count == 0)
        {
            r.Add("steps", "must hold at least one step");
        }

        var targets = new List<(string Path, string Target)>();
        for (var i = 0; i < items.Count; i++)
        {
            var p = $"steps[{i}]";
            if (items[i] is not JsonObject s)
            {
                r.Add(p, "a step is a mapping with one of " + string.Join(", ", StepKinds));
                continue;
            }

            var kinds = StepKinds.Where(s.ContainsKey).ToList();
            if (kinds.Count != 1)
            {
                r.Add(p, kinds.Count == 0 ? "needs one of " + string.Join(", ", StepKinds) : $"has {string.Join(" and ", kinds)}; a step does one thing");
                continue;
            }

            foreach (var extra in s.Select(kv => kv.Key).Where(k => k is not ("id" or "next") && !StepKinds.Contains(k)))
            {
                r.Add($"{p}.{extra}", "unknown key; a step has id, next and one of " + string.Join(", ", StepKinds));
            }

            var kind = kinds[0];
            var id = s["id"] is null ? $"{kind}_{i + 1}" : r.Str(s, "id", p + ".id", required: true) ?? $"{kind}_{i + 1}";
            if (id == End || !IdPattern().IsMatch(id))
            {
                r.Add(p + ".id", id == End ? "'end' is reserved: it means the journey is complete" : "must be lower-case letters, digits, _ or -");
            }

            if (steps.Any(x => x.Id == id))
            {
                r.Add(p + ".id", $"'{id}' is used by another step");
            }

            var next = s["next"] is null ? null : r.Str(s, "next", p + ".next", required: true);
            if (next is not null)
            {
                targets.Add((p + ".next", next));
            }

            var kp = $"{p}.{kind}";
            Step? step = kind switch
            {
                "delay" => r.DurationValue(s["delay"], kp, positive: true) is { } d ? new DelayStep(id, next, d) : null,
                "delay_until" => ReadDelayUntil(r, s["delay_until"], kp, id, next),
                "wait_for" => ReadWaitFor(r, s["wait_for"], kp, id, targets),
                "branch" => ReadBranch(r, s["branch"], kp, id, targets),
                "send" => ReadSend(r, s["send"], kp, id, next),
                "update" => ReadUpdate(r, s["update"], kp, id, next),
                _ => new ExitStep(id),
            };
            if (step is not null)
            {
                steps.Add(step);
            }
        }

        foreach (var (path, target) in targets)
        {
            if (target != End && steps.All(s => s.Id != target))
            {
                r.Add(path, $"'{target}' is not a step id in this journey (or 'end')");
            }
        }

        return steps;
    }

    private static Step? ReadDelayUntil(Reader r, JsonNode? n, string p, string id, string? next)
    {
        if (n is not JsonObject o)
        {
            r.Add(p, "must be a mapping with time (HH:mm) and optionally days");
            return null;
        }

        var time = r.Str(o, "time", p + ".time", required: true);
        if (time is null)
        {
            return null;
        }

        if (!TimeOnly.TryParseExact(time, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var t))
        {
            r.Add(p + ".time", $"'{time}' is not a time of day as HH:mm");
            return null;
        }

        HashSet<DayOfWeek>? days = null;
        if (o["days"] is not null)
        {
            days = [];
            var list = r.List(o, "days", p + ".days");
            for (var i = 0; i < list.Count; i++)
            {
                var day = r.StrValue(list[i], $"{p}.days[{i}]");
                var match = Enum.GetValues<DayOfWeek>().Where(d => day is not null && d.ToString().StartsWith(day, StringComparison.OrdinalIgnoreCase) && day.Length >= 3).ToList();
                if (match.Count != 1)
                {
                    r.Add($"{p}.days[{i}]", $"'{day}' is not a day of the week (mon, tue, ...)");
                }
                else
                {
                    days.Add(match[0]);
                }
            }
        }

        return new DelayUntilStep(id, next, t, days);
    }

    private static Step? ReadWaitFor(Reader r, JsonNode? n, string p, string id, List<(string, string)> targets)
    {
        var rule = ReadRule(r, n, p);
        if (n is not JsonObject o)
        {
            return null;
        }

        var timeout = r.Duration(o, "timeout", p + ".timeout", required: true, positive: true);
        var onEvent = o["on_event"] is null ? null : r.Str(o, "on_event", p + ".on_event", required: true);
        var onTimeout = o["on_timeout"] is null ? null : r.Str(o, "on_timeout", p + ".on_timeout", required: true);
        foreach (var (k, v) in new[] { ("on_event", onEvent), ("on_timeout", onTimeout) })
        {
            if (v is not null)
            {
                targets.Add(($"{p}.{k}", v));
            }
        }

        return rule is null || timeout is null ? null : new WaitForStep(id, rule, timeout.Value, onEvent, onTimeout);
    }

    private static Step? ReadBranch(Reader r, JsonNode? n, string p, string id, List<(string, string)> targets)
    {
        if (n is not JsonObject o)
        {
            r.Add(p, "must be a mapping with if, then and else");
            return null;
        }

        if (o["if"] is null)
        {
            r.Add(p + ".if", "is required: a list of conditions that must all hold");
        }

        var conditions = ReadConditions(r, o, p + ".if");
        var then = o["then"] is null ? null : r.Str(o, "then", p + ".then", required: true);
        var otherwise = o["else"] is null ? null : r.Str(o, "else", p + ".else", required: true);
        foreach (var (k, v) in new[] { ("then", then), ("else", otherwise) })
        {
            if (v is not null)
            {
                targets.Add(($"{p}.{k}", v));
            }
        }

        return new BranchStep(id, conditions, then, otherwise);
    }

    private static Step? ReadUpdate(Reader r, JsonNode? n, string p, string id, string? next)
    {
        if (n is not JsonObject o || r.Obj(o, "attributes", p + ".attributes") is not { } attrs || attrs.Count == 0)
        {
            r.Add(p, "must be a mapping with attributes: { name: value, ... }");
            return null;
        }

        foreach (var (name, value) in attrs)
        {
            if (value is JsonValue v && v.TryGetValue<string>(out var text))
            {
                CheckTemplate(r, $"{p}.attributes.{name}", text);
            }
        }

        return new UpdateStep(id, next, (JsonObject)attrs.DeepClone());
    }

    private static readonly Dictionary<Channel, (string[] Required, string[] Optional)> TemplateFields = new()
    {
        [Channel.Push] = (["title", "body"], ["deep_link", "image", "collapse_key"]),
        [Channel.Sms] = (["body"], []),
        [Channel.Email] = (["subject", "html"], ["text", "from", "preheader"]),
    };

    private static Step? ReadSend(Reader r, JsonNode? n, string p, string id, string? next)
    {
        if (n is not JsonObject o)
        {
            r.Add(p, "must be a mapping with channel (or channels) and a template per channel");
            return null;
        }

        var names = o["channels"] is not null
            ? r.List(o, "channels", p + ".channels").Select((c, i) => (Name: r.StrValue(c, $"{p}.channels[{i}]"), Path: $"{p}.channels[{i}]")).ToList()
            : [(Name: r.Str(o, "channel", p + ".channel", required: true), Path: p + ".channel")];
        var channels = new List<Channel>();
        foreach (var (name, path) in names)
        {
            if (name is null)
            {
                continue;
            }

            if (!Enum.TryParse<Channel>(name, ignoreCase: true, out var ch) || name.Any(char.IsUpper))
            {
                r.Add(path, $"'{name}' is not a channel; use push, sms or email");
            }
            else if (channels.Contains(ch))
            {
                r.Add(path, $"'{name}' is listed twice");
            }
            else
            {
                channels.Add(ch);
            }
        }

        var templates = new Dictionary<Channel, MessageTemplate>();
        foreach (var ch in channels)
        {
            var key = ch.ToString().ToLowerInvariant();
            if (r.Obj(o, key, $"{p}.{key}") is not { } t)
            {
                r.Add($"{p}.{key}", $"is required: the {key} template ({string.Join(", ", TemplateFields[ch].Required)})");
                continue;
            }

            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            var (required, optional) = TemplateFields[ch];
            foreach (var (k, v) in t)
            {
                if (!required.Contains(k) && !optional.Contains(k) && k != "data")
                {
                    r.Add($"{p}.{key}.{k}", $"unknown field; {key} templates have {string.Join(", ", required.Concat(optional).Append("data"))}");
                    continue;
                }

                if (k == "data")
                {
                    if (v is not JsonObject data)
                    {
                        r.Add($"{p}.{key}.data", "must be a mapping of string values");
                        continue;
                    }

                    foreach (var (dk, dv) in data)
                    {
                        fields["data." + dk] = CheckTemplate(r, $"{p}.{key}.data.{dk}", dv?.ToString() ?? "");
                    }

                    continue;
                }

                if (r.StrValue(v, $"{p}.{key}.{k}") is { } text)
                {
                    fields[k] = CheckTemplate(r, $"{p}.{key}.{k}", text);
                }
            }

            foreach (var req in required.Where(f => !t.ContainsKey(f)))
            {
                r.Add($"{p}.{key}.{req}", "is required");
            }

            templates[ch] = new MessageTemplate(fields);
        }

        var devices = (r.Str(o, "devices", p + ".devices", required: false) ?? "last_used") switch
        {
            "last_used" => DeviceTargeting.LastUsed,
            "all" => DeviceTargeting.All,
            "ios" => DeviceTargeting.Ios,
            "android" => DeviceTargeting.Android,
            var other => Bad<DeviceTargeting>(r, p + ".devices", $"'{other}' is not last_used, all, ios or android", DeviceTargeting.LastUsed),
        };
        var quiet = (r.Str(o, "quiet_hours", p + ".quiet_hours", required: false) ?? "default") switch
        {
            "default" => QuietHoursMode.Default,
            "defer" => QuietHoursMode.Defer,
            "skip" => QuietHoursMode.Skip,
            "ignore" => QuietHoursMode.Ignore,
            var other => Bad<QuietHoursMode>(r, p + ".quiet_hours", $"'{other}' is not defer, skip or ignore", QuietHoursMode.Default),
        };
        var caps = (r.Str(o, "caps", p + ".caps", required: false) ?? "drop") switch
        {
            "drop" => CapMode.Drop,
            "defer" => CapMode.Defer,
            var other => Bad<CapMode>(r, p + ".caps", $"'{other}' is not drop or defer", CapMode.Drop),
        };
        foreach (var k in o.Select(kv => kv.Key).Where(k => k is not ("channel" or "channels" or "push" or "sms" or "email" or "devices" or "quiet_hours" or "caps")))
        {
            r.Add($"{p}.{k}", "unknown key; send has channel or channels, push, sms, email, devices, quiet_hours, caps");
        }

        return channels.Count == 0 ? null : new SendStep(id, next, channels, templates, devices, quiet, caps);
    }

    private static string CheckTemplate(Reader r, string path, string text)
    {
        if (Templates.ParseError(text) is { } error)
        {
            r.Add(path, "template does not parse: " + error);
        }

        return text;
    }

    private static T Bad<T>(Reader r, string path, string problem, T fallback)
    {
        r.Add(path, problem);
        return fallback;
    }

    [GeneratedRegex("^[a-z][a-z0-9_-]{0,63}$")]
    private static partial Regex IdPattern();

    [GeneratedRegex(@"^(event|trigger|customer|steps\.[a-z][a-z0-9_-]*)\.[^\s]+$")]
    private static partial Regex PathPattern();

    /// <summary>Typed reads that record a problem with the line number instead of throwing.</summary>
    private sealed class Reader(string file, Dictionary<string, int> lines)
    {
        public List<JourneyProblem> Problems { get; } = [];

        public void Add(string path, string problem)
        {
            var probe = path;
            int line;
            while (!lines.TryGetValue(probe, out line) && probe.Length > 0)
            {
                var cut = Math.Max(probe.LastIndexOf('.'), probe.LastIndexOf('['));
                probe = cut <= 0 ? "" : probe[..cut];
            }

            Problems.Add(new JourneyProblem(file, lines.TryGetValue(probe, out line) ? line : 1, path, problem));
        }

        public string? Str(JsonObject o, string key, string path, bool required)
        {
            if (o[key] is null)
            {
                if (required)
                {
                    Add(path, "is required");
                }

                return null;
            }

            return StrValue(o[key], path);
        }

        public string? StrValue(JsonNode? n, string path)
        {
            if (n is JsonValue v && v.GetValueKind() == JsonValueKind.String)
            {
                var s = v.GetValue<string>();
                if (s.Length > 0)
                {
                    return s;
                }
            }

            Add(path, n is null ? "is required" : "must be non-empty text");
            return null;
        }

        public int? Int(JsonObject o, string key, string path, bool required, int min)
        {
            if (o[key] is null)
            {
                if (required)
                {
                    Add(path, "is required");
                }

                return null;
            }

            if (JsonNumbers.AsDouble(o[key]) is { } l && l == Math.Floor(l) && l >= min && l <= int.MaxValue)
            {
                return (int)l;
            }

            Add(path, $"must be a whole number >= {min}");
            return null;
        }

        public double? Number(JsonObject o, string key, string path)
        {
            if (o[key] is null)
            {
                return null;
            }

            if (JsonNumbers.AsDouble(o[key]) is { } d)
            {
                return d;
            }

            Add(path, "must be a number");
            return null;
        }

        public bool? Bool(JsonObject o, string key, string path)
        {
            if (o[key] is null)
            {
                return null;
            }

            if (o[key] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
            {
                return v.GetValue<bool>();
            }

            Add(path, "must be true or false");
            return null;
        }

        public JsonObject? Obj(JsonObject o, string key, string path)
        {
            if (o[key] is null)
            {
                return null;
            }

            if (o[key] is JsonObject obj)
            {
                return obj;
            }

            Add(path, "must be a mapping");
            return null;
        }

        public List<JsonNode?> List(JsonObject o, string key, string path)
        {
            if (o[key] is JsonArray a)
            {
                return [.. a];
            }

            Add(path, "must be a list");
            return [];
        }

        public TimeSpan? Duration(JsonObject o, string key, string path, bool required, bool positive)
        {
            if (o[key] is null)
            {
                if (required)
                {
                    Add(path, "is required (a duration such as 30m, 4h, 21d)");
                }

                return null;
            }

            return DurationValue(o[key], path, positive);
        }

        public TimeSpan? DurationValue(JsonNode? n, string path, bool positive)
        {
            if (n is JsonValue v && v.GetValueKind() == JsonValueKind.String && Durations.TryParse(v.GetValue<string>(), out var t))
            {
                if (positive && t <= TimeSpan.Zero)
                {
                    Add(path, "must be longer than zero");
                    return null;
                }

                return t;
            }

            Add(path, $"'{n?.ToJsonString().Trim('"')}' is not a duration such as 30m, 4h, 1h30m or 21d");
            return null;
        }
    }
}
