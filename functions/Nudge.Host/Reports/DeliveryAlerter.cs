using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Nudge.Core.Reports;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;
using Nudge.Pipeline;

namespace Nudge.Host.Reports;

/// <summary>
/// Evaluates the delivery-rate alert rule (<see cref="DeliveryAlerts"/>) and posts each new drop once. The state of
/// every channel/platform is a store checkpoint ("alert:{channel}/{platform}"): a run claims a drop by moving it to
/// "posting" with a version-checked write before posting, so of two processes (or Function instances) only one posts,
/// and a restart finds the drop already posted. A post that fails releases the claim so the next run tries again; a
/// poster that dies after claiming leaves the claim to be taken over after <see cref="DeliveryAlerts.ClaimLease"/>.
/// </summary>
public sealed class DeliveryAlerter(IStore store, DeliveryReports reports, SendStage send, TimeProvider time, IOptions<NudgeOptions> options, ILogger<DeliveryAlerter> log)
{
    /// <summary>Checkpoint of the last evaluation, so Function instances evaluate once per check interval between them.</summary>
    public const string LastRunCheckpoint = "alerts:last-run";

    private static readonly HttpClient Http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) });

    private AlertOptions Options => options.Value.Alerts;

    /// <summary>Evaluates the rule now unless it ran less than a check interval ago; returns the alerts posted.</summary>
    public async Task<int> RunIfDueAsync(CancellationToken ct)
    {
        if (!Options.Enabled)
        {
            return 0;
        }

        var now = time.GetUtcNow();
        var last = await store.GetCheckpointAsync(LastRunCheckpoint, ct);
        if (last is not null && long.TryParse(last.Value, out var ms) && now - DateTimeOffset.FromUnixTimeMilliseconds(ms) < Options.Interval())
        {
            return 0;
        }

        if (!await TryPutAsync(new Checkpoint(LastRunCheckpoint, now.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture), last?.Version ?? 0)))
        {
            return 0; // another process started this check
        }

        return await RunOnceAsync(ct);
    }

    /// <summary>Evaluates the rule now and posts what fires; returns the alerts posted.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        if (!Options.Enabled)
        {
            return 0;
        }

        var now = time.GetUtcNow();
        var settings = Options.Settings();
        var posted = 0;
        foreach (var sample in await SamplesAsync(now, settings, ct))
        {
            var name = "alert:" + sample.Key;
            var stored = await store.GetCheckpointAsync(name, ct);
            var state = DeliveryAlerts.Deserialize(stored?.Value);
            if (DeliveryAlerts.Next(state, sample, now, settings) is not { } next)
            {
                continue;
            }

            var version = stored?.Version ?? 0;
            if (!await TryPutAsync(new Checkpoint(name, DeliveryAlerts.Serialize(next), version)))
            {
                continue; // another process moved this alert on first
            }

            version++;
            if (next.Status != DeliveryAlerts.Posting)
            {
                log.LogInformation("delivery rate of {Key} recovered ({Rate:P1}); its alert is re-armed", sample.Key, sample.WindowRate);
                continue;
            }

            var ok = await PostAsync(DeliveryAlerts.Payload(sample, settings, next.AlertId!), ct);
            // Posted: firing until it recovers. Not posted: back to what it was, so the next run tries again.
            var after = ok ? next with { Status = DeliveryAlerts.Firing } : state ?? new AlertState(DeliveryAlerts.Ok, now);
            await TryPutAsync(new Checkpoint(name, DeliveryAlerts.Serialize(after), version));
            if (ok)
            {
                posted++;
                log.LogWarning("delivery rate of {Key} dropped {Drop} points ({Window:P1} vs {Baseline:P1}); alert {Id} posted",
                    sample.Key, sample.DropPoints, sample.WindowRate, sample.BaselineRate, next.AlertId);
            }
        }

        return posted;
    }

    /// <summary>
    /// The rule as it stands now, for people to look at (the dashboard): each channel/platform's window and baseline
    /// rates, whether the rule fires, and the state its alert is in (ok, posting, firing). Evaluates only; posts nothing.
    /// </summary>
    public async Task<JsonObject> StatusAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var settings = Options.Settings();
        var channels = new JsonArray();
        foreach (var sample in await SamplesAsync(now, settings, ct))
        {
            var state = DeliveryAlerts.Deserialize((await store.GetCheckpointAsync("alert:" + sample.Key, ct))?.Value);
            channels.Add(new JsonObject
            {
                ["channel"] = sample.Channel,
                ["platform"] = sample.Platform,
                ["window_sent"] = sample.WindowSent,
                ["window_rate"] = sample.WindowRate,
                ["baseline_sent"] = sample.BaselineSent,
                ["baseline_rate"] = sample.BaselineRate,
                ["drop_points"] = sample.DropPoints,
                ["fires"] = DeliveryAlerts.Fires(sample, settings),
                ["state"] = state?.Status ?? DeliveryAlerts.Ok,
                ["since"] = state?.Since,
                ["alert_id"] = state?.AlertId,
            });
        }

        return new JsonObject
        {
            ["enabled"] = Options.Enabled,
            ["at"] = now,
            ["window_hours"] = settings.Window.TotalHours,
            ["baseline_hours"] = settings.Baseline.TotalHours,
            ["drop_percentage_points"] = settings.DropPercentagePoints,
            ["min_volume"] = settings.MinVolume,
            ["channels"] = channels,
        };
    }

    /// <summary>The rule's rates per channel and platform at <paramref name="now"/>, from the delivery events it needs.</summary>
    private async Task<IReadOnlyList<RateSample>> SamplesAsync(DateTimeOffset now, AlertSettings settings, CancellationToken ct)
    {
        var (from, to) = DeliveryAlerts.Range(now, settings);
        var events = new List<Nudge.Core.Messages.DeliveryEvent>();
        await foreach (var e in reports.EventsAsync(from, to, ct))
        {
            events.Add(e);
        }

        // A channel whose provider never reports delivery (SMTP email, Twilio without status callbacks) has no delivery
        // rate: its "delivered" would be opens and clicks, and a quiet week would look like a delivery outage.
        return [.. DeliveryAlerts.Evaluate(events, now, settings, reports.Rule).Where(s => DeliveryReporting.Reported(send.Channels, s.Channel, s.Platform))];
    }

    private async Task<bool> PostAsync(JsonObject payload, CancellationToken ct)
    {
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(Options.TimeoutSeconds));
            using var r = await Http.PostAsJsonAsync(Options.WebhookUrl, payload, cts.Token);
            if (r.IsSuccessStatusCode)
            {
                return true;
            }

            // The URL carries a secret (Slack's are bearer URLs): log the status only.
            log.LogWarning("alert webhook answered {Status}; the alert is retried on the next check", (int)r.StatusCode);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            log.LogWarning("alert webhook failed ({Error}); the alert is retried on the next check", e.GetType().Name);
        }

        return false;
    }

    private async Task<bool> TryPutAsync(Checkpoint c)
    {
        await using var s = await store.OpenSessionAsync();
        if (!await s.TryPutCheckpointAsync(c))
        {
            return false;
        }

        await s.CommitAsync();
        return true;
    }
}
