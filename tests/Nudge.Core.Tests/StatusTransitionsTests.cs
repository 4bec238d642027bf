using Nudge.Core.Journeys;
using Nudge.Core.Messages;

namespace Nudge.Core.Tests;

public class StatusTransitionsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static Message Sms() => new()
    {
        Id = "i1:sms:1",
        ProfileKey = "p1",
        InstanceId = "i1",
        JourneyId = "cart",
        StepId = "sms",
        Channel = Channel.Sms,
        Status = MessageStatus.Sent,
        CreatedAt = T0,
        Recipients = ["+14155552671"],
        Deliveries = [new MessageDelivery { Recipient = "+14155552671", Status = DeliveryStatus.Sent, ProviderId = "SM123" }],
        History = [new StatusChange(MessageStatus.Drafted, T0, null), new StatusChange(MessageStatus.Sent, T0, null)],
    };

    [Fact]
    public void Apply_LateSentAfterDelivered_NeverMovesTheStatusBack()
    {
        var m = Sms();
        m.History.RemoveAt(1);

        Assert.NotNull(StatusTransitions.Apply(m, MessageStatus.Delivered, T0.AddSeconds(5), null, "twilio", "SM123:delivered"));
        var late = StatusTransitions.Apply(m, MessageStatus.Sent, T0.AddSeconds(6), null, "twilio", "SM123:sent");

        Assert.Equal(MessageStatus.Delivered, m.Status);
        Assert.NotNull(late);
        Assert.Equal([MessageStatus.Drafted, MessageStatus.Delivered, MessageStatus.Sent], m.History.Select(h => h.Status));
    }

    [Fact]
    public void Apply_SameKeyOrSameMetricTwice_ChangesNothingTheSecondTime()
    {
        var m = Sms();
        var first = StatusTransitions.Apply(m, MessageStatus.Delivered, T0.AddSeconds(5), null, "twilio", "SM123:delivered");
        var sameKey = StatusTransitions.Apply(m, MessageStatus.Delivered, T0.AddSeconds(9), null, "twilio", "SM123:delivered");
        var sameMetric = StatusTransitions.Apply(m, MessageStatus.Delivered, T0.AddSeconds(9), null, "twilio", "other-key");

        Assert.NotNull(first);
        Assert.Null(sameKey);
        Assert.Null(sameMetric);
        Assert.Equal(3, m.History.Count);
    }

    [Fact]
    public void Apply_NonDelivery_RecordsTheReasonAndTheEventCarriesTheMessagesIdentity()
    {
        var m = Sms();
        var e = StatusTransitions.Apply(m, MessageStatus.Failed, T0.AddSeconds(5), "unreachable: 30003", "twilio", "SM123:undelivered");

        Assert.Equal(MessageStatus.Failed, m.Status);
        Assert.Equal("unreachable: 30003", m.Reason);
        Assert.NotNull(e);
        Assert.Equal(("i1:sms:1", "p1", "failed", "sms", "cart", "sms", "+14155552671", "SM123", "unreachable: 30003"),
            (e.MessageId, e.ProfileKey, e.Metric, e.Channel, e.JourneyId, e.StepId, e.Recipient, e.ProviderId, e.Reason));
        Assert.Equal(26, e.Id.Length);
        Assert.Equal(e.Id, DeliveryEvent.For(Sms(), MessageStatus.Failed, T0, null).Id);
        Assert.NotEqual(e.Id, DeliveryEvent.For(Sms(), MessageStatus.Delivered, T0, null).Id);
    }

    [Fact]
    public void Apply_DeliveredOpenedClickedConverted_MoveForwardAndAnOpenAfterAClickIsHistoryOnly()
    {
        var m = Sms();
        foreach (var s in new[] { MessageStatus.Delivered, MessageStatus.Clicked, MessageStatus.Opened, MessageStatus.Converted })
        {
            StatusTransitions.Apply(m, s, T0.AddMinutes(1), null, "sdk");
            Assert.Equal(s == MessageStatus.Opened ? MessageStatus.Clicked : s, m.Status);
        }

        Assert.Equal(T0.AddMinutes(1), m.ConvertedAt);
    }

    [Fact]
    public void Apply_UnknownStatus_Throws()
    {
        Assert.Throws<ArgumentException>(() => StatusTransitions.Apply(Sms(), "bogus", T0, null, null));
        Assert.Equal(-1, StatusTransitions.Rank("queued"));
    }
}
