using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Xunit;

namespace Nudge.Store.Conformance;

/// <summary>The message log: every person's messages with their current status, newest first, filtered and paged by keyset.</summary>
public abstract partial class StoreConformance
{
    private static Message LogMessage(string id, string key, DateTimeOffset created, string journey = "cart", string step = "push-1",
        Channel channel = Channel.Push, string[]? platforms = null, string status = MessageStatus.Sent, string? reason = null) => new()
        {
            Id = id,
            ProfileKey = key,
            InstanceId = $"{journey}:{key}:1",
            JourneyId = journey,
            StepId = step,
            Channel = channel,
            Status = status,
            Reason = reason,
            CreatedAt = created,
            Recipients = channel == Channel.Push ? [.. (platforms ?? [Platforms.Ios]).Select(p => $"tok-{id}-{p}")] : [$"{id}@example.com"],
            Platforms = channel == Channel.Push ? [.. platforms ?? [Platforms.Ios]] : [],
        };

    private Task AddMessagesAsync(params Message[] messages) => CommitAsync(async s =>
    {
        foreach (var m in messages)
        {
            Assert.True(await s.TryAddMessageAsync(m));
        }
    });

    private async Task<List<string>> ListIdsAsync(MessageListQuery q) => [.. (await Store.ListMessagesAsync(q)).Select(m => m.Id)];

    private static MessageListQuery Around(int limit = 100) => new(T0.AddDays(-10), T0.AddDays(10), limit);

    [Fact]
    public async Task ListMessages_EveryPerson_NewestFirst_IdDescendingOnEqualTimes_WithEveryField()
    {
        var sms = LogMessage("m-sms", "k2", T0.AddHours(1), "winback", "sms-1", Channel.Sms, status: MessageStatus.Undeliverable, reason: MessageReason.ConsentMissing);
        sms.History = [new StatusChange(MessageStatus.Drafted, T0.AddHours(1), null), new StatusChange(MessageStatus.Undeliverable, T0.AddHours(1).AddSeconds(3), MessageReason.ConsentMissing)];
        await AddMessagesAsync(
            LogMessage("m-b", "k1", T0), LogMessage("m-a", "k3", T0), LogMessage("m-c", "k2", T0),
            sms, LogMessage("m-old", "k1", T0.AddDays(-2)), LogMessage("m-new", "k3", T0.AddDays(2), platforms: [Platforms.Ios, Platforms.Android]));

        var all = await Store.ListMessagesAsync(Around());

        Assert.Equal(["m-new", "m-sms", "m-c", "m-b", "m-a", "m-old"], all.Select(m => m.Id));
        var s = all[1];
        Assert.Equal(("m-sms", "k2", "winback", "sms-1", "sms", MessageStatus.Undeliverable, MessageReason.ConsentMissing),
            (s.Id, s.ProfileKey, s.JourneyId, s.StepId, s.Channel, s.Status, s.Reason));
        Assert.Empty(s.Platforms);
        Assert.Equal(["m-sms@example.com"], s.Recipients);
        Assert.Equal((T0.AddHours(1), T0.AddHours(1).AddSeconds(3)), (s.CreatedAt, s.UpdatedAt));
        Assert.Equal([Platforms.Ios, Platforms.Android], all[0].Platforms);
        Assert.Equal(["tok-m-new-ios", "tok-m-new-android"], all[0].Recipients);
        Assert.Equal(T0.AddDays(2), all[0].UpdatedAt); // no history yet: its creation
    }

    [Fact]
    public async Task ListMessages_TimeRange_FromInclusive_ToExclusive()
    {
        await AddMessagesAsync(LogMessage("at-from", "k1", T0), LogMessage("before", "k1", T0.AddMilliseconds(-1)),
            LogMessage("last-in", "k2", T0.AddHours(1).AddMilliseconds(-1)), LogMessage("at-to", "k2", T0.AddHours(1)));

        Assert.Equal(["last-in", "at-from"], await ListIdsAsync(new MessageListQuery(T0, T0.AddHours(1), 10)));
        Assert.Equal(["at-to", "last-in", "at-from", "before"], await ListIdsAsync(Around()));
        Assert.Empty(await ListIdsAsync(new MessageListQuery(T0.AddDays(1), T0.AddDays(2), 10)));
    }

    [Fact]
    public async Task ListMessages_EachFilter_MatchesExactly_AndFiltersCombine()
    {
        await AddMessagesAsync(
            LogMessage("push-ios", "k1", T0, platforms: [Platforms.Ios]),
            LogMessage("push-both", "k2", T0.AddMinutes(1), platforms: [Platforms.Ios, Platforms.Android], status: MessageStatus.Delivered),
            LogMessage("push-android", "k3", T0.AddMinutes(2), step: "push-2", platforms: [Platforms.Android], status: MessageStatus.Bounced, reason: MessageReason.InvalidToken),
            LogMessage("email", "k1", T0.AddMinutes(3), step: "email-1", channel: Channel.Email, status: MessageStatus.Delivered),
            LogMessage("sms", "k2", T0.AddMinutes(4), "winback", "sms-1", Channel.Sms, status: MessageStatus.Undeliverable, reason: MessageReason.ConsentMissing));

        Assert.Equal(["sms"], await ListIdsAsync(Around() with { JourneyId = "winback" }));
        Assert.Equal(["email", "push-android", "push-both", "push-ios"], await ListIdsAsync(Around() with { JourneyId = "cart" }));
        Assert.Empty(await ListIdsAsync(Around() with { JourneyId = "Cart" }));
        Assert.Equal(["push-android"], await ListIdsAsync(Around() with { StepId = "push-2" }));
        Assert.Equal(["push-android", "push-both", "push-ios"], await ListIdsAsync(Around() with { Channel = "push" }));
        Assert.Equal(["email"], await ListIdsAsync(Around() with { Channel = "email" }));
        Assert.Equal(["push-android", "push-both"], await ListIdsAsync(Around() with { Platform = Platforms.Android }));
        Assert.Equal(["push-both", "push-ios"], await ListIdsAsync(Around() with { Platform = Platforms.Ios }));
        Assert.Empty(await ListIdsAsync(Around() with { Platform = "io" }));
        Assert.Equal(["email", "push-both"], await ListIdsAsync(Around() with { Status = MessageStatus.Delivered }));
        Assert.Equal(["push-android"], await ListIdsAsync(Around() with { Reason = MessageReason.InvalidToken }));
        Assert.Equal(["sms"], await ListIdsAsync(Around() with { Reason = MessageReason.ConsentMissing }));
        Assert.Equal(["push-both"], await ListIdsAsync(Around() with { Channel = "push", Status = MessageStatus.Delivered, Platform = Platforms.Android, JourneyId = "cart", StepId = "push-1" }));
        Assert.Empty(await ListIdsAsync(Around() with { Channel = "email", Platform = Platforms.Ios }));
    }

    [Fact]
    public async Task ListMessages_Limit_AndPagesAfterTheCursor_WithoutGapsOrRepeats_AcrossEqualTimes()
    {
        // Across several UTC days and people, most sharing their creation time with others.
        var messages = Enumerable.Range(0, 13)
            .Select(n => LogMessage($"m{n * 7 % 13:D2}", "k" + (n % 4), T0.AddHours(n / 4 * 20), status: n % 3 == 0 ? MessageStatus.Delivered : MessageStatus.Sent))
            .ToArray();
        await AddMessagesAsync(messages);
        var expected = messages.OrderByDescending(m => m.CreatedAt).ThenByDescending(m => m.Id, StringComparer.Ordinal).Select(m => m.Id).ToList();

        var all = await ListIdsAsync(Around());
        Assert.Equal(expected, all);
        Assert.Equal(expected.Take(3), await ListIdsAsync(Around(3)));

        foreach (var size in new[] { 1, 4, 5 })
        {
            var seen = new List<string>();
            MessageListCursor? after = null;
            while (true)
            {
                var page = await Store.ListMessagesAsync(Around(size) with { After = after });
                Assert.True(page.Count <= size);
                seen.AddRange(page.Select(m => m.Id));
                if (page.Count < size)
                {
                    break;
                }

                after = new MessageListCursor(page[^1].CreatedAt, page[^1].Id);
            }

            Assert.Equal(expected, seen);
        }

        // Paging a filtered list: the cursor is the last message returned.
        var delivered = messages.Where(m => m.Status == MessageStatus.Delivered).Select(m => m.Id).ToHashSet();
        var first = await Store.ListMessagesAsync(Around(2) with { Status = MessageStatus.Delivered });
        var rest = await Store.ListMessagesAsync(Around(10) with { Status = MessageStatus.Delivered, After = new MessageListCursor(first[^1].CreatedAt, first[^1].Id) });
        Assert.Equal(expected.Where(delivered.Contains), first.Concat(rest).Select(m => m.Id));
    }

    [Fact]
    public async Task ListMessages_ShowsTheCurrentStatusAndReason_AfterEveryKindOfWrite()
    {
        var m = LogMessage("m1", "k1", T0, status: MessageStatus.Drafted);
        m.Ready = true;
        m.History = [new StatusChange(MessageStatus.Drafted, T0, null)];
        await AddMessagesAsync(m, LogMessage("other", "k2", T0.AddMinutes(1), status: MessageStatus.Drafted));
        Assert.Equal(["other", "m1"], await ListIdsAsync(Around() with { Status = MessageStatus.Drafted }));

        // The send stage: claimed, then its outcome recorded (the claim path writes status and reason on its own).
        var until = T0.AddMinutes(5);
        await using (var s = await Store.OpenSessionAsync())
        {
            var claimed = Assert.Single(await s.ClaimReadyMessagesAsync(T0.AddSeconds(1), until, 10));
            StatusTransitions.Apply(claimed, MessageStatus.Sent, T0.AddSeconds(2), null, null);
            claimed.Ready = false;
            Assert.True(await s.TryRecordSendOutcomeAsync(claimed, until));
            await s.CommitAsync();
        }

        Assert.Equal(["other"], await ListIdsAsync(Around() with { Status = MessageStatus.Drafted }));
        var sent = Assert.Single(await Store.ListMessagesAsync(Around() with { Status = MessageStatus.Sent }));
        Assert.Equal(("m1", T0.AddSeconds(2)), (sent.Id, sent.UpdatedAt));

        // A provider's receipt, then a late "sent" that does not move the status back.
        var stored = (await Store.GetMessageAsync("m1"))!;
        StatusTransitions.Apply(stored, MessageStatus.Delivered, T0.AddMinutes(1), null, "sdk");
        await CommitAsync(s => s.PutMessageAsync(stored));
        Assert.Empty(await ListIdsAsync(Around() with { Status = MessageStatus.Sent }));
        var delivered = Assert.Single(await Store.ListMessagesAsync(Around() with { Status = MessageStatus.Delivered }));
        Assert.Equal((MessageStatus.Delivered, T0.AddMinutes(1)), (delivered.Status, delivered.UpdatedAt));

        // A non-delivery of the other message carries its reason, which the reason filter sees.
        var other = (await Store.GetMessageAsync("other"))!;
        StatusTransitions.Apply(other, MessageStatus.Bounced, T0.AddMinutes(2), MessageReason.InvalidToken, "apns");
        await CommitAsync(s => s.PutMessageAsync(other));
        var bounced = Assert.Single(await Store.ListMessagesAsync(Around() with { Reason = MessageReason.InvalidToken }));
        Assert.Equal(("other", MessageStatus.Bounced), (bounced.Id, bounced.Status));

        var listed = await Store.ListMessagesAsync(Around());
        Assert.Equal([MessageStatus.Bounced, MessageStatus.Delivered], listed.Select(x => x.Status));
    }

    [Fact]
    public async Task ListMessages_AfterAnIdentityMerge_ListedOnceUnderTheNewPerson_AndGoneWithTheProfile()
    {
        await AddMessagesAsync(LogMessage("m1", "anon", T0), LogMessage("m2", "known", T0.AddMinutes(1)));
        await CommitAsync(s => s.MoveJourneysAsync("anon", "known"));

        var listed = await Store.ListMessagesAsync(Around());
        Assert.Equal([("m2", "known"), ("m1", "known")], listed.Select(m => (m.Id, m.ProfileKey)));

        await CommitAsync(s => s.DeleteProfileAsync("known"));
        Assert.Empty(await Store.ListMessagesAsync(Around()));
    }
}
