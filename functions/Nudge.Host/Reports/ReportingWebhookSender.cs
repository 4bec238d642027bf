using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Options;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Reports;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;

namespace Nudge.Host.Reports;

/// <summary>
/// Posts every delivery event to the reporting webhook, one event per request, in the order Nudge recorded them
/// (RecordedAt, then id), at least once. The position is a store checkpoint ("reporting-webhooks"), advanced only past
/// events the receiver accepted (2xx), so a restart, a crash or another instance resumes where delivery stopped; a
/// crash between a post and the checkpoint write sends that event again (receivers deduplicate on event_id). Any other
/// answer, or no answer within the timeout, stops the pass and retries the same event after a backoff (1 s doubling,
/// up to Nudge:ReportingWebhooks:MaxBackoff) that is kept in the checkpoint too. It runs beside the pipeline, never in it.
/// </summary>
public sealed class ReportingWebhookSender(IStore store, TimeProvider time, IOptions<NudgeOptions> options, ILogger<ReportingWebhookSender> log)
{
    public const string CheckpointName = "reporting-webhooks";

    private static readonly HttpClient Http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) });

    private ReportingWebhookOptions Options => options.Value.ReportingWebhooks;

    /// <summary>
    /// One pass: posts the events recorded since the checkpoint, up to a batch, until <paramref name="budget"/> runs out
    /// or the receiver fails. Returns how many events it delivered.
    /// </summary>
    public async Task<int> RunOnceAsync(TimeSpan budget, CancellationToken ct)
    {
        if (!Options.Enabled)
        {
            return 0;
        }

        var started = time.GetUtcNow();
        var stored = await store.GetCheckpointAsync(CheckpointName, ct);
        var cursor = ReportingWebhook.Cursor.Parse(stored?.Value);
        var version = stored?.Version ?? 0;
        if (cursor.RetryAt is { } retryAt && retryAt > started)
        {
            return 0;
        }

        // Events recorded in the last few seconds wait: one stamped earlier may still be committing.
        var until = started - TimeSpan.FromSeconds(Options.SettleSeconds);
        var page = await store.GetDeliveryEventsAsync(new DeliveryEventQuery(cursor.RecordedAt, until, Options.BatchSize, ByRecordedAt: true,
            After: new DeliveryEventCursor(cursor.RecordedAt, cursor.Id)), ct);
        var secret = Encoding.UTF8.GetBytes(Options.Secret!);
        var people = new Dictionary<string, Profile?>(StringComparer.Ordinal);
        var delivered = 0;
        var failed = false;
        foreach (var e in page)
        {
            if (time.GetUtcNow() - started > budget || ct.IsCancellationRequested)
            {
                break;
            }

            if (!people.TryGetValue(e.ProfileKey, out var person))
            {
                people[e.ProfileKey] = person = await store.GetProfileAsync(e.ProfileKey, ct);
            }

            if (!await PostAsync(e, person, secret, ct))
            {
                failed = true;
                break;
            }

            cursor = new ReportingWebhook.Cursor(e.RecordedAt, e.Id);
            delivered++;
        }

        if (failed)
        {
            var failures = (delivered == 0 ? ReportingWebhook.Cursor.Parse(stored?.Value).Failures : 0) + 1;
            var wait = ReportingWebhook.Backoff(failures, Options.MaxBackoffTime(), Random.Shared.NextDouble());
            cursor = cursor with { Failures = failures, RetryAt = time.GetUtcNow() + wait };
            log.LogWarning("reporting webhook failed (attempt {Failures}); retrying in {Wait}", failures, wait);
        }

        if (delivered > 0 || failed)
        {
            await using var s = await store.OpenSessionAsync(ct);
            if (await s.TryPutCheckpointAsync(new Checkpoint(CheckpointName, cursor.Serialize(), version)))
            {
                await s.CommitAsync();
            }
            else
            {
                // Another process advanced it meanwhile: its position wins; what this pass sent again is harmless.
                log.LogInformation("reporting-webhook checkpoint moved by another process; keeping its position");
            }
        }

        return delivered;
    }

    private async Task<bool> PostAsync(DeliveryEvent e, Profile? person, byte[] secret, CancellationToken ct)
    {
        var body = ReportingWebhook.Body(e, person);
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, Options.Url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add(ReportingWebhook.TimestampHeader, timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(ReportingWebhook.SignatureHeader, ReportingWebhook.Sign(secret, timestamp, body));
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(Options.TimeoutSeconds));
            using var r = await Http.SendAsync(request, cts.Token);
            if (r.IsSuccessStatusCode)
            {
                return true;
            }

            log.LogWarning("reporting webhook answered {Status} for event {EventId}", (int)r.StatusCode, e.Id);
        }
        catch (Exception x) when (x is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            log.LogWarning("reporting webhook failed for event {EventId} ({Error})", e.Id, x.GetType().Name);
        }

        return false;
    }
}
