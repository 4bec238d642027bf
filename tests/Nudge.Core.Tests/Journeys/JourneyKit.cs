using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.TestSupport;

namespace Nudge.Core.Tests.Journeys;

/// <summary>Builders shared by the journey engine tests.</summary>
internal static class JourneyKit
{
    /// <summary>A Wednesday, 12:00 UTC, in summer (New York is on EDT, UTC-4).</summary>
    public static readonly DateTimeOffset T0 = new(2026, 6, 10, 12, 0, 0, TimeSpan.Zero);

    public static JourneyDefinition Journey(string yaml) => JourneyLoader.Parse("test.yaml", yaml);

    public static JsonObject Obj(string json) => JsonNode.Parse(json)!.AsObject();

    /// <summary>A person with an id, an email and the given attributes (set a month before <see cref="T0"/>).</summary>
    public static Profile Person(string attributes = "{}", string key = "k1", string? email = "ana@example.com", string? id = "cust-1")
    {
        var p = new Profile { Key = key, Id = id, Email = email, CreatedAt = T0.AddDays(-30), UpdatedAt = T0.AddDays(-30) };
        var rejected = ProfileRules.ApplyAttributes(p, Obj(attributes), T0.AddDays(-30), "test", null, 300);
        Assert.Empty(rejected);
        return p;
    }

    public static Device NewDevice(string token, string platform, DateTimeOffset lastUsed, string profileKey = "k1", string? pushEnabled = null)
    {
        var d = new Device { Token = token, ProfileKey = profileKey, Platform = platform, LastUsed = lastUsed };
        if (pushEnabled is not null)
        {
            d.Attributes["push_enabled"] = pushEnabled;
        }

        return d;
    }

    public static JourneyEngine Engine(IReadOnlyList<CapRule>? caps = null, string zone = "UTC", QuietHours? quiet = null) =>
        new(new EngineOptions(new FrequencyCaps(caps ?? []), new Schedule(zone, quiet)), new Templates());

    public static TriggerSnapshot Trigger(string data = "{}", string name = "add_to_cart", DateTimeOffset? at = null) =>
        new(name, "ev-trigger", at ?? T0, Obj(data));

    public static JourneyInstance NewInstance(JourneyDefinition j, TriggerSnapshot trigger, string key = "k1") =>
        JourneyEngine.NewInstance(j, key, [], trigger, trigger.Timestamp);

    public static EngineContext Ctx(
        Profile p,
        DateTimeOffset now,
        IReadOnlyList<Device>? devices = null,
        IReadOnlyList<SendRecord>? history = null,
        IReadOnlyList<EventSnapshot>? events = null) =>
        new(p, devices ?? [], history ?? [], events ?? [], now);

    public static EventSnapshot Event(string name, string data, DateTimeOffset at, string id = "ev-2") => new(name, id, at, Obj(data));

    /// <summary>A deep copy through the store's JSON shape, as a crash-and-retry would reload it.</summary>
    public static JourneyInstance Clone(JourneyInstance i) =>
        JsonSerializer.Deserialize<JourneyInstance>(JsonSerializer.Serialize(i, StoreJson.Options), StoreJson.Options)!;

    public static string JourneysFolder() => Path.Combine(TestEnvironment.RepositoryRoot(), "journeys");

    public static JourneyDefinition Example(string name)
    {
        var path = Path.Combine(JourneysFolder(), name);
        return JourneyLoader.Parse(path, File.ReadAllText(path));
    }

    /// <summary>The problems of a journey file that must not load.</summary>
    public static IReadOnlyList<JourneyProblem> Problems(string yaml, string file = "test.yaml") =>
        Assert.Throws<JourneyValidationException>(() => JourneyLoader.Parse(file, yaml)).Problems;

    /// <summary>The one problem reported at <paramref name="path"/>.</summary>
    public static JourneyProblem ProblemAt(string yaml, string path)
    {
        var problems = Problems(yaml);
        var matching = problems.Where(p => p.Path == path).ToList();
        Assert.True(matching.Count == 1, $"expected one problem at {path}, got: {string.Join(" | ", problems)}");
        return matching[0];
    }
}
