namespace Nudge.Host.Hosting;

/// <summary>
/// Settings Nudge cannot start with: every problem found, one entry each, naming the full configuration key (e.g.
/// Nudge:Workers:BatchSize) or the journey file and line, and what is allowed. No entry quotes a secret's value. The
/// program prints one line per problem to stderr and exits with <see cref="ExitCode"/>.
/// </summary>
/// <remarks>An <see cref="InvalidOperationException"/>, so embedders that caught that before still catch it.</remarks>
public sealed class NudgeConfigurationException : InvalidOperationException
{
    /// <summary>The process exit code for a configuration or setup problem: 2 (as for a command-line usage error).</summary>
    public const int ExitCode = 2;

    /// <param name="problems">At least one problem; line breaks inside one are folded into spaces, so each stays one line, and repeats are dropped.</param>
    public NudgeConfigurationException(IEnumerable<string> problems)
        : this(problems.Select(OneLine).Distinct(StringComparer.Ordinal).ToList())
    {
    }

    /// <param name="problem">The problem; line breaks are folded into spaces.</param>
    public NudgeConfigurationException(string problem)
        : this([problem])
    {
    }

    private NudgeConfigurationException(List<string> problems)
        : base(string.Join(Environment.NewLine, problems))
    {
        if (problems.Count == 0)
        {
            throw new ArgumentException("a configuration error needs at least one problem", nameof(problems));
        }

        Problems = problems;
    }

    /// <summary>Every problem, one line each.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>Throws when <paramref name="problems"/> holds any.</summary>
    /// <exception cref="NudgeConfigurationException">Any problem was found.</exception>
    public static void ThrowIfAny(IReadOnlyCollection<string> problems)
    {
        if (problems.Count > 0)
        {
            throw new NudgeConfigurationException(problems);
        }
    }

    /// <summary>Runs a check that throws this exception and adds its problems to <paramref name="problems"/> instead, so all are reported at once.</summary>
    internal static T? Collect<T>(List<string> problems, Func<T> check)
    {
        try
        {
            return check();
        }
        catch (NudgeConfigurationException e)
        {
            problems.AddRange(e.Problems);
            return default;
        }
    }

    /// <summary>The text with its line breaks folded into spaces.</summary>
    internal static string OneLine(string problem) =>
        string.Join(' ', problem.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}

/// <summary>
/// The machine stops start-up, not a setting's value: the data folder is locked by another Nudge process or cannot be
/// written, or the address is in use. The message is one line saying what and what to do; the program prints it to
/// stderr and exits with <see cref="NudgeConfigurationException.ExitCode"/>.
/// </summary>
public sealed class NudgeSetupException(string problem, Exception? inner = null) : InvalidOperationException(NudgeConfigurationException.OneLine(problem), inner);
