using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Nudge.Delivery;

/// <summary>
/// Traces and metrics of provider calls on the BCL types (no OpenTelemetry dependency): the ActivitySource and Meter
/// named <see cref="Name"/>. Each call is a client span "provider.send" and one <c>nudge.provider.duration</c> measurement,
/// tagged with provider, channel and outcome; never with a recipient, token or message content.
/// With nothing listening, <see cref="Start"/> is two flag checks: no clock read, no allocation.
/// </summary>
public static class DeliveryTelemetry
{
    /// <summary>The ActivitySource and Meter name.</summary>
    public const string Name = "Nudge.Delivery";

    /// <summary>The span name of one provider call.</summary>
    public const string ProviderSpan = "provider.send";

    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Seconds one provider call took, by nudge.provider, nudge.channel and nudge.outcome.</summary>
    public static readonly Histogram<double> ProviderDuration = Meter.CreateHistogram(
        "nudge.provider.duration", "s", "Duration of provider calls (one per recipient)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] });

    /// <summary>A provider call being measured; default when nothing listens.</summary>
    public readonly struct Call
    {
        internal Call(Activity? activity, long started) => (Activity, Started) = (activity, started);

        internal Activity? Activity { get; }

        internal long Started { get; }
    }

    /// <summary>Starts measuring a call to <paramref name="provider"/> for <paramref name="channel"/> ("push", "sms", "email").</summary>
    public static Call Start(string provider, string channel, string messageId)
    {
        if (!ProviderDuration.Enabled && !Source.HasListeners())
        {
            return default;
        }

        var a = Source.StartActivity(ProviderSpan, ActivityKind.Client);
        if (a is { IsAllDataRequested: true })
        {
            a.SetTag("nudge.provider", provider);
            a.SetTag("nudge.channel", channel);
            a.SetTag("nudge.message.id", messageId);
        }

        return new Call(a, Stopwatch.GetTimestamp());
    }

    /// <summary>Ends <paramref name="call"/> with what the provider answered.</summary>
    public static void Stop(in Call call, string provider, string channel, SendOutcome outcome)
    {
        if (call.Started == 0)
        {
            return;
        }

        var kind = OutcomeName(outcome.Kind);
        if (ProviderDuration.Enabled)
        {
            ProviderDuration.Record(Stopwatch.GetElapsedTime(call.Started).TotalSeconds,
                new("nudge.provider", provider), new("nudge.channel", channel), new("nudge.outcome", kind));
        }

        if (call.Activity is { } a)
        {
            if (a.IsAllDataRequested)
            {
                a.SetTag("nudge.outcome", kind);
                a.SetTag("nudge.reason", outcome.Reason);
                if (outcome.Kind is OutcomeKind.Transient or OutcomeKind.Permanent)
                {
                    a.SetStatus(ActivityStatusCode.Error, outcome.Reason);
                }
            }

            a.Dispose();
        }
    }

    /// <summary>The outcome as a metric attribute value: sent, invalid_token, rate_limited, transient, permanent.</summary>
    public static string OutcomeName(OutcomeKind kind) => kind switch
    {
        OutcomeKind.Sent => "sent",
        OutcomeKind.InvalidToken => "invalid_token",
        OutcomeKind.RateLimited => "rate_limited",
        OutcomeKind.Transient => "transient",
        _ => "permanent",
    };
}
