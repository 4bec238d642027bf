using Nudge.Core.Profiles;

namespace Nudge.Core.Storage;

/// <summary>
/// How every store indexes a profile's identifiers: one (kind, value) entry per identifier, held by one person at a
/// time, and the kinds an <see cref="Identifier"/> is looked up under, in order. One definition, so a person resolves
/// the same way whichever store holds them (and data can move between stores).
/// </summary>
public static class IdentifierIndex
{
    /// <summary>The entries <paramref name="p"/> holds: its id, email, anonymous ids, merge aliases and merged-away keys.</summary>
    public static IEnumerable<(string Kind, string Value)> Of(Profile p)
    {
        if (p.Id is not null)
        {
            yield return ("id", p.Id);
        }

        if (p.Email is not null)
        {
            yield return ("email", p.Email);
        }

        foreach (var a in p.AnonymousIds)
        {
            yield return ("anon", a);
        }

        foreach (var a in p.AliasIds)
        {
            yield return ("alias_id", a);
        }

        foreach (var a in p.AliasEmails)
        {
            yield return ("alias_email", a);
        }

        foreach (var k in p.MergedFrom)
        {
            yield return ("alias_cio", k);
        }
    }

    /// <summary>The entry kinds an identifier of <paramref name="kind"/> is looked up under, first match wins.</summary>
    public static IReadOnlyList<string> KindsFor(IdentifierKind kind) => kind switch
    {
        IdentifierKind.Id => ["id", "alias_id"],
        IdentifierKind.Email => ["email", "alias_email"],
        IdentifierKind.AnonymousId => ["anon"],
        IdentifierKind.IdOrAnonymousId => ["id", "anon", "alias_id"],
        IdentifierKind.CioId => ["alias_cio"],
        _ => [],
    };
}
