using System.Security.Cryptography;
using System.Text;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;

namespace Nudge.Core.Storage;

/// <summary>
/// What erasing a person keeps, the same for every store: the delivery events and journey instance outcomes that reports
/// count, stripped of everything that identifies the person, so report totals do not move when someone is erased; every
/// other record of the person (profile, identifiers, devices, token records, events, messages, outbox) is deleted.
/// </summary>
/// <remarks>
/// A kept record's ids become pseudonyms keyed by a random salt that is thrown away once the erase is done: message ids
/// and instance ids are derived from the profile key, and the profile key from the person's id, so an unsalted hash
/// could be recomputed from a known id. Within one erase the same id always gets the same pseudonym, so a message's
/// events still count as one message.
/// </remarks>
public static class Erasure
{
    /// <summary>
    /// The profile key of what an erase keeps. Profile keys are lowercase hex, so no person ever has it; the Cosmos
    /// store uses it as the partition of kept instances.
    /// </summary>
    public const string ErasedKey = "~erased";

    /// <summary>The end reason of a journey instance that was still open when its person was erased.</summary>
    public const string EndReason = "erased";

    /// <summary>What replaces an identifying value inside kept free text (a failure reason that quoted an address).</summary>
    public const string Redacted = "[erased]";

    /// <summary>A new random salt for one erase (32 bytes, hex).</summary>
    public static string NewSalt() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>The pseudonym of <paramref name="id"/> under <paramref name="salt"/>: "x-" and 32 hex digits of HMAC-SHA256.</summary>
    public static string Pseudonym(string salt, string id) =>
        "x-" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(salt), Encoding.UTF8.GetBytes(id)).AsSpan(0, 16));

    /// <summary>
    /// The profile keys whose records belong to the person of <paramref name="key"/>: the key itself and every key
    /// merged into it (records written before a merge, such as delivery events and message ids, still carry those).
    /// </summary>
    public static IReadOnlyList<string> KeysOf(string key, Profile? p) =>
        [.. new[] { key }.Concat(p?.MergedFrom ?? []).Distinct(StringComparer.Ordinal)];

    /// <summary>
    /// Every value that identifies the person, for redacting free text: profile keys, ids, emails, anonymous ids, phone
    /// attributes, and <paramref name="recipients"/> (push tokens, numbers and addresses messages went to).
    /// </summary>
    public static IReadOnlyList<string> SecretsOf(IReadOnlyList<string> keys, Profile? p, IEnumerable<string> recipients)
    {
        var all = new List<string>(keys);
        if (p is not null)
        {
            all.AddRange(IdentifierIndex.Of(p).Select(i => i.Value));
            all.AddRange(Consent.PhoneAttributes.Select(p.GetString).OfType<string>());
        }

        all.AddRange(recipients);

        // Longest first, so a value that contains another is replaced whole.
        return [.. all.Where(s => s.Length > 0).Distinct(StringComparer.Ordinal).OrderByDescending(s => s.Length)];
    }

    /// <summary>
    /// The delivery event as an erase keeps it: what reports count (metric, time, channel, platform, journey, step,
    /// reason, holdout, recorded time) stays; the person's key, the recipient and the provider's id go; event and message
    /// ids become pseudonyms (<see cref="Pseudonym"/>), and the reason loses any of <paramref name="secrets"/> it quoted.
    /// </summary>
    public static DeliveryEvent Scrub(DeliveryEvent e, string salt, IReadOnlyList<string> secrets) =>
        e with
        {
            Id = Pseudonym(salt, e.Id),
            MessageId = Pseudonym(salt, e.MessageId),
            ProfileKey = ErasedKey,
            Recipient = null,
            ProviderId = null,
            Reason = Redact(e.Reason, secrets),
        };

    /// <summary>
    /// The journey instance as an erase keeps it, for holdout lift and step flow: journey, holdout, steps entered, where
    /// it stands, start, end and conversion times. Its id becomes a pseudonym, the trigger keeps only its event name
    /// and time, step results go, and it no longer waits for anything; one still open ends at <paramref name="now"/>
    /// with reason <see cref="EndReason"/> (the person left the journey).
    /// </summary>
    public static JourneyInstance Scrub(JourneyInstance i, string salt, DateTimeOffset now) => new()
    {
        Id = Pseudonym(salt, i.Id),
        JourneyId = i.JourneyId,
        JourneyVersion = i.JourneyVersion,
        ProfileKey = ErasedKey,
        Entry = i.Entry,
        Status = i.IsOpen ? InstanceStatus.Exited : i.Status,
        Holdout = i.Holdout,
        CurrentStep = i.CurrentStep,
        StepEnteredAt = i.StepEnteredAt,
        WakeAt = null,
        Trigger = new TriggerSnapshot(i.Trigger.Name, "", i.Trigger.Timestamp, []),
        StepVisits = new Dictionary<string, int>(i.StepVisits, StringComparer.Ordinal),
        StartedAt = i.StartedAt,
        EndedAt = i.IsOpen ? now : i.EndedAt,
        EndReason = i.IsOpen ? EndReason : i.EndReason,
        ConvertedAt = i.ConvertedAt,
        LastMessageAt = i.LastMessageAt,
    };

    /// <summary><paramref name="text"/> with every occurrence of <paramref name="secrets"/> replaced by <see cref="Redacted"/>.</summary>
    public static string? Redact(string? text, IReadOnlyList<string> secrets)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text;
        }

        foreach (var s in secrets)
        {
            text = text.Replace(s, Redacted, StringComparison.OrdinalIgnoreCase);
        }

        return text;
    }
}
