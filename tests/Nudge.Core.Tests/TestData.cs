using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Text;

namespace Nudge.Core.Tests;

/// <summary>Shared builders for the parser tests.</summary>
internal static class TestData
{
    public static readonly DateTimeOffset Now = new(2024, 6, 1, 12, 0, 0, TimeSpan.Zero);

    public static IngestValidator Validator() => new(new IngestLimits(), new PhoneNormalizer("US"));

    public static JsonObject Body(string json) => JsonNode.Parse(json)!.AsObject();

    /// <summary>The fields named by the errors, in the order they were reported.</summary>
    public static string[] Fields(ValidationException e) => e.Errors.Select(x => x.Field).ToArray();

    public static void AssertFields(ValidationException e, params string[] expected) =>
        Assert.Equal(expected, Fields(e));

    public static FieldError SingleError(ValidationException e, string field)
    {
        var error = Assert.Single(e.Errors);
        Assert.Equal(field, error.Field);
        return error;
    }
}
