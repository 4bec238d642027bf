using Nudge.Core.Journeys;
using Nudge.Core.Messages;

namespace Nudge.Core.Reports;

/// <summary>
/// Which messages reached their person, and so may be credited with a conversion. A message reached its person when it
/// was delivered, opened or clicked; "sent" (the provider accepted it) is not reach, except for push when
/// <see cref="PushSentCountsAsDelivered"/>: APNs and FCM give no delivery receipt, so without the app's SDK reporting
/// "delivered" a push accepted by the provider is the best evidence there is. Apps that report SDK push metrics turn it
/// off, and then only a reported delivery, open or click counts for push too.
/// </summary>
/// <param name="PushSentCountsAsDelivered">Count an accepted push as delivered (default true).</param>
public sealed record AttributionRule(bool PushSentCountsAsDelivered = true)
{
    /// <summary>The default rule: delivered, opened or clicked; an accepted push counts as delivered.</summary>
    public static readonly AttributionRule Default = new();

    /// <summary>True when <paramref name="metric"/> of a message on <paramref name="channel"/> ("push", "sms", "email") means it reached the person.</summary>
    public bool Reaches(string channel, string metric) =>
        metric is MessageStatus.Delivered or MessageStatus.Opened or MessageStatus.Clicked
        || (metric == MessageStatus.Sent && PushSentCountsAsDelivered && channel == "push");

    /// <summary>True when <paramref name="metric"/> of a message on <paramref name="channel"/> means it reached the person.</summary>
    public bool Reaches(Channel channel, string metric) => Reaches(channel.ToString().ToLowerInvariant(), metric);

    /// <summary>
    /// The conversion rule for one message: a goal event at <paramref name="goalAt"/> converts <paramref name="m"/> when
    /// the message reached its person (<see cref="Reaches(Channel, string)"/>, by its status history) at some time t with
    /// t &lt;= goalAt &lt;= t + <paramref name="within"/> (the journey goal's window). Holdout messages never convert
    /// (they were not sent; their people count in the holdout's conversion rate instead), nor do messages converted before.
    /// </summary>
    public bool Converts(Message m, DateTimeOffset goalAt, TimeSpan within) =>
        !m.Holdout && m.Status != MessageStatus.Converted
        && m.History.Any(h => Reaches(m.Channel, h.Status) && h.At <= goalAt && goalAt - h.At <= within);
}
