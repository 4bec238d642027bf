using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Messages;

namespace Nudge.Core.Reports;

/// <summary>
/// When a delivery-rate alert fires. The recent window is [now - <see cref="Window"/>, now); its baseline is the
/// <see cref="Baseline"/> before it. Both need at least <see cref="MinVolume"/> messages sent, so a quiet hour or a new
/// channel never alerts.
/// </summary>
/// <param name="Window">Length of the recent window (default 1 h).</param>
/// <param name="Baseline">Length of the trailing baseline before it (default 24 h).</param>
/// <param name="DropPercentagePoints">Fire when the window's rate is more than this many points below the baseline's (default 20).</param>
/// <param name="MinVolume">Fewest messages sent in the window, and in the baseline, to judge at all (default 50).</param>
public sealed record AlertSettings(TimeSpan Window, TimeSpan Baseline, double DropPercentagePoints, int MinVolume)
{
    public static readonly AlertSettings Default = new(TimeSpan.FromHours(1), TimeSpan.FromHours(24), 20, 50);
}

/// <summary>One channel and platform's delivery rate now and in its baseline (rates as shares, 0..1).</summary>
public sealed record RateSample(
    string Channel,
    string? Platform,
    DateTimeOffset WindowStart,
    DateTimeOffset WindowEnd,
    long WindowSent,
    long WindowDelivered,
    double? WindowRate,
    long BaselineSent,
    long BaselineDelivered,
    double? BaselineRate)
{
    /// <summary>"push/ios", "sms": the key alerts are kept under.</summary>
    public string Key => Platform is null ? Channel : $"{Channel}/{Platform}";

    /// <summary>How many percentage points the window is below the baseline (negative: above); null without both rates.</summary>
    public double? DropPoints => WindowRate is { } w && BaselineRate is { } b ? Math.Round((b - w) * 100, 2, MidpointRounding.AwayFromZero) : null;
}

/// <summary>The state of one channel/platform's alert, kept in a store checkpoint so restarts and other instances see it.</summary>
/// <param name="Status"><see cref="DeliveryAlerts.Ok"/>, <see cref="DeliveryAlerts.Posting"/> (claimed by a poster) or <see cref="DeliveryAlerts.Firing"/> (posted).</param>
/// <param name="Since">When it took this status.</param>
/// <param name="AlertId">Id of the alert being posted or posted (the same on every retry of the same drop).</param>
public sealed record AlertState(string Status, DateTimeOffset Since, string? AlertId = null);

/// <summary>
/// The delivery-rate alert rule. Per channel and platform, delivery rate = messages that reached their person /
/// messages sent (handed to a provider: accepted, bounced, dropped or failed), with the same reach rule as reports.
/// A message belongs to the period its hand-off (sent or refusal) falls in, and counts as reached whatever time its
/// delivery was reported, so a slow receipt does not make the window look worse. It fires when both periods have
/// <see cref="AlertSettings.MinVolume"/> messages and the window's rate is more than
/// <see cref="AlertSettings.DropPercentagePoints"/> below the baseline's. A fired alert is posted once; it re-arms when
/// the drop is back under half the threshold with enough volume, so the next drop alerts again.
/// </summary>
public static class DeliveryAlerts
{
    public const string Ok = "ok";
    public const string Posting = "posting";
    public const string Firing = "firing";

    /// <summary>How long a claim to post may stay unconfirmed before another run takes it over (the poster died): 2 min.</summary>
    public static readonly TimeSpan ClaimLease = TimeSpan.FromMinutes(2);

    /// <summary>The range of delivery events <see cref="Evaluate"/> needs at <paramref name="now"/>.</summary>
    public static (DateTimeOffset From, DateTimeOffset To) Range(DateTimeOffset now, AlertSettings s) => (now - s.Window - s.Baseline, now);

    /// <summary>Rates per channel and platform over <paramref name="events"/> (those of <see cref="Range"/>), by key.</summary>
    public static IReadOnlyList<RateSample> Evaluate(IEnumerable<DeliveryEvent> events, DateTimeOffset now, AlertSettings s, AttributionRule rule)
    {
        var windowStart = now - s.Window;
        var baselineStart = windowStart - s.Baseline;
        var handedOff = new Dictionary<string, (string Channel, string? Platform, DateTimeOffset At)>(StringComparer.Ordinal);
        var reached = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in events)
        {
            if (e.Holdout)
            {
                continue;
            }

            if (e.Metric is MessageStatus.Sent or MessageStatus.Bounced or MessageStatus.Dropped or MessageStatus.Failed
                && e.At >= baselineStart && e.At < now && (!handedOff.TryGetValue(e.MessageId, out var h) || e.At < h.At))
            {
                handedOff[e.MessageId] = (e.Channel, e.Platform, e.At);
            }

            if (rule.Reaches(e.Channel, e.Metric))
            {
                reached.Add(e.MessageId);
            }
        }

        var groups = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        var keys = new Dictionary<string, (string, string?)>(StringComparer.Ordinal);
        foreach (var (id, (channel, platform, at)) in handedOff)
        {
            var key = platform is null ? channel : $"{channel}/{platform}";
            keys[key] = (channel, platform);
            if (!groups.TryGetValue(key, out var c))
            {
                groups[key] = c = new long[4];
            }

            var offset = at >= windowStart ? 0 : 2;
            c[offset]++;
            if (reached.Contains(id))
            {
                c[offset + 1]++;
            }
        }

        return [.. groups.Select(g => new RateSample(keys[g.Key].Item1, keys[g.Key].Item2, windowStart, now,
            g.Value[0], g.Value[1], DeliveryReportBuilder.Ratio(g.Value[1], g.Value[0]),
            g.Value[2], g.Value[3], DeliveryReportBuilder.Ratio(g.Value[3], g.Value[2])))];
    }

    /// <summary>True when <paramref name="r"/> is a drop worth an alert.</summary>
    public static bool Fires(RateSample r, AlertSettings s) =>
        r.WindowSent >= s.MinVolume && r.BaselineSent >= s.MinVolume && r.DropPoints is { } d && d > s.DropPercentagePoints;

    /// <summary>True when a fired alert may re-arm: enough volume, and the drop is back under half the threshold.</summary>
    public static bool Recovered(RateSample r, AlertSettings s) =>
        r.WindowSent >= s.MinVolume && r.DropPoints is { } d && d <= s.DropPercentagePoints / 2;

    /// <summary>
    /// What to do about <paramref name="r"/> given its stored state: null (nothing), a <see cref="Posting"/> state to claim
    /// before posting (a new drop, or a claim whose poster died), or an <see cref="Ok"/> state (re-armed).
    /// </summary>
    public static AlertState? Next(AlertState? state, RateSample r, DateTimeOffset now, AlertSettings s)
    {
        var status = state?.Status ?? Ok;
        if (Fires(r, s))
        {
            return status switch
            {
                Ok => new AlertState(Posting, now, AlertId(r, now)),
                Posting when now - state!.Since > ClaimLease => state with { Since = now },
                _ => null,
            };
        }

        return status != Ok && Recovered(r, s) ? new AlertState(Ok, now) : null;
    }

    /// <summary>The Slack-compatible body: {"text": ...} for Slack, and the figures as fields for everything else.</summary>
    public static JsonObject Payload(RateSample r, AlertSettings s, string alertId)
    {
        var what = r.Platform is null ? r.Channel : $"{r.Channel} {r.Platform}";
        var text = string.Create(CultureInfo.InvariantCulture,
            $"Nudge: {what} delivery rate fell to {r.WindowRate * 100:0.#}% over the last {Journeys.Durations.Format(s.Window)} " +
            $"({r.WindowDelivered} of {r.WindowSent} sent), from {r.BaselineRate * 100:0.#}% over the {Journeys.Durations.Format(s.Baseline)} before " +
            $"({r.BaselineDelivered} of {r.BaselineSent}): down {r.DropPoints:0.#} points.");
        return new JsonObject
        {
            ["text"] = text,
            ["alert"] = "delivery_rate_drop",
            ["alert_id"] = alertId,
            ["channel"] = r.Channel,
            ["platform"] = r.Platform,
            ["window_start"] = r.WindowStart.ToString("O", CultureInfo.InvariantCulture),
            ["window_end"] = r.WindowEnd.ToString("O", CultureInfo.InvariantCulture),
            ["window_sent"] = r.WindowSent,
            ["window_delivered"] = r.WindowDelivered,
            ["window_rate"] = r.WindowRate,
            ["baseline_sent"] = r.BaselineSent,
            ["baseline_delivered"] = r.BaselineDelivered,
            ["baseline_rate"] = r.BaselineRate,
            ["drop_percentage_points"] = r.DropPoints,
            ["threshold_percentage_points"] = s.DropPercentagePoints,
        };
    }

    public static string Serialize(AlertState state) => JsonSerializer.Serialize(state, Storage.StoreJson.Options);

    public static AlertState? Deserialize(string? value) =>
        string.IsNullOrEmpty(value) ? null : JsonSerializer.Deserialize<AlertState>(value, Storage.StoreJson.Options);

    /// <summary>Stable for one drop: channel, platform and when it was first seen.</summary>
    private static string AlertId(RateSample r, DateTimeOffset now) =>
        $"{r.Key}@{now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}";
}
