using Nudge.Core.Messages;
using Nudge.Core.Reports;
using Nudge.Core.Storage;

namespace Nudge.Pipeline;

/// <summary>
/// Reads what the reports need from the store (the delivery-event log a page at a time, instance outcomes, active
/// people) and hands it to the pure builders in <see cref="Nudge.Core.Reports"/>.
/// </summary>
/// <param name="store">The store.</param>
/// <param name="rule">Which metrics count as reach.</param>
public sealed class DeliveryReports(IStore store, AttributionRule rule)
{
    /// <summary>Delivery events per store read: 5000 (large pages keep a 100,000-message report to a few dozen reads).</summary>
    public const int PageSize = 5000;

    public AttributionRule Rule => rule;

    /// <summary>The delivery-health report over [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public async Task<DeliveryReport> BuildAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken ct = default) =>
        await BuildAsync(from, to, byDay: false, ct);

    /// <summary>The report over [<paramref name="from"/>, <paramref name="to"/>), with per-day figures when <paramref name="byDay"/>.</summary>
    public async Task<DeliveryReport> BuildAsync(DateTimeOffset from, DateTimeOffset to, bool byDay, CancellationToken ct = default)
    {
        var builder = new DeliveryReportBuilder(from, to, rule, byDay);
        await foreach (var e in EventsAsync(from, to, ct))
        {
            builder.Add(e);
        }

        builder.Add(await store.GetInstanceOutcomesAsync(from, to, ct));
        return builder.Build();
    }

    /// <summary>Token coverage of people active at or after <paramref name="since"/>.</summary>
    public async Task<TokenCoverage> CoverageAsync(DateTimeOffset since, CancellationToken ct = default) =>
        Segments.Coverage(await store.GetActivePeopleAsync(since, ct), since);

    /// <summary>
    /// Every member of <paramref name="segment"/>, by key: people active since <paramref name="activeSince"/> for the
    /// token segments, or people in the delivery events of [<paramref name="from"/>, <paramref name="to"/>) (on
    /// <paramref name="channel"/> when given) for the others.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="segment"/> is not one of <see cref="Segments.All"/>.</exception>
    public async Task<IReadOnlyList<string>> MembersAsync(string segment, DateTimeOffset from, DateTimeOffset to, DateTimeOffset activeSince, string? channel,
        CancellationToken ct = default)
    {
        if (Segments.FromActivity(segment))
        {
            return Segments.FromPeople(segment, await store.GetActivePeopleAsync(activeSince, ct));
        }

        var events = new List<DeliveryEvent>();
        await foreach (var e in EventsAsync(from, to, ct))
        {
            events.Add(e);
        }

        return Segments.FromEvents(segment, events, channel, rule);
    }

    /// <summary>Every delivery event in the range, by event time, read a page at a time.</summary>
    public async IAsyncEnumerable<DeliveryEvent> EventsAsync(DateTimeOffset from, DateTimeOffset to, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        DeliveryEventCursor? after = null;
        while (true)
        {
            var page = await store.GetDeliveryEventsAsync(new DeliveryEventQuery(from, to, PageSize, After: after), ct);
            foreach (var e in page)
            {
                yield return e;
            }

            if (page.Count < PageSize)
            {
                yield break;
            }

            after = new DeliveryEventCursor(page[^1].At, page[^1].Id);
        }
    }
}
