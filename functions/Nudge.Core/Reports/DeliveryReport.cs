using Nudge.Core.Messages;
using Nudge.Core.Storage;

namespace Nudge.Core.Reports;

/// <summary>
/// Delivery figures of one group of messages over a report's range. <see cref="Counts"/> holds, per metric, the delivery
/// events in the range (each metric happens at most once per message, attempts excepted, so these are messages).
/// <see cref="Sent"/> is every message handed to a provider in the range, accepted (metric sent) or refused (bounced,
/// dropped, failed), so a collapse in delivery lowers the rate instead of shrinking its denominator. <see cref="Delivered"/>
/// is the messages that reached their person (<see cref="AttributionRule.Reaches(string, string)"/>).
/// </summary>
public sealed record DeliveryFigures(
    string? JourneyId,
    string? StepId,
    string? Channel,
    string? Platform,
    IReadOnlyDictionary<string, long> Counts,
    long Sent,
    long Delivered,
    long Opened,
    long Converted,
    double? DeliveryRate,
    double? OpenRate,
    double? ConversionRate)
{
    /// <summary>
    /// Whether delivered is reported for this channel and platform by the provider in use; null when not said (figures
    /// across channels). When false, <see cref="DeliveryRate"/> is null: an unknown is not 0 %.
    /// </summary>
    public bool? DeliveryReported { get; init; }
}

/// <summary>How many non-deliveries of one metric and reason a channel and platform had.</summary>
public sealed record FailureCount(string Metric, string Reason, string Channel, string? Platform, long Count);

/// <summary>
/// A journey's holdout lift over the instances that started in the range: conversion rate of the people messaged
/// (every non-holdout entry, reached or not: the holdout has the same share of people who could not be reached) minus
/// the holdout's; <see cref="RelativeLift"/> divides that by the holdout's rate.
/// </summary>
public sealed record JourneyLift(
    string JourneyId,
    long MessagedEntries,
    long MessagedConverted,
    double? MessagedRate,
    long HoldoutEntries,
    long HoldoutConverted,
    double? HoldoutRate,
    double? LiftPoints,
    double? RelativeLift);

/// <summary>
/// How the messaged (non-holdout) instances that started in the range moved through one step: how many entered it, how
/// many are there now (open instances waiting or running at it), and how many left the journey there early (an exit
/// condition, a goal that ends the journey, a removed journey). Entered minus exited minus still there went on.
/// </summary>
public sealed record StepFlow(string JourneyId, string StepId, long Entered, long Current, long Exited);

/// <summary>One UTC day's delivery figures of one channel and platform (the day is its midnight).</summary>
public sealed record DayFigures(DateTimeOffset Day, DeliveryFigures Figures);

/// <summary>The delivery-health report for [<see cref="From"/>, <see cref="To"/>).</summary>
public sealed record DeliveryReport(
    DateTimeOffset From,
    DateTimeOffset To,
    long Events,
    DeliveryFigures Totals,
    IReadOnlyList<DeliveryFigures> ByChannel,
    IReadOnlyList<DeliveryFigures> ByJourney,
    IReadOnlyList<DeliveryFigures> Rows,
    IReadOnlyList<FailureCount> Failures,
    IReadOnlyList<JourneyLift> Lift,
    IReadOnlyList<StepFlow> Steps)
{
    /// <summary>Per UTC day, channel and platform, by event time; only when the builder was asked for days.</summary>
    public IReadOnlyList<DayFigures>? Days { get; init; }

    /// <summary>False when the range starts before <see cref="PurgedBefore"/>: retention deleted part of what it covers.</summary>
    public bool Complete { get; init; } = true;

    /// <summary>Retention's horizon, when the range reaches before it: delivery events before this time are gone.</summary>
    public DateTimeOffset? PurgedBefore { get; init; }
}

/// <summary>
/// Builds a <see cref="DeliveryReport"/> from delivery events (fed a page at a time, any order) and instance outcomes.
/// Pure: no clock, no I/O; memory grows with the distinct messages in the range (a few hundred bytes each).
/// </summary>
/// <param name="from">Start of the range.</param>
/// <param name="to">End of the range (exclusive).</param>
/// <param name="rule">Which metrics count as reach.</param>
/// <param name="byDay">Also figures per UTC day, channel and platform (<see cref="DeliveryReport.Days"/>): a chart's series in the same pass.</param>
public sealed class DeliveryReportBuilder(DateTimeOffset from, DateTimeOffset to, AttributionRule? rule = null, bool byDay = false)
{
    private readonly Dictionary<(DateTime Day, string Channel, string Platform), Group> _days = [];
    private readonly AttributionRule _rule = rule ?? AttributionRule.Default;
    private readonly Dictionary<(string Journey, string Step, string Channel, string Platform), Group> _rows = [];
    private readonly Dictionary<(string Metric, string Reason, string Channel, string Platform), long> _failures = [];
    private readonly List<InstanceOutcome> _outcomes = [];
    private long _events;

    /// <summary>Adds one event; events outside the range are ignored, so a caller may feed whole pages.</summary>
    public void Add(DeliveryEvent e)
    {
        if (e.At < from || e.At >= to)
        {
            return;
        }

        _events++;
        var key = (e.JourneyId, e.StepId, e.Channel, e.Platform ?? "");
        if (!_rows.TryGetValue(key, out var g))
        {
            _rows[key] = g = new Group();
        }

        g.Add(e, _rule);
        if (byDay)
        {
            Of(_days, (e.At.UtcDateTime.Date, e.Channel, e.Platform ?? "")).Add(e, _rule);
        }

        if (StatusTransitions.IsNonDelivery(e.Metric))
        {
            var f = (e.Metric, Reason(e.Reason), e.Channel, e.Platform ?? "");
            _failures[f] = _failures.GetValueOrDefault(f) + 1;
        }
    }

    /// <summary>Adds instance outcomes for holdout lift; instances that never started or started outside the range are ignored.</summary>
    public void Add(IEnumerable<InstanceOutcome> outcomes) =>
        _outcomes.AddRange(outcomes.Where(o => o.Started && o.StartedAt >= from && o.StartedAt < to));

    public DeliveryReport Build()
    {
        var total = new Group();
        var byChannel = new Dictionary<(string, string), Group>();
        var byJourney = new Dictionary<string, Group>(StringComparer.Ordinal);
        foreach (var ((journey, _, channel, platform), g) in _rows)
        {
            total.Merge(g);
            Of(byChannel, (channel, platform)).Merge(g);
            Of(byJourney, journey).Merge(g);
        }

        return new DeliveryReport(from, to, _events,
            total.Figures(null, null, null, null),
            [.. byChannel.OrderBy(kv => kv.Key.Item1, StringComparer.Ordinal).ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal)
                .Select(kv => kv.Value.Figures(null, null, kv.Key.Item1, Platform(kv.Key.Item2)))],
            [.. byJourney.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value.Figures(kv.Key, null, null, null))],
            [.. _rows.OrderBy(kv => kv.Key.Journey, StringComparer.Ordinal).ThenBy(kv => kv.Key.Step, StringComparer.Ordinal)
                .ThenBy(kv => kv.Key.Channel, StringComparer.Ordinal).ThenBy(kv => kv.Key.Platform, StringComparer.Ordinal)
                .Select(kv => kv.Value.Figures(kv.Key.Journey, kv.Key.Step, kv.Key.Channel, Platform(kv.Key.Platform)))],
            [.. _failures.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Metric, StringComparer.Ordinal).ThenBy(kv => kv.Key.Reason, StringComparer.Ordinal)
                .ThenBy(kv => kv.Key.Channel, StringComparer.Ordinal).ThenBy(kv => kv.Key.Platform, StringComparer.Ordinal)
                .Select(kv => new FailureCount(kv.Key.Metric, kv.Key.Reason, kv.Key.Channel, Platform(kv.Key.Platform), kv.Value))],
            Lift(_outcomes),
            Flow(_outcomes))
        {
            Days = byDay
                ? [.. _days.OrderBy(kv => kv.Key.Day).ThenBy(kv => kv.Key.Channel, StringComparer.Ordinal).ThenBy(kv => kv.Key.Platform, StringComparer.Ordinal)
                    .Select(kv => new DayFigures(new DateTimeOffset(kv.Key.Day, TimeSpan.Zero), kv.Value.Figures(null, null, kv.Key.Channel, Platform(kv.Key.Platform))))]
                : null,
        };
    }

    /// <summary>
    /// Per journey and step, the messaged instances of <paramref name="outcomes"/> (already restricted to the range) that
    /// entered it, are at it now, and left the journey at it; by journey id, then step id (callers order steps as their
    /// journey does).
    /// </summary>
    public static IReadOnlyList<StepFlow> Flow(IEnumerable<InstanceOutcome> outcomes)
    {
        var flows = new Dictionary<(string Journey, string Step), (long Entered, long Current, long Exited)>();
        foreach (var o in outcomes.Where(o => !o.Holdout).DistinctBy(o => o.InstanceId))
        {
            foreach (var step in o.Steps)
            {
                var f = flows.GetValueOrDefault((o.JourneyId, step));
                flows[(o.JourneyId, step)] = f with { Entered = f.Entered + 1 };
            }

            if (o.CurrentStep is { } at)
            {
                var f = flows.GetValueOrDefault((o.JourneyId, at));
                flows[(o.JourneyId, at)] = o.Ended ? f with { Exited = f.Exited + 1 } : f with { Current = f.Current + 1 };
            }
        }

        return [.. flows.OrderBy(kv => kv.Key.Journey, StringComparer.Ordinal).ThenBy(kv => kv.Key.Step, StringComparer.Ordinal)
            .Select(kv => new StepFlow(kv.Key.Journey, kv.Key.Step, kv.Value.Entered, kv.Value.Current, kv.Value.Exited))];
    }

    /// <summary>Holdout lift per journey over <paramref name="outcomes"/> (already restricted to the range), by journey id.</summary>
    public static IReadOnlyList<JourneyLift> Lift(IEnumerable<InstanceOutcome> outcomes) =>
        [.. outcomes.GroupBy(o => o.JourneyId, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g =>
        {
            // One entry per instance id, should a store hand the same instance back twice.
            var distinct = g.DistinctBy(o => o.InstanceId).ToList();
            long mt = distinct.Count(o => !o.Holdout), mc = distinct.Count(o => !o.Holdout && o.ConvertedAt is not null);
            long ht = distinct.Count(o => o.Holdout), hc = distinct.Count(o => o.Holdout && o.ConvertedAt is not null);
            var m = Ratio(mc, mt);
            var h = Ratio(hc, ht);
            return new JourneyLift(g.Key, mt, mc, m, ht, hc, h, m is { } a && h is { } b ? Round(a - b) : null,
                m is { } x && h is { } y && y > 0 ? Round((x - y) / y) : null);
        })];

    /// <summary>A share rounded to 4 decimals (0.1234 = 12.34 %), or null when there is nothing to divide by.</summary>
    public static double? Ratio(long part, long whole) => whole == 0 ? null : Round((double)part / whole);

    private static double Round(double v) => Math.Round(v, 4, MidpointRounding.AwayFromZero);

    private static string Reason(string? reason) => string.IsNullOrEmpty(reason) ? "unknown" : reason;

    private static string? Platform(string p) => p.Length == 0 ? null : p;

    private static Group Of<TKey>(Dictionary<TKey, Group> d, TKey key) where TKey : notnull
    {
        if (!d.TryGetValue(key, out var g))
        {
            d[key] = g = new Group();
        }

        return g;
    }

    /// <summary>Counts of one group; message ids are kept as sets so a merged total counts each message once.</summary>
    private sealed class Group
    {
        private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
        private readonly HashSet<string> _sent = new(StringComparer.Ordinal);
        private readonly HashSet<string> _delivered = new(StringComparer.Ordinal);
        private readonly HashSet<string> _opened = new(StringComparer.Ordinal);
        private readonly HashSet<string> _converted = new(StringComparer.Ordinal);

        public void Add(DeliveryEvent e, AttributionRule rule)
        {
            _counts[e.Metric] = _counts.GetValueOrDefault(e.Metric) + 1;
            if (e.Metric == MessageStatus.Sent || e.Metric is MessageStatus.Bounced or MessageStatus.Dropped or MessageStatus.Failed)
            {
                _sent.Add(e.MessageId);
            }

            if (rule.Reaches(e.Channel, e.Metric))
            {
                _delivered.Add(e.MessageId);
            }

            if (e.Metric is MessageStatus.Opened or MessageStatus.Clicked)
            {
                _opened.Add(e.MessageId);
            }

            if (e.Metric == MessageStatus.Converted)
            {
                _converted.Add(e.MessageId);
            }
        }

        public void Merge(Group g)
        {
            foreach (var (k, v) in g._counts)
            {
                _counts[k] = _counts.GetValueOrDefault(k) + v;
            }

            _sent.UnionWith(g._sent);
            _delivered.UnionWith(g._delivered);
            _opened.UnionWith(g._opened);
            _converted.UnionWith(g._converted);
        }

        public DeliveryFigures Figures(string? journey, string? step, string? channel, string? platform) => new(
            journey, step, channel, platform,
            new SortedDictionary<string, long>(_counts, StringComparer.Ordinal),
            _sent.Count, _delivered.Count, _opened.Count, _converted.Count,
            Ratio(_delivered.Count, _sent.Count), Ratio(_opened.Count, _delivered.Count), Ratio(_converted.Count, _delivered.Count));
    }
}
