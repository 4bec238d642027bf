namespace Nudge.Benchmarks;

/// <summary>The repository the benchmark was built from (where BENCHMARKS.md and journeys/ are).</summary>
internal static class Repo
{
    public static string Root()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Serverless.sln")))
            {
                return d.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }
}
