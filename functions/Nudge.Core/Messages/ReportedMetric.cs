namespace Nudge.Core.Messages;

/// <summary>
/// Metrics reported for a message that are not statuses (Customer.io's email metrics): they are kept as delivery
/// events, and never move <see cref="Message.Status"/> (<see cref="StatusTransitions.Rank"/> does not know them).
/// </summary>
public static class ReportedMetric
{
    /// <summary>The person unsubscribed through this message (one-click link, SendGrid unsubscribe).</summary>
    public const string Unsubscribed = "unsubscribed";

    /// <summary>The person marked this message as spam (SendGrid spamreport).</summary>
    public const string Spammed = "spammed";

    /// <summary>True for a metric that is a delivery event only.</summary>
    public static bool IsEventOnly(string metric) => metric is Unsubscribed or Spammed;
}
