using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Nudge.Core.Profiles;
using Nudge.Core.Reports;
using Nudge.Core.Storage;
using Nudge.Host.Admin;
using Nudge.Host.Hosting;
using Nudge.Pipeline;

namespace Nudge.Host.Reports;

/// <summary>
/// Delivery-health reports at /admin/v1/reports (Bearer admin key): the report over a time range, token coverage, and
/// the people segments. Thin: <see cref="DeliveryReports"/> reads, <see cref="Nudge.Core.Reports"/> computes.
/// </summary>
public static class ReportsApi
{
    /// <summary>Range used when ?from= is not given: the 7 days before ?to= (default now).</summary>
    private static readonly TimeSpan DefaultRange = TimeSpan.FromDays(7);

    /// <summary>Longest range one report covers: 400 days.</summary>
    private static readonly TimeSpan MaxRange = TimeSpan.FromDays(400);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static IEndpointRouteBuilder MapReportsAdmin(this IEndpointRouteBuilder app)
    {
        var g = app.MapAdminGroup();

        g.MapGet("/reports/delivery", async (DeliveryReports reports, TimeProvider time, string? from, string? to, CancellationToken ct) =>
            Range(time, from, to) is ({ } f, { } t, null)
                ? Results.Json(await reports.BuildAsync(f, t, ct), Json)
                : Bad(Range(time, from, to).Error!));

        g.MapGet("/reports/token-coverage", async (DeliveryReports reports, TimeProvider time, IOptions<NudgeOptions> o, int? days, CancellationToken ct) =>
        {
            if (days is < 1 or > 3650)
            {
                return Bad("days: must be between 1 and 3650");
            }

            var since = time.GetUtcNow() - TimeSpan.FromDays(days ?? o.Value.Reports.ActiveDays);
            return Results.Json(await reports.CoverageAsync(since, ct), Json);
        });

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

    /// <summary>[from, to) from ISO-8601 times or Unix seconds; to defaults to now, from to 7 days before to.</summary>
    private static (DateTimeOffset? From, DateTimeOffset? To, string? Error) Range(TimeProvider time, string? from, string? to)
    {
        var t = to is null ? time.GetUtcNow() : Parse(to);
        var f = from is null ? t - DefaultRange : Parse(from);
        return (f, t) switch
        {
            (_, null) => (null, null, "to: not a time (ISO-8601 or Unix seconds)"),
            (null, _) => (null, null, "from: not a time (ISO-8601 or Unix seconds)"),
            ({ } a, { } b) when a >= b => (null, null, "from: must be before to"),
            ({ } a, { } b) when b - a > MaxRange => (null, null, "to: at most 400 days after from"),
            _ => (f, t, null),
        };
    }

    private static DateTimeOffset? Parse(string s) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var secs) && secs < 100_000_000_000
            ? DateTimeOffset.FromUnixTimeSeconds(secs)
            : DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var v) ? v : null;

    private static IResult Bad(string error) => Results.Json(new { error }, statusCode: 400);
}
