using System.Security.Cryptography;
using System.Text;

namespace Nudge.Core.Messages;

/// <summary>
/// The status model: Customer.io's message metrics, applied monotonically. A message's <see cref="Message.Status"/>
/// only moves forward (drafted, attempted, sent, then a non-delivery or delivered, opened, clicked, converted), so a
/// late "sent" callback never overwrites "delivered"; every metric is recorded at most once per message, and a report
/// carrying a key seen before changes nothing, so webhook retries and duplicate callbacks are harmless.
/// </summary>
public static class StatusTransitions
{
    /// <summary>How far a status is along the way; -1 for a name that is not a message status.</summary>
    public static int Rank(string status) => status switch
    {
        MessageStatus.Drafted => 0,
        MessageStatus.Attempted => 1,
        MessageStatus.Sent => 2,
        MessageStatus.Bounced or MessageStatus.Dropped or MessageStatus.Failed or MessageStatus.Undeliverable => 3,
        MessageStatus.Delivered => 4,
        MessageStatus.Opened => 5,
        MessageStatus.Clicked => 6,
        MessageStatus.Converted => 7,
        _ => -1,
    };

    /// <summary>True for the statuses that mean the message did not reach the person.</summary>
    public static bool IsNonDelivery(string status) =>
        status is MessageStatus.Bounced or MessageStatus.Dropped or MessageStatus.Failed or MessageStatus.Undeliverable;

    /// <summary>
    /// Records <paramref name="status"/> for <paramref name="m"/> as reported by <paramref name="source"/>. Returns the
    /// delivery event to keep (reports, reporting webhooks), or null when nothing changed: the key was seen before, or the
    /// message already has this metric (attempts excepted: each retry is recorded). The history gets the entry even when
    /// the status does not move (a late "sent" after "delivered" is history, not status).
    /// </summary>
    /// <param name="m">The message; changed in place (the caller stores it).</param>
    /// <param name="status">A <see cref="MessageStatus"/> value.</param>
    /// <param name="at">When it happened.</param>
    /// <param name="reason">Why, for a non-delivery (a <see cref="MessageReason"/> value, optionally with detail).</param>
    /// <param name="source">Who reported it ("twilio", "sendgrid", "sdk"...); null for the send stage itself.</param>
    /// <param name="key">The reporter's idempotency key, if it has one.</param>
    /// <param name="recipient">The device token, phone or email the report is about, when known.</param>
    /// <param name="providerId">The provider's id for the message (Twilio MessageSid, SendGrid sg_message_id...).</param>
    /// <exception cref="ArgumentException"><paramref name="status"/> is not a message status.</exception>
    public static DeliveryEvent? Apply(Message m, string status, DateTimeOffset at, string? reason, string? source, string? key = null,
        string? recipient = null, string? providerId = null)
    {
        if (Rank(status) < 0)
        {
            throw new ArgumentException($"'{status}' is not a message status", nameof(status));
        }

        if (key is not null && m.History.Any(h => h.Key == key))
        {
            return null;
        }

        if (status != MessageStatus.Attempted && m.History.Any(h => h.Status == status))
        {
            return null;
        }

        m.History.Add(new StatusChange(status, at, reason, source, key));
        if (Rank(status) > Rank(m.Status))
        {
            m.Status = status;
            m.Reason = IsNonDelivery(status) ? reason : m.Reason;
            if (status == MessageStatus.Converted)
            {
                m.ConvertedAt ??= at;
            }
        }

        return DeliveryEvent.For(m, status, at, reason, recipient, providerId);
    }
}

/// <summary>
/// One metric of one message, as reports and reporting webhooks see it (Customer.io's reporting-webhook event: metric,
/// timestamp, delivery id, customer, journey and step, device, recipient, failure reason). <see cref="Id"/> is derived
/// from (message, metric): the same metric of the same message always has the same id, so storing or posting it twice
/// is harmless; attempts add their time, as a message may have several.
/// </summary>
public sealed record DeliveryEvent(
    string Id,
    string MessageId,
    string ProfileKey,
    string Metric,
    DateTimeOffset At,
    string Channel,
    string JourneyId,
    string StepId,
    string? Platform,
    string? Recipient,
    string? ProviderId,
    string? Reason,
    bool Holdout)
{
    /// <summary>When Nudge recorded it (set by whoever stores it; reporting webhooks go in this order).</summary>
    public DateTimeOffset RecordedAt { get; init; }

    /// <summary>The event for <paramref name="metric"/> of <paramref name="m"/>; platform and provider id come from its delivery to <paramref name="recipient"/>.</summary>
    public static DeliveryEvent For(Message m, string metric, DateTimeOffset at, string? reason, string? recipient = null, string? providerId = null)
    {
        var d = recipient is null ? (m.Deliveries.Count == 1 ? m.Deliveries[0] : null) : m.Deliveries.FirstOrDefault(x => x.Recipient == recipient);
        var platform = d?.Platform ?? (m.Platforms.Count == 1 ? m.Platforms[0] : null);
        var seed = metric == MessageStatus.Attempted ? $"{m.Id}\n{metric}\n{at.ToUnixTimeMilliseconds()}" : $"{m.Id}\n{metric}";
        return new DeliveryEvent(IdOf(seed), m.Id, m.ProfileKey, metric, at, m.Channel.ToString().ToLowerInvariant(), m.JourneyId, m.StepId,
            platform, recipient ?? d?.Recipient, providerId ?? d?.ProviderId, reason, m.Holdout);
    }

    /// <summary>26 characters of Crockford base32 (ULID-shaped, but derived, not random).</summary>
    private static string IdOf(string seed)
    {
        const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(seed), hash);
        var chars = new char[26];
        for (var i = 0; i < 26; i++)
        {
            // 5 bits per character from the first 130 bits of the hash.
            var bit = i * 5;
            var v = ((hash[bit / 8] << 8) | hash[(bit / 8) + 1]) >> (11 - (bit % 8)) & 0x1F;
            chars[i] = Alphabet[v];
        }

        return new string(chars);
    }
}
