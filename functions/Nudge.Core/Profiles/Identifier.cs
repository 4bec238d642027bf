namespace Nudge.Core.Profiles;

/// <summary>How a person is addressed.</summary>
public enum IdentifierKind
{
    /// <summary>The caller's canonical customer id.</summary>
    Id,

    /// <summary>An email address (compared case-insensitively, stored lower-case).</summary>
    Email,

    /// <summary>Nudge's internal profile key (Customer.io's <c>cio_</c> id).</summary>
    CioId,

    /// <summary>An anonymous id from a device or browser before login.</summary>
    AnonymousId,

    /// <summary>Either a customer id or an anonymous id (Segment alias previousId): id is tried first.</summary>
    IdOrAnonymousId,
}

/// <summary>A typed identifier. Email values are always lower-case; <see cref="IdentifierKind.CioId"/> values carry no prefix.</summary>
public sealed record Identifier(IdentifierKind Kind, string Value)
{
    /// <summary>Prefix Customer.io uses in paths to address a person by internal id.</summary>
    public const string CioPrefix = "cio_";

    /// <summary>
    /// Reads a Track API path identifier as Customer.io does in an "email or id" workspace:
    /// <c>cio_</c>-prefixed values are internal ids, values containing '@' are emails, anything else is an id.
    /// </summary>
    public static Identifier FromPath(string value)
    {
        if (value.StartsWith(CioPrefix, StringComparison.Ordinal) && value.Length > CioPrefix.Length)
        {
            return new Identifier(IdentifierKind.CioId, value[CioPrefix.Length..]);
        }

        return value.Contains('@', StringComparison.Ordinal)
            ? new Identifier(IdentifierKind.Email, value.ToLowerInvariant())
            : new Identifier(IdentifierKind.Id, value);
    }

    public static Identifier Email(string value) => new(IdentifierKind.Email, value.ToLowerInvariant());

    public override string ToString() => $"{Kind}:{Value}";
}
