using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Nudge.Core.Profiles;

/// <summary>
/// The identity and attribute rules, free of I/O. Attribute writes are last-writer-wins by the client's timestamp,
/// so the same set of updates and merges gives the same profile whatever order they arrive in.
/// </summary>
public static class ProfileRules
{
    /// <summary>A profile key derived from the identifier that created the person: stable, unguessable enough, no I/O.</summary>
    public static string NewKey(Identifier first)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{first.Kind}\n{first.Value}"));
        return Convert.ToHexStringLower(hash.AsSpan(0, 10));
    }

    /// <summary>
    /// Applies attribute updates made at <paramref name="at"/>. A value older than the stored one is ignored; null removes.
    /// Returns the names that were not added because the person already has <paramref name="maxAttributes"/> attributes.
    /// </summary>
    public static IReadOnlyList<string> ApplyAttributes(Profile p, JsonObject attrs, DateTimeOffset at, string source, string? ip, int maxAttributes)
    {
        var atMs = at.ToUnixTimeMilliseconds();
        var rejected = new List<string>();
        var live = p.Attributes.Count(a => !a.Value.IsRemoved);
        foreach (var (name, value) in attrs)
        {
            p.Attributes.TryGetValue(name, out var current);
            if (current is not null && current.SetAtMs > atMs)
            {
                continue; // a newer write already happened
            }

            if (current is not null && current.SetAtMs == atMs && Compare(current.Value, value) >= 0)
            {
                continue; // same instant: the larger value wins, so replays in any order agree
            }

            var isNew = current is null || current.IsRemoved;
            if (value is not null && isNew && live >= maxAttributes)
            {
                rejected.Add(name);
                continue;
            }

            var changed = !JsonNode.DeepEquals(current?.Value, value);
            p.Attributes[name] = new AttributeValue { Value = value?.DeepClone(), SetAtMs = atMs };
            live += value is null ? (isNew ? 0 : -1) : (isNew ? 1 : 0);
            if (changed && Consent.TrackedAttributes.Contains(name))
            {
                p.ConsentHistory.Add(new ConsentChange(name, value?.DeepClone(), at, source, ip));
                if (name == Consent.SmsConsentAttr && !attrs.ContainsKey(Consent.SmsConsentAtAttr))
                {
                    p.Attributes[Consent.SmsConsentAtAttr] = new AttributeValue { Value = at.UtcDateTime.ToString("O"), SetAtMs = atMs };
                }
            }
        }

        return rejected;
    }

    /// <summary>
    /// Folds <paramref name="secondary"/> into <paramref name="primary"/>: attributes by newer timestamp, identifiers kept
    /// by the primary (the secondary's become aliases), anonymous ids, consent history and merge lineage unioned.
    /// </summary>
    public static void Merge(Profile primary, Profile secondary, DateTimeOffset now)
    {
        foreach (var (name, theirs) in secondary.Attributes)
        {
            if (!primary.Attributes.TryGetValue(name, out var ours) || theirs.SetAtMs > ours.SetAtMs
                || (theirs.SetAtMs == ours.SetAtMs && Compare(theirs.Value, ours.Value) > 0))
            {
                primary.Attributes[name] = new AttributeValue { Value = theirs.Value?.DeepClone(), SetAtMs = theirs.SetAtMs };
            }
        }

        if (primary.Id is null)
        {
            primary.Id = secondary.Id;
        }
        else if (secondary.Id is not null && secondary.Id != primary.Id)
        {
            primary.AliasIds.Add(secondary.Id);
        }

        if (primary.Email is null)
        {
            primary.Email = secondary.Email;
        }
        else if (secondary.Email is not null && secondary.Email != primary.Email)
        {
            primary.AliasEmails.Add(secondary.Email);
        }

        primary.AliasIds = Union(primary.AliasIds, secondary.AliasIds).Where(i => i != primary.Id).ToList();
        primary.AliasEmails = Union(primary.AliasEmails, secondary.AliasEmails).Where(e => e != primary.Email).ToList();
        primary.AnonymousIds = Union(primary.AnonymousIds, secondary.AnonymousIds);
        primary.MergedFrom = Union(primary.MergedFrom, [secondary.Key, .. secondary.MergedFrom]);
        primary.ConsentHistory = primary.ConsentHistory.Concat(secondary.ConsentHistory).Distinct()
            .OrderBy(c => c.At).ThenBy(c => c.Field, StringComparer.Ordinal).ToList();
        if (secondary.Suppressed && !primary.Suppressed)
        {
            primary.Suppressed = true;
            primary.SuppressedAt = secondary.SuppressedAt;
        }

        primary.CreatedAt = primary.CreatedAt <= secondary.CreatedAt ? primary.CreatedAt : secondary.CreatedAt;
        primary.UpdatedAt = now;
    }

    private static List<string> Union(IEnumerable<string> a, IEnumerable<string> b) =>
        a.Concat(b).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    private static int Compare(JsonNode? a, JsonNode? b) =>
        string.CompareOrdinal(a?.ToJsonString() ?? "", b?.ToJsonString() ?? "");
}
