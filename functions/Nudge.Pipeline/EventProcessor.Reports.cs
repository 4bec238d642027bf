using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Pipeline;

// Reports about messages (provider webhooks, email pixel and links, app SDKs) and inbound SMS keywords. Both are
// idempotent: the op id is the reporter's key (processed once), and the status model ignores a metric seen before.
public sealed partial class EventProcessor
{
    /// <summary>
    /// Records a metric for a message through <see cref="StatusTransitions.Apply"/> (event-only metrics such as unsubscribed
    /// as a delivery event alone), and applies the consent change that came with it to the message's person.
    /// </summary>
    /// <exception cref="MessageBusyException">The send stage still owns the message: the op is retried later.</exception>
    private static async Task ApplyReportAsync(IStoreSession s, IngestOp op, DateTimeOffset now)
    {
        var r = op.Report!;
        var m = r.MessageId.Length == 0 ? null : await s.GetMessageAsync(r.MessageId);
        var personKey = m?.ProfileKey;
        if (m is not null)
        {
            DeliveryEvent? e;
            if (ReportedMetric.IsEventOnly(r.Metric))
            {
                e = DeliveryEvent.For(m, r.Metric, op.Timestamp, r.Reason, r.Recipient, r.ProviderId);
            }
            else
            {
                if (m.Ready)
                {
                    // Drafted or waiting to retry: the send stage may hold it right now (a callback can beat the recording
                    // of the provider's answer), and writing it would break that claim and send it twice.
                    throw new MessageBusyException(m.Id);
                }

                e = StatusTransitions.Apply(m, r.Metric, op.Timestamp, r.Reason, op.Source, r.Key, r.Recipient, r.ProviderId);
                if (e is not null)
                {
                    await s.PutMessageAsync(m);
                }
            }

            if (e is not null)
            {
                await s.AppendDeliveryEventAsync(e with { RecordedAt = now });
                PipelineTelemetry.MessageStatus(e);
            }
        }
        else if (op.Target is not null)
        {
            // A message Nudge no longer has (or never sent): a consent change still reaches the person it names.
            personKey = await s.ResolveAsync(op.Target);
        }

        if (op.Attributes is { Count: > 0 } attrs && personKey is not null && await s.GetProfileAsync(personKey) is { } p)
        {
            ApplyConsent(p, attrs, op);
            await s.PutProfileAsync(p);
        }
    }

    /// <summary>Applies an SMS keyword's consent change to everyone with that number (several people may share one).</summary>
    private static async Task ApplySmsKeywordAsync(IStoreSession s, IngestOp op)
    {
        foreach (var key in await s.FindProfilesByPhoneAsync(op.Phone!))
        {
            if (await s.GetProfileAsync(key) is not { } p)
            {
                continue;
            }

            ApplyConsent(p, op.Attributes!, op);
            await s.PutProfileAsync(p);
            var data = (JsonObject)op.Attributes!.DeepClone();
            data["source"] = op.Source;
            await s.AppendEventAsync(new StoredEvent($"{op.MessageId}/sms_keyword", key, "sms_keyword", "system", op.Timestamp, op.ReceivedAt, op.Source, data));
        }
    }

    /// <summary>Consent attributes, last writer wins by the report's time, with source and time in the consent history.</summary>
    private static void ApplyConsent(Profile p, JsonObject attrs, IngestOp op)
    {
        ProfileRules.ApplyAttributes(p, attrs, op.Timestamp, op.Source, op.Ip, int.MaxValue);
        p.UpdatedAt = op.ReceivedAt;
    }
}

/// <summary>
/// Thrown by <see cref="EventProcessor"/> for a status report about a message the send stage has not finished with
/// (drafted, or waiting to retry). The op fails and its queue delivers it again later, when the outcome is recorded.
/// </summary>
public sealed class MessageBusyException(string messageId)
    : Exception($"message {messageId} is still with the send stage; the report is applied on a later delivery")
{
    /// <summary>The message the report is about.</summary>
    public string MessageId { get; } = messageId;
}
