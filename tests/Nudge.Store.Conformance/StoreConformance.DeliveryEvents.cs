using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Storage;
using Xunit;

namespace Nudge.Store.Conformance;

/// <summary>The delivery-event log: idempotent by derived id, read by time range in (time, id) order with keyset paging.</summary>
public abstract partial class StoreConformance
{
    private static Message EventMessage(string id, string key) => new()
    {
        Id = id,
        ProfileKey = key,
        InstanceId = "i-" + id,
        JourneyId = "cart",
        StepId = "push-1",
        Channel = Channel.Push,
        Status = MessageStatus.Sent,
        CreatedAt = T0,
        Recipients = ["tok-" + id],
        Platforms = ["ios"],
        Deliveries = [new MessageDelivery { Recipient = "tok-" + id, Platform = "ios", Status = DeliveryStatus.Sent, ProviderId = "apns-" + id }],
    };

    private static DeliveryEvent Event(string message, string metric, DateTimeOffset at, DateTimeOffset recorded) =>
        DeliveryEvent.For(EventMessage(message, "k-" + message), metric, at, null) with { RecordedAt = recorded };

    [Fact]
    public async Task DeliveryEvents_AppendedTwice_KeptOnceWithEveryField()
    {
        var e = Event("m1", MessageStatus.Delivered, T0, T0.AddSeconds(5));
        await CommitAsync(s => s.AppendDeliveryEventAsync(e));
        await CommitAsync(s => s.AppendDeliveryEventAsync(e with { RecordedAt = T0.AddHours(1), Reason = "other" }));

        var stored = Assert.Single(await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0.AddDays(-1), T0.AddDays(1), 10)));
        Assert.Equal(e, stored);
        Assert.Equal(("m1", "k-m1", "push", "cart", "push-1", "ios", "tok-m1", "apns-m1"),
            (stored.MessageId, stored.ProfileKey, stored.Channel, stored.JourneyId, stored.StepId, stored.Platform, stored.Recipient, stored.ProviderId));
    }

    [Fact]
    public async Task DeliveryEvents_ByTimeRange_InTimeThenIdOrder_PagedWithoutGapsOrRepeats()
    {
        // Across several UTC days (Cosmos partitions by day), with ties on the time.
        var all = new List<DeliveryEvent>();
        for (var n = 0; n < 12; n++)
        {
            all.Add(Event($"m{n:D2}", MessageStatus.Sent, T0.AddHours(n * 7 % 50), T0.AddDays(3).AddMinutes(-n)));
        }

        all.Add(Event("m00", MessageStatus.Delivered, T0.AddHours(7), T0.AddDays(3)));
        await CommitAsync(async s =>
        {
            foreach (var e in all)
            {
                await s.AppendDeliveryEventAsync(e);
            }
        });

        var from = T0.AddHours(1);
        var to = T0.AddHours(40);
        var expected = all.Where(e => e.At >= from && e.At < to).OrderBy(e => e.At).ThenBy(e => e.Id, StringComparer.Ordinal).ToList();
        var read = new List<DeliveryEvent>();
        DeliveryEventCursor? after = null;
        while (true)
        {
            var page = await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(from, to, 3, After: after));
            read.AddRange(page);
            if (page.Count < 3)
            {
                break;
            }

            after = new DeliveryEventCursor(page[^1].At, page[^1].Id);
        }

        Assert.True(expected.Count >= 5);
        Assert.Equal(expected.Select(e => e.Id), read.Select(e => e.Id));
    }

    [Fact]
    public async Task DeliveryEvents_ByRecordedAt_OrderedByWhenNudgeLearntThem()
    {
        var late = Event("late", MessageStatus.Delivered, T0, T0.AddHours(2));
        var early = Event("early", MessageStatus.Delivered, T0.AddHours(1), T0.AddHours(1));
        await CommitAsync(async s =>
        {
            await s.AppendDeliveryEventAsync(late);
            await s.AppendDeliveryEventAsync(early);
        });

        var byRecorded = await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0.AddMinutes(30), T0.AddDays(1), 10, ByRecordedAt: true));
        var byTime = await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0, T0.AddDays(1), 10));

        Assert.Equal(["early", "late"], byRecorded.Select(e => e.MessageId));
        Assert.Equal(["late", "early"], byTime.Select(e => e.MessageId));
        Assert.Empty(await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0, T0.AddDays(1), 0)));
    }
}
