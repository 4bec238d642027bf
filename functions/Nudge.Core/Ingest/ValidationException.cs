namespace Nudge.Core.Ingest;

/// <summary>One problem with a request: the JSON path of the field and why it is rejected.</summary>
public sealed record FieldError(string Field, string Problem)
{
    public override string ToString() => Field.Length == 0 ? Problem : $"{Field}: {Problem}";
}

/// <summary>Thrown by the parsers when input is rejected; carries every problem found.</summary>
public sealed class ValidationException(IReadOnlyList<FieldError> errors)
    : Exception(string.Join("; ", errors))
{
    public IReadOnlyList<FieldError> Errors { get; } = errors;

    public ValidationException(string field, string problem) : this([new FieldError(field, problem)])
    {
    }
}
