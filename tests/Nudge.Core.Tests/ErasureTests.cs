using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Reports;
using Nudge.Core.Storage;

namespace Nudge.Core.Tests;

public class ErasureTests
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static DeliveryEvent Event(string messageId, string metric, string? reason = null) =>
        new($"e-{messageId}-{metric}", messageId, "k1", metric, T0, "sms", "cart", "sms", null, "+14155550123", "SM123", reason, Holdout: false)
        {
            RecordedAt = T0.AddSeconds(1),
        };

    [Fact]
    public void ScrubEvent_KeepsWhatReportsCount_DropsThePerson_AndPseudonymsHoldWithinOneErase()
    {
        var secrets = Erasure.SecretsOf(["k1"], null, ["+14155550123"]);
        var sent = Erasure.Scrub(Event("k1-m1", MessageStatus.Sent), "salt-a", secrets);
        var delivered = Erasure.Scrub(Event("k1-m1", MessageStatus.Delivered), "salt-a", secrets);
        var otherErase = Erasure.Scrub(Event("k1-m1", MessageStatus.Sent), "salt-b", secrets);

        Assert.Equal((MessageStatus.Sent, T0, "sms", "cart", "sms", T0.AddSeconds(1)), (sent.Metric, sent.At, sent.Channel, sent.JourneyId, sent.StepId, sent.RecordedAt));
        Assert.Equal((Erasure.ErasedKey, (string?)null, (string?)null), (sent.ProfileKey, sent.Recipient, sent.ProviderId));
        Assert.Equal(sent.MessageId, delivered.MessageId); // still one message in the report's distinct counts
        Assert.NotEqual(sent.Id, delivered.Id);
        Assert.NotEqual(sent.MessageId, otherErase.MessageId); // a new salt: nothing to recompute from the id
        Assert.DoesNotContain("k1", sent.MessageId + sent.Id, StringComparison.Ordinal);
    }

    [Fact]
    public void Redact_ReplacesEveryIdentifyingValue_LongestFirst_IgnoringCase()
    {
        var p = new Profile { Key = "k1", Id = "u1", Email = "ann@example.com" };
        p.Attributes[Consent.SmsPhoneAttr] = new AttributeValue { Value = "+14155550123", SetAtMs = 1 };
        var secrets = Erasure.SecretsOf(["k1"], p, ["tok-1"]);

        Assert.Equal("bounced: [erased] said no to [erased] ([erased])",
            Erasure.Redact("bounced: ANN@example.com said no to +14155550123 (tok-1)", secrets));
        Assert.Null(Erasure.Redact(null, secrets));
    }

    [Fact]
    public void ScrubInstance_KeepsOutcome_EndsAnOpenOne_AndForgetsTriggerAndResults()
    {
        var open = new JourneyInstance
        {
            Id = "cart:k1:1",
            JourneyId = "cart",
            JourneyVersion = 2,
            ProfileKey = "k1",
            Entry = 1,
            Holdout = true,
            CurrentStep = "wait",
            WakeAt = T0.AddHours(1),
            StartedAt = T0,
            Trigger = new TriggerSnapshot("add_to_cart", "evt-1", T0, new JsonObject { ["email"] = "ann@example.com" }),
            StepResults = new(StringComparer.Ordinal) { ["push"] = new JsonObject { ["to"] = "tok-1" } },
            StepVisits = new(StringComparer.Ordinal) { ["push"] = 1 },
        };

        var kept = Erasure.Scrub(open, "salt", T0.AddMinutes(5));

        Assert.Equal((InstanceStatus.Exited, Erasure.EndReason, (DateTimeOffset?)T0.AddMinutes(5), (DateTimeOffset?)null), (kept.Status, kept.EndReason, kept.EndedAt, kept.WakeAt));
        Assert.Equal(("cart", true, "wait", T0, Erasure.ErasedKey), (kept.JourneyId, kept.Holdout, kept.CurrentStep, kept.StartedAt, kept.ProfileKey));
        Assert.Equal(["push"], kept.StepVisits.Keys);
        Assert.Empty(kept.StepResults);
        Assert.Empty(kept.Trigger.Data);
        Assert.DoesNotContain("k1", kept.Id, StringComparison.Ordinal);
    }

    [Fact]
    public void Segments_LeaveOutErasedPeople()
    {
        var events = new[] { Event("k1-m1", MessageStatus.Failed, "provider_rejected"), Event("k2-m2", MessageStatus.Failed, "provider_rejected") with { ProfileKey = "k2" } };
        var erased = events.Select((e, i) => i == 0 ? Erasure.Scrub(e, "salt", []) : e);

        Assert.Equal(["k1", "k2"], Segments.FromEvents(Segments.DeliveryFailures, events, null, AttributionRule.Default));
        Assert.Equal(["k2"], Segments.FromEvents(Segments.DeliveryFailures, erased, null, AttributionRule.Default));
    }
}
