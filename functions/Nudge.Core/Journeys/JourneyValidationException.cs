namespace Nudge.Core.Journeys;

/// <summary>A problem in a journey file: which file, where in it, and what is wrong.</summary>
public sealed record JourneyProblem(string File, int Line, string Path, string Problem)
{
    public override string ToString() => $"{File}:{Line}: {(Path.Length == 0 ? "(document)" : Path)}: {Problem}";
}

/// <summary>Thrown when journey files are invalid; the message lists every problem, one per line.</summary>
public sealed class JourneyValidationException(IReadOnlyList<JourneyProblem> problems)
    : Exception("Invalid journey definitions:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Select(p => "  " + p)))
{
    public IReadOnlyList<JourneyProblem> Problems { get; } = problems;
}
