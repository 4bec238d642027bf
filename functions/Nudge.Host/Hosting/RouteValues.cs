namespace Nudge.Host.Hosting;

/// <summary>Route value helpers shared by the APIs.</summary>
public static class RouteValues
{
    /// <summary>ASP.NET decodes every escape in a route value except %2F; ids and tokens may hold a slash.</summary>
    public static string Decode(string v) => v.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
}
