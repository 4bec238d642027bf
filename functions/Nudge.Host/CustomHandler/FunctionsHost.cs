using System.Globalization;
using Nudge.Host.Hosting;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// How the Azure Functions host finds and calls Nudge as its custom handler: the port it gives us, and the function
/// (folder) names it posts to. The names match the folders in functions/Nudge.Host/Functions/.
/// </summary>
public static class FunctionsHost
{
    /// <summary>The port the host calls the handler on; its presence switches Nudge.Host into Functions mode.</summary>
    public const string PortVariable = "FUNCTIONS_CUSTOMHANDLER_PORT";

    /// <summary>The same port under the name older hosts (the "httpWorker" section) use.</summary>
    public const string LegacyPortVariable = "FUNCTIONS_HTTPWORKER_PORT";

    public const string Ingest = "ingest";
    public const string Webhooks = "webhooks";
    public const string Admin = "admin";
    public const string ProcessEvent = "process-event";
    public const string RunStep = "run-step";
    public const string Send = "send";
    public const string JourneyTimers = "journey-timers";
    public const string Reporting = "reporting";

    /// <summary>Every function of the app, in pipeline order.</summary>
    public static readonly IReadOnlyList<string> Functions = [Ingest, Webhooks, Admin, ProcessEvent, RunStep, Send, JourneyTimers, Reporting];

    /// <summary>
    /// The public path prefix of the admin function. The Functions host reserves every route that starts with "admin"
    /// for its own management API (function.json routes starting with it are refused), so the admin API is published
    /// at /nudge-admin/v1/... and dispatched to the embedded server's /admin/v1/... endpoints.
    /// </summary>
    public const string AdminPublicPrefix = "/nudge-admin";

    /// <summary>The port of Functions mode, or null for the embedded server (neither variable set, or empty).</summary>
    /// <exception cref="NudgeConfigurationException">The variable is set but is not a TCP port.</exception>
    public static int? Port(IConfiguration config)
    {
        foreach (var name in new[] { PortVariable, LegacyPortVariable })
        {
            var text = config[name];
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            // Port 0 (any free port) is accepted for tests; the host always passes a real one.
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535
                ? port
                : throw new NudgeConfigurationException($"{name}: '{text}' is not a TCP port (0 to 65535)");
        }

        return null;
    }
}
