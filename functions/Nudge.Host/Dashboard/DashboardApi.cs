using System.Collections.Frozen;
using System.Reflection;
using System.Text;

namespace Nudge.Host.Dashboard;

/// <summary>
/// Serves the operator dashboard at /dashboard: static HTML, CSS and JavaScript embedded in this assembly (no CDN, no
/// build step). The shell holds no data and needs no key: the page asks the operator for the admin key, keeps it in
/// sessionStorage, and calls the admin API with <c>Authorization: Bearer</c>. The only thing the server writes into the
/// page is the admin API's base path, which differs between embedded (/admin/v1) and Functions mode (/nudge-admin/v1).
/// </summary>
public static class DashboardApi
{
    /// <summary>Where the dashboard is served, in both modes (the Functions admin route accepts it too).</summary>
    public const string Path = "/dashboard";

    /// <summary>Replaced in index.html by the admin API base path.</summary>
    private const string ApiBasePlaceholder = "{{API_BASE}}";

    /// <summary>
    /// Scripts only from this origin, never inline; data only from the admin API on this origin. Images only as data:
    /// URIs, so rendering a sandbox email in the outbox view cannot fire its open-tracking pixel. Inline styles are
    /// allowed because the email's srcdoc frame inherits this policy and emails are styled inline.
    /// </summary>
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src data:; connect-src 'self'; frame-src 'self'; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    private static readonly FrozenDictionary<string, string> Types = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["index.html"] = "text/html; charset=utf-8",
        ["dashboard.css"] = "text/css; charset=utf-8",
        ["dashboard.js"] = "text/javascript; charset=utf-8",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Maps GET /dashboard (the page) and GET /dashboard/{file} (its assets); no authentication: they hold no data.</summary>
    /// <param name="app">The endpoint builder.</param>
    /// <param name="apiBase">The admin API's public base path, e.g. /admin/v1.</param>
    /// <exception cref="InvalidOperationException">An asset is missing from the assembly (a build problem).</exception>
    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app, string apiBase)
    {
        // Loaded once: the files are small (tens of KiB) and never change while the process runs.
        var files = Types.Keys.ToFrozenDictionary(f => f, f => Load(f, apiBase), StringComparer.Ordinal);
        IResult Serve(HttpContext c, string file)
        {
            if (!files.TryGetValue(file, out var bytes))
            {
                return Results.NotFound();
            }

            var h = c.Response.Headers;
            h.ContentSecurityPolicy = ContentSecurityPolicy;
            h.XContentTypeOptions = "nosniff";
            h["Referrer-Policy"] = "no-referrer";
            h.CacheControl = "no-cache";
            return Results.Bytes(bytes, Types[file]);
        }

        // Routing ignores a trailing slash: this also serves /dashboard/.
        app.MapGet(Path, (HttpContext c) => Serve(c, "index.html"));
        app.MapGet(Path + "/{file}", (HttpContext c, string file) => Serve(c, file));
        return app;
    }

    private static byte[] Load(string file, string apiBase)
    {
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream("Nudge.Host.Dashboard." + file)
            ?? throw new InvalidOperationException($"dashboard asset '{file}' is not embedded in Nudge.Host");
        using var r = new StreamReader(s, Encoding.UTF8);
        var text = r.ReadToEnd();
        return Encoding.UTF8.GetBytes(file == "index.html" ? text.Replace(ApiBasePlaceholder, apiBase, StringComparison.Ordinal) : text);
    }
}
