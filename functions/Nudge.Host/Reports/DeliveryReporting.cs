using Nudge.Core.Reports;
using Nudge.Delivery;

namespace Nudge.Host.Reports;

/// <summary>
/// Whether "delivered" reaches Nudge for a channel and platform, from the providers in use
/// (<see cref="IPushProvider.ReportsDelivery"/> and its kin), and the report's per-channel figures marked with it.
/// </summary>
public static class DeliveryReporting
{
    /// <summary>Whether delivered is reported for <paramref name="channel"/> (push, sms, email) on <paramref name="platform"/>.</summary>
    /// <param name="channels">The providers in use.</param>
    /// <param name="channel">push, sms or email.</param>
    /// <param name="platform">ios or android for push.</param>
    public static bool Reported(ChannelSet channels, string? channel, string? platform) => channel switch
    {
        // APNs and FCM give no receipt, yet push always has a delivered figure: the app's SDK reports it, or an accepted
        // push counts as delivered (Nudge:Reports:PushSentCountsAsDelivered, true unless the apps report).
        "push" => true,
        "sms" => channels.Sms.ReportsDelivery,
        "email" => channels.Email.ReportsDelivery,
        _ => true,
    };

    /// <summary>
    /// <paramref name="report"/> with its per-channel figures (by channel, rows, days) marked
    /// <see cref="DeliveryFigures.DeliveryReported"/>, and no delivery rate where delivered is not reported.
    /// </summary>
    public static DeliveryReport Mark(DeliveryReport report, ChannelSet channels)
    {
        DeliveryFigures Figures(DeliveryFigures f) => Reported(channels, f.Channel, f.Platform)
            ? f with { DeliveryReported = true }
            : f with { DeliveryReported = false, DeliveryRate = null };

        return report with
        {
            ByChannel = [.. report.ByChannel.Select(Figures)],
            Rows = [.. report.Rows.Select(Figures)],
            Days = report.Days is { } days ? [.. days.Select(d => d with { Figures = Figures(d.Figures) })] : null,
        };
    }
}
