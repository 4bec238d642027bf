using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Nudge.Core.Profiles;

/// <summary>
/// A person. <see cref="Key"/> never changes; <see cref="Id"/>, <see cref="Email"/> and <see cref="AnonymousIds"/>
/// are unique across profiles (the store enforces it). <see cref="Version"/> is 0 for a profile never stored and
/// grows by one on every successful write (optimistic concurrency).
/// </summary>
public sealed class Profile
{
    public required string Key { get; init; }

    public string? Id { get; set; }

    public string? Email { get; set; }

    public List<string> AnonymousIds { get; set; } = [];

    /// <summary>Ids and emails of people merged into this one; they resolve here from now on.</summary>
    public List<string> AliasIds { get; set; } = [];

    public List<string> AliasEmails { get; set; } = [];

    public SortedDictionary<string, AttributeValue> Attributes { get; set; } = new(StringComparer.Ordinal);

    public List<ConsentChange> ConsentHistory { get; set; } = [];

    public bool Suppressed { get; set; }

    public DateTimeOffset? SuppressedAt { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>Internal keys of profiles merged into this one, oldest first.</summary>
    public List<string> MergedFrom { get; set; } = [];

    [JsonIgnore]
    public long Version { get; set; }

    /// <summary>True while the person is known only by anonymous ids.</summary>
    [JsonIgnore]
    public bool IsAnonymous => Id is null && Email is null;

    public JsonNode? Get(string name) =>
        Attributes.TryGetValue(name, out var a) ? a.Value : null;

    public bool GetBool(string name) => Get(name) is JsonValue v && v.TryGetValue<bool>(out var b) && b;

    public string? GetString(string name) => Get(name) is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>Live attributes only (no tombstones), in name order.</summary>
    public IEnumerable<KeyValuePair<string, JsonNode>> LiveAttributes() =>
        Attributes.Where(a => a.Value.Value is not null).Select(a => KeyValuePair.Create(a.Key, a.Value.Value!));

    /// <summary>The consent view the send stage reads.</summary>
    public Consent Consent => Consent.From(this);
}

/// <summary>One change of a consent field, with when and how it happened.</summary>
public sealed record ConsentChange(string Field, JsonNode? Value, DateTimeOffset At, string Source, string? Ip);
