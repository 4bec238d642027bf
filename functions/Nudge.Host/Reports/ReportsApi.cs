using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Reports;
using Nudge.Core.Storage;
using Nudge.Host.Admin;
using Nudge.Host.Hosting;
using Nudge.Host.Workers;
using Nudge.Pipeline;

namespace Nudge.Host.Reports;

/// <summary>
/// Delivery-health reports at /admin/v1/reports (Bearer admin key): the report over a time range, token coverage, and
/// the people segments. Thin: <see cref="DeliveryReports"/> reads, <see cref="Nudge.Core.Reports"/> computes.
/// </summary>
public static class ReportsApi
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static IEndpointRouteBuilder MapReportsAdmin(this IEndpointRouteBuilder app)
    {
        var g = app.MapAdminGroup();

        g.MapGet("/reports/delivery", async (DeliveryReports reports, RetentionPurger retention, SendStage sends, TimeProvider time, string? from, string? to, string? by,
            CancellationToken ct) =>
        {
            if (by is not (null or "day"))
            {
                return Bad("by: must be day (figures per UTC day, channel and platform) or absent");
            }

            if (Range(time, from, to) is not ({ } f, { } t, null))
            {
                return Bad(Range(time, from, to).Error!);
            }

            var report = DeliveryReporting.Mark(await reports.BuildAsync(f, t, byDay: by == "day", ct), sends.Channels);
            var horizon = retention.MessagesHorizon();
            return Results.Json(f < horizon ? report with { Complete = false, PurgedBefore = horizon } : report, Json);
        });

        g.MapGet("/reports/token-coverage", async (DeliveryReports reports, TimeProvider time, IOptions<NudgeOptions> o, int? days, CancellationToken ct) =>
        {
            if (days is < 1 or > 3650)
            {
                return Bad("days: must be between 1 and 3650");
            }

            var since = time.GetUtcNow() - TimeSpan.FromDays(days ?? o.Value.Reports.ActiveDays);
            return Results.Json(await reports.CoverageAsync(since, ct), Json);
        });

        g.MapGet("/reports/message-log", MessageLogAsync);

        // The delivery-rate alert rule as it stands (rates, whether it fires, each alert's state); posts nothing.
        g.MapGet("/reports/alerts", async (DeliveryAlerter alerter, CancellationToken ct) => Results.Json(await alerter.StatusAsync(ct)));

        g.MapGet("/reports/segments", () => Results.Json(new { segments = Segments.All }));

        g.MapGet("/reports/segments/{name}", async (DeliveryReports reports, IStore store, TimeProvider time, IOptions<NudgeOptions> o, string name,
            string? from, string? to, int? days, string? channel, int? limit, string? after, CancellationToken ct) =>
        {
            if (!Segments.All.Contains(name))
            {
                return Results.Json(new { error = $"no segment '{name}'; segments: {string.Join(", ", Segments.All)}" }, statusCode: 404);
            }

            if (limit is < 1 or > 1000 || days is < 1 or > 3650 || channel is not (null or "push" or "sms" or "email"))
            {
                return Bad("limit: 1 to 1000; days: 1 to 3650; channel: push, sms or email");
            }

            var (f, t, error) = Range(time, from, to);
            if (error is not null)
            {
                return Bad(error);
            }

            var since = time.GetUtcNow() - TimeSpan.FromDays(days ?? o.Value.Reports.ActiveDays);
            var members = await reports.MembersAsync(name, f!.Value, t!.Value, since, channel, ct);
            var page = Segments.Page(members, after, limit ?? 100);
            var people = new List<object>();
            foreach (var key in page)
            {
                var p = await store.GetProfileAsync(key, ct);
                people.Add(new { cio_id = Identifier.CioPrefix + key, id = p?.Id, email = p?.Email });
            }

            return Results.Json(new
            {
                segment = name,
                from = Segments.FromActivity(name) ? (DateTimeOffset?)null : f,
                to = Segments.FromActivity(name) ? (DateTimeOffset?)null : t,
                active_since = Segments.FromActivity(name) ? since : (DateTimeOffset?)null,
                channel,
                total = members.Count,
                people,
                next = page.Count == (limit ?? 100) && page.Count > 0 && page[^1] != members[^1] ? page[^1] : null,
            }, Json);
        });
        return app;
    }

    /// <summary>
    /// The message log: delivery events (one per message and status reached) in [from, to), oldest first, filtered by
    /// journey, step, channel, platform, status (metric) and reason, a page at a time. It reads the same event log as
    /// the reports, in store pages of <see cref="DeliveryReports.PageSize"/>, and stops as soon as the page is full, so
    /// a page costs at most one pass over the range (a few dozen reads for 100,000 messages) and usually far less.
    /// <c>next</c> is an opaque cursor for <c>?after=</c>: the time and id of the last event returned.
    /// </summary>
    private static async Task<IResult> MessageLogAsync(IStore store, RetentionPurger retention, TimeProvider time, string? from, string? to, string? journey, string? step,
        string? channel, string? platform, string? status, string? reason, int? limit, string? after, CancellationToken ct)
    {
        if (limit is < 1 or > 500)
        {
            return Bad("limit: must be between 1 and 500");
        }

        var (f, t, error) = Range(time, from, to);
        if (error is not null)
        {
            return Bad(error);
        }

        DeliveryEventCursor? cursor = null;
        if (after is not null && (cursor = Cursor(after)) is null)
        {
            return Bad("after: not a cursor from this endpoint's next");
        }

        var size = limit ?? 50;
        var rows = new List<DeliveryEvent>(size);
        while (rows.Count < size)
        {
            var page = await store.GetDeliveryEventsAsync(new DeliveryEventQuery(f!.Value, t!.Value, DeliveryReports.PageSize, After: cursor), ct);
            foreach (var e in page)
            {
                cursor = new DeliveryEventCursor(e.At, e.Id);
                if (Matches(e.JourneyId, journey) && Matches(e.StepId, step) && Matches(e.Channel, channel) && Matches(e.Platform, platform)
                    && Matches(e.Metric, status) && Matches(e.Reason, reason) && rows.Count < size)
                {
                    rows.Add(e);
                }
            }

            if (page.Count < DeliveryReports.PageSize)
            {
                break;
            }
        }

        // The cursor is the last event returned, not the last one read: the next page re-reads what this one skipped.
        var next = rows.Count == size ? Cursor(new DeliveryEventCursor(rows[^1].At, rows[^1].Id)) : null;
        var horizon = retention.MessagesHorizon();
        return Results.Json(new
        {
            from = f,
            to = t,
            complete = f >= horizon,
            purged_before = f < horizon ? horizon : (DateTimeOffset?)null,
            events = rows.Select(e => new
            {
                id = e.Id,
                message_id = e.MessageId,
                cio_id = e.ProfileKey == Erasure.ErasedKey ? null : Identifier.CioPrefix + e.ProfileKey,
                status = e.Metric,
                at = e.At,
                channel = e.Channel,
                platform = e.Platform,
                journey_id = e.JourneyId,
                step_id = e.StepId,
                reason = e.Reason,
                holdout = e.Holdout,
            }),
            next,
        }, Json);
    }

    /// <summary>An absent filter matches everything; a given one matches exactly (ordinal, as the values are stored).</summary>
    private static bool Matches(string? value, string? filter) => string.IsNullOrEmpty(filter) || string.Equals(value, filter, StringComparison.Ordinal);

    private static string Cursor(DeliveryEventCursor c) => AdminQuery.Cursor(c.Time, c.Id);

    private static DeliveryEventCursor? Cursor(string s) => AdminQuery.Cursor(s) is var (time, id) ? new DeliveryEventCursor(time, id) : null;

    private static (DateTimeOffset? From, DateTimeOffset? To, string? Error) Range(TimeProvider time, string? from, string? to) => AdminQuery.Range(time, from, to);

    private static IResult Bad(string error) => AdminQuery.Bad(error);
}
