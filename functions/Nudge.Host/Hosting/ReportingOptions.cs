using System.ComponentModel.DataAnnotations;
using Nudge.Core.Journeys;
using Nudge.Core.Reports;

namespace Nudge.Host.Hosting;

/// <summary>Settings under "Nudge:Reports": how reports and conversions count reach.</summary>
public sealed class ReportsOptions
{
    /// <summary>
    /// Count a push accepted by APNs/FCM (metric sent) as delivered, for conversions, reports and alerts. Default: true,
    /// because the providers give no delivery receipt; set false when the apps report SDK push metrics (delivered).
    /// </summary>
    public bool PushSentCountsAsDelivered { get; set; } = true;

    /// <summary>Token coverage and the token segments look at people active in the last this many days: 30.</summary>
    [Range(1, 3650)]
    public int ActiveDays { get; set; } = 30;

    public AttributionRule Rule() => new(PushSentCountsAsDelivered);
}

/// <summary>Settings under "Nudge:Alerts": delivery-rate drop alerts. Off until <see cref="WebhookUrl"/> is set.</summary>
public sealed class AlertOptions
{
    /// <summary>Where alerts are posted (a Slack incoming webhook, or anything taking JSON). Default: none (alerts off). A secret: never logged.</summary>
    public string? WebhookUrl { get; set; }

    /// <summary>Length of the recent window, as a duration ("1h", "30m"): 1h.</summary>
    public string Window { get; set; } = "1h";

    /// <summary>Length of the trailing baseline before the window: 24h.</summary>
    public string Baseline { get; set; } = "24h";

    /// <summary>Alert when the window's delivery rate is more than this many percentage points below the baseline's: 20.</summary>
    [Range(0.1, 100)]
    public double DropPercentagePoints { get; set; } = 20;

    /// <summary>Fewest messages sent in the window, and in the baseline, for a channel/platform to be judged: 50.</summary>
    [Range(1, 1_000_000)]
    public int MinVolume { get; set; } = 50;

    /// <summary>How often the rule is evaluated (embedded worker; in Functions, the reporting function's runs): 1m.</summary>
    public string CheckInterval { get; set; } = "1m";

    /// <summary>How long one post may take: 10 s.</summary>
    [Range(1, 120)]
    public int TimeoutSeconds { get; set; } = 10;

    public bool Enabled => !string.IsNullOrWhiteSpace(WebhookUrl);

    public AlertSettings Settings() => new(Duration(Window), Duration(Baseline), DropPercentagePoints, MinVolume);

    public TimeSpan Interval() => Duration(CheckInterval);

    /// <summary>Every problem, by setting name; empty when usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Enabled && !ReportingWebhookOptions.IsHttpUrl(WebhookUrl))
        {
            problems.Add("Nudge:Alerts:WebhookUrl: must be an absolute http(s) URL");
        }

        foreach (var (name, value) in new[] { ("Window", Window), ("Baseline", Baseline), ("CheckInterval", CheckInterval) })
        {
            if (!Durations.TryParse(value, out var t) || t <= TimeSpan.Zero)
            {
                problems.Add($"Nudge:Alerts:{name}: '{value}' is not a positive duration such as 30m, 1h or 1d");
            }
        }

        return problems;
    }

    private static TimeSpan Duration(string text) => Durations.TryParse(text, out var t) ? t : throw new InvalidOperationException($"'{text}' is not a duration");
}

/// <summary>
/// Settings under "Nudge:ReportingWebhooks": every delivery event posted to <see cref="Url"/>, signed with
/// <see cref="Secret"/>. Off until both are set.
/// </summary>
public sealed class ReportingWebhookOptions
{
    /// <summary>The receiver's URL. Default: none (off).</summary>
    public string? Url { get; set; }

    /// <summary>The signing secret (HMAC-SHA256), at least 16 characters. A secret: never logged.</summary>
    public string? Secret { get; set; }

    /// <summary>How long one post may take before it counts as failed and is retried: 4 s (as Customer.io's).</summary>
    [Range(1, 60)]
    public int TimeoutSeconds { get; set; } = 4;

    /// <summary>Most events read per pass: 100.</summary>
    [Range(1, 5000)]
    public int BatchSize { get; set; } = 100;

    /// <summary>
    /// Events recorded in the last this many seconds wait for the next pass, so a write that got its RecordedAt before a
    /// later-stamped one but committed after it is not skipped: 10 s.
    /// </summary>
    [Range(0, 600)]
    public int SettleSeconds { get; set; } = 10;

    /// <summary>Longest wait between retries of a failing receiver (1 s doubling up to this): 5m.</summary>
    public string MaxBackoff { get; set; } = "5m";

    public bool Enabled => !string.IsNullOrWhiteSpace(Url) && !string.IsNullOrEmpty(Secret);

    public TimeSpan MaxBackoffTime() => Durations.TryParse(MaxBackoff, out var t) ? t : TimeSpan.FromMinutes(5);

    /// <summary>Every problem, by setting name; empty when usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!string.IsNullOrWhiteSpace(Url) && !IsHttpUrl(Url))
        {
            problems.Add("Nudge:ReportingWebhooks:Url: must be an absolute http(s) URL");
        }

        if (!string.IsNullOrWhiteSpace(Url) && (Secret?.Length ?? 0) < 16)
        {
            problems.Add("Nudge:ReportingWebhooks:Secret: required with Url, at least 16 characters");
        }

        if (!Durations.TryParse(MaxBackoff, out var t) || t <= TimeSpan.Zero)
        {
            problems.Add($"Nudge:ReportingWebhooks:MaxBackoff: '{MaxBackoff}' is not a positive duration such as 5m");
        }

        return problems;
    }

    internal static bool IsHttpUrl(string? s) =>
        Uri.TryCreate(s, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttps || u.Scheme == Uri.UriSchemeHttp);
}
