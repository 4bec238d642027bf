using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using YamlDotNet.Core;

namespace Nudge.Host.Simulation;

/// <summary>One scripted Track API call of a scenario, made when the virtual clock reaches <see cref="At"/> after the start.</summary>
/// <param name="Index">Position in the file's <c>steps</c>.</param>
/// <param name="Line">Line of the step in the file.</param>
/// <param name="At">When, counted from the scenario's start.</param>
/// <param name="Customer">The person's id.</param>
/// <param name="Method">HTTP method of the Track API call.</param>
/// <param name="Path">Path of the Track API call, from the server root.</param>
/// <param name="Body">Its JSON body.</param>
/// <param name="Summary">What the timeline prints for it.</param>
public sealed record ScenarioStep(int Index, int Line, TimeSpan At, string Customer, HttpMethod Method, string Path, JsonObject Body, string Summary);

/// <summary>
/// A scenario for <c>simulate</c>: who does what and when, as Track API calls on a virtual clock (see the README's
/// quickstart and scenarios/quickstart.yaml).
/// </summary>
/// <param name="File">Where it was read from.</param>
/// <param name="Description">Its description line, if any.</param>
/// <param name="Start">When the virtual clock starts; null starts it at the current minute.</param>
/// <param name="RunFor">How long the clock runs on after the last step, at most (it stops earlier once no journey waits).</param>
/// <param name="Steps">The calls, in time order.</param>
public sealed record Scenario(string File, string? Description, DateTimeOffset? Start, TimeSpan RunFor, IReadOnlyList<ScenarioStep> Steps)
{
    /// <summary>How long the clock runs on after the last step unless <c>run_for</c> says otherwise: 30 days.</summary>
    public static readonly TimeSpan DefaultRunFor = TimeSpan.FromDays(30);

    private static readonly string[] TopKeys = ["description", "start", "run_for", "steps"];

    private static readonly string[] Kinds = ["identify", "device", "event"];

    /// <summary>JSON as people write it in the timeline (a phone number's + stays a +).</summary>
    private static readonly JsonSerializerOptions Display = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Reads a scenario file.</summary>
    /// <exception cref="ScenarioException">The file is missing or invalid; every problem is listed with its line and path.</exception>
    public static Scenario Load(string file)
    {
        string text;
        try
        {
            text = System.IO.File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ScenarioException([$"{file}: cannot be read ({e.Message})"]);
        }

        JsonNode? root;
        Dictionary<string, int> lines;
        try
        {
            (root, lines) = YamlJson.Parse(text);
        }
        catch (YamlException e)
        {
            throw new ScenarioException([$"{file}:{e.Start.Line}: not valid YAML ({e.Message})"]);
        }

        var problems = new List<string>();
        void Problem(string path, string what)
        {
            var probe = path;
            int line;
            while (!lines.TryGetValue(probe, out line) && probe.Length > 0)
            {
                probe = probe.Contains('.') ? probe[..probe.LastIndexOf('.')] : "";
            }

            problems.Add($"{file}:{(lines.TryGetValue(probe, out line) ? line : 1)}: {path}: {what}");
        }

        if (root is not JsonObject top)
        {
            throw new ScenarioException([$"{file}:1: a scenario is a mapping with description, start, run_for and steps"]);
        }

        foreach (var key in top.Select(kv => kv.Key).Where(k => !TopKeys.Contains(k)))
        {
            Problem(key, $"unknown key (allowed: {string.Join(", ", TopKeys)})");
        }

        string? description = null;
        if (top["description"] is { } d)
        {
            description = Text(d);
            if (description is null)
            {
                Problem("description", "must be text");
            }
        }

        DateTimeOffset? start = null;
        if (top["start"] is { } s)
        {
            if (Text(s) is { } st && DateTimeOffset.TryParse(st, CultureInfo.InvariantCulture, DateTimeStyles.None, out var t) && HasOffset(st))
            {
                start = t.ToUniversalTime();
            }
            else
            {
                Problem("start", "must be an ISO 8601 time with its offset, e.g. 2026-06-01T14:00:00Z or 2026-06-01T10:00:00-04:00");
            }
        }

        var runFor = DefaultRunFor;
        if (top["run_for"] is { } rf)
        {
            if (Text(rf) is { } rt && Durations.TryParse(rt, out var r) && r > TimeSpan.Zero && r <= TimeSpan.FromDays(366))
            {
                runFor = r;
            }
            else
            {
                Problem("run_for", "must be a duration from 1s to 366d, e.g. 2d or 36h");
            }
        }

        var steps = new List<ScenarioStep>();
        if (top["steps"] is not JsonArray list || list.Count == 0)
        {
            Problem("steps", "must be a list of at least one step (identify, device or event)");
        }
        else
        {
            var previous = TimeSpan.Zero;
            for (var n = 0; n < list.Count; n++)
            {
                var path = $"steps[{n}]";
                if (list[n] is not JsonObject step)
                {
                    Problem(path, "must be a mapping with at and one of identify, device or event");
                    continue;
                }

                var before = problems.Count;
                var at = TimeSpan.Zero;
                if (step["at"] is not { } atNode || Text(atNode) is not { } atText || !Durations.TryParse(atText, out at) || at < TimeSpan.Zero)
                {
                    Problem(path + ".at", "required: a duration from the start, e.g. 0m, 30m, 4h or 1d2h");
                }
                else if (at < previous)
                {
                    Problem(path + ".at", $"{atText} is before the step above it ({Durations.Format(previous)}): steps are in time order");
                }
                else
                {
                    previous = at;
                }

                var parsed = ReadStep(step, path, Problem);
                if (parsed is { } p && problems.Count == before)
                {
                    steps.Add(p with { Index = n, Line = lines.GetValueOrDefault(path, 1), At = at });
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new ScenarioException(problems);
        }

        return new Scenario(file, description, start, runFor, steps);
    }

    private static ScenarioStep? ReadStep(JsonObject step, string path, Action<string, string> problem)
    {
        var kinds = Kinds.Where(step.ContainsKey).ToList();
        if (kinds.Count != 1)
        {
            problem(path, kinds.Count == 0 ? "needs one of identify, device or event" : $"has {string.Join(" and ", kinds)}: one step makes one call");
            return null;
        }

        string[] allowed = kinds[0] switch
        {
            "identify" => ["at", "identify", "attributes"],
            "device" => ["at", "device", "token", "platform", "attributes"],
            _ => ["at", "event", "customer", "id", "data"],
        };
        foreach (var key in step.Select(kv => kv.Key).Where(k => !allowed.Contains(k)))
        {
            problem($"{path}.{key}", $"unknown key for {kinds[0]} (allowed: {string.Join(", ", allowed)})");
        }

        JsonObject? Obj(string key)
        {
            if (step[key] is null)
            {
                return [];
            }

            if (step[key] is JsonObject o)
            {
                return (JsonObject)o.DeepClone();
            }

            problem($"{path}.{key}", "must be a mapping");
            return null;
        }

        string? Required(string key, string what)
        {
            if (step[key] is { } v && Text(v) is { Length: > 0 } t)
            {
                return t;
            }

            problem($"{path}.{key}", $"required: {what}");
            return null;
        }

        static string P(string id) => Uri.EscapeDataString(id);
        switch (kinds[0])
        {
            case "identify":
                {
                    var id = Required("identify", "the person's id");
                    var attributes = Obj("attributes");
                    return id is null || attributes is null
                        ? null
                        : new ScenarioStep(0, 0, default, id, HttpMethod.Put, $"/api/v1/customers/{P(id)}", attributes,
                            attributes.Count == 0 ? "identify" : "identify: " + string.Join(", ", attributes.Select(kv => $"{kv.Key}={kv.Value?.ToJsonString(Display)}")));
                }

            case "device":
                {
                    var id = Required("device", "the person's id");
                    var token = Required("token", "the device's push token");
                    var platform = Required("platform", "ios or android");
                    var attributes = Obj("attributes");
                    if (id is null || token is null || platform is null || attributes is null)
                    {
                        return null;
                    }

                    var body = new JsonObject { ["device"] = new JsonObject { ["id"] = token, ["platform"] = platform, ["attributes"] = attributes } };
                    return new ScenarioStep(0, 0, default, id, HttpMethod.Put, $"/api/v1/customers/{P(id)}/devices", body,
                        $"device: {platform} token …{(token.Length > 4 ? token[^4..] : token)}");
                }

            default:
                {
                    var name = Required("event", "the event's name");
                    var id = Required("customer", "the id of the person who performs it");
                    var data = Obj("data");
                    string? eventId = null;
                    if (step["id"] is { } e && (eventId = Text(e)) is null)
                    {
                        problem(path + ".id", "must be text");
                    }

                    if (name is null || id is null || data is null)
                    {
                        return null;
                    }

                    var body = new JsonObject { ["name"] = name, ["data"] = data };
                    if (eventId is not null)
                    {
                        body["id"] = eventId;
                    }

                    return new ScenarioStep(0, 0, default, id, HttpMethod.Post, $"/api/v1/customers/{P(id)}/events", body,
                        $"event {name}" + (data.Count == 0 ? "" : " " + data.ToJsonString(Display)));
                }
        }
    }

    private static string? Text(JsonNode n) => n is JsonValue v ? v.TryGetValue<string>(out var s) ? s : v.ToJsonString() : null;

    private static bool HasOffset(string s) =>
        s.EndsWith('Z') || s.EndsWith('z') || (s.Length > 6 && (s[^6] is '+' or '-') && s[^3] == ':');
}

/// <summary>A scenario file cannot be used; each problem names the file, line and path.</summary>
public sealed class ScenarioException(IReadOnlyList<string> problems) : Exception(string.Join(Environment.NewLine, problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
