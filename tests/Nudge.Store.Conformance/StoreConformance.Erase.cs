using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Reports;
using Nudge.Core.Storage;
using Nudge.Core.Text;
using Nudge.Pipeline;
using Xunit;

namespace Nudge.Store.Conformance;

/// <summary>Erasing a person (Track API and admin delete) and retention purges.</summary>
public abstract partial class StoreConformance
{
    /// <summary>
    /// Every value the store keeps, as text: every column of every row of every table, or every document of every
    /// container, read raw (not through the store), so nothing the store forgot to erase can hide.
    /// </summary>
    protected abstract Task<string> RawContentsAsync();

    /// <summary>One person as every path would leave them: what identifies them, and what must not survive an erase.</summary>
    private sealed record Seeded(string Key, string AnonKey, string Email, string Phone, string Token, string OldToken, string UserId, string AnonId,
        IReadOnlyList<string> MessageIds, string InstanceId, string ProviderId)
    {
        /// <summary>
        /// The phone as digits only: documents may escape the '+'. Message and instance ids embed the profile key, so the
        /// key covers them; they are searched for as well.
        /// </summary>
        public IEnumerable<string> Needles =>
            [Key, AnonKey, Email, Phone.TrimStart('+'), Token, OldToken, UserId, AnonId, InstanceId, ProviderId, .. MessageIds];
    }

    private static readonly TrackApiParser Parser = new(new IngestValidator(new IngestLimits(), new PhoneNormalizer("US")));

    private async Task ProcessAsync(EventProcessor processor, IngestOp op)
    {
        await using var s = await Store.OpenSessionAsync();
        await processor.ProcessAsync(s, op);
        await s.CommitAsync();
    }

    /// <summary>
    /// Seeds a person through ingest (an anonymous visit, then identify with email, phone and the anonymous id, which
    /// merges the visit's profile into theirs; a device; an event), a journey instance, sends on every channel with
    /// their delivery events, receipts (a Twilio status, an SDK open), a bounced token from an earlier device, and the
    /// sandbox outbox.
    /// </summary>
    private async Task<Seeded> SeedPersonAsync(EventProcessor processor, string name, DateTimeOffset at)
    {
        var (userId, anonId, email, phone) = ($"u-{name}-7f3", $"anon-{name}-9c1", $"{name}.erase@example.com", name == "ann" ? "+14155550123" : "+14155550177");
        var (token, oldToken) = ($"tok-{name}-ios-5d8e", $"tok-{name}-old-2b4a");
        await ProcessAsync(processor, Parser.AnonymousEvent(JsonNode.Parse($$$"""
            {"anonymous_id": "{{{anonId}}}", "name": "viewed_product", "data": {"note": "seen by {{{email}}}"}}
            """)!.AsObject(), at));
        var anonKey = (await Store.ResolveAsync(Anon(anonId)))!;
        await ProcessAsync(processor, Parser.Identify(userId, JsonNode.Parse($$$"""
            {"email": "{{{email}}}", "anonymous_id": "{{{anonId}}}", "sms_phone": "{{{phone}}}", "sms_consent": true, "phone": "{{{phone}}}", "first_name": "{{{name}}}"}
            """)!.AsObject(), at.AddMinutes(1)));
        await ProcessAsync(processor, Parser.UpsertDevice(userId, JsonNode.Parse($$$"""
            {"device": {"id": "{{{token}}}", "platform": "ios", "attributes": {"device_id": "phys-{{{name}}}" } } }
            """)!.AsObject(), at.AddMinutes(2)));
        await ProcessAsync(processor, Parser.CustomerEvent(userId, JsonNode.Parse($$$"""
            {"name": "added_to_cart", "data": {"contact": "{{{email}}}", "value": 120}}
            """)!.AsObject(), at.AddMinutes(3)));
        var key = (await Store.ResolveAsync(Id(userId)))!;
        Assert.NotEqual(anonKey, key);
        Assert.Contains(anonKey, (await Store.GetProfileAsync(key))!.MergedFrom);

        // A journey instance and what its steps sent, as the journey engine and send stage record them.
        var instance = NewInstance($"cart:{key}:1", key, null);
        instance.Status = InstanceStatus.Completed;
        instance.EndedAt = at.AddHours(5);
        instance.CurrentStep = null;
        instance.StartedAt = at.AddMinutes(3);
        instance.StepVisits = new(StringComparer.Ordinal) { ["push"] = 1, ["sms"] = 1, ["email"] = 1 };
        instance.StepResults = new(StringComparer.Ordinal) { ["email"] = new JsonObject { ["to"] = email } };
        var providerId = $"SM{name}0c7e11";
        var sends = new (string Step, Channel Channel, string To, string? Platform)[]
        {
            ("push", Channel.Push, token, Platforms.Ios), ("push-old", Channel.Push, oldToken, Platforms.Ios), ("sms", Channel.Sms, phone, null),
            ("email", Channel.Email, email, null),
        };
        var messages = new List<Message>();
        var events = new List<DeliveryEvent>();
        foreach (var (step, channel, to, platform) in sends)
        {
            var m = new Message
            {
                Id = JourneyEngine.MessageId(instance, step, 1),
                ProfileKey = key,
                InstanceId = instance.Id,
                JourneyId = "cart",
                StepId = step,
                Channel = channel,
                Status = MessageStatus.Drafted,
                CreatedAt = at.AddHours(1),
                Content = new JsonObject { ["body"] = $"Hi {name}, your cart ({email}) is waiting" },
                Recipients = [to],
                Platforms = platform is null ? [] : [platform],
                Deliveries = [new MessageDelivery { Recipient = to, Platform = platform, Provider = "sandbox", ProviderId = providerId }],
            };
            var sentAt = at.AddHours(1).AddSeconds(1);
            events.Add(StatusTransitions.Apply(m, MessageStatus.Attempted, sentAt, null, null, recipient: to)!);
            if (step == "push-old")
            {
                events.Add(StatusTransitions.Apply(m, MessageStatus.Bounced, sentAt, MessageReason.InvalidToken, null, recipient: to)!);
            }
            else
            {
                events.Add(StatusTransitions.Apply(m, MessageStatus.Sent, sentAt, null, null, recipient: to, providerId: providerId)!);
                events.Add(StatusTransitions.Apply(m, MessageStatus.Delivered, sentAt.AddMinutes(1), null, channel == Channel.Sms ? "twilio" : "sdk",
                    key: $"{providerId}-{step}-delivered", recipient: to)!);
            }

            messages.Add(m);
        }

        events.Add(StatusTransitions.Apply(messages[^1], MessageStatus.Opened, at.AddHours(2), null, "email_link", recipient: email)!);
        await CommitAsync(async s =>
        {
            await s.PutInstanceAsync(instance);
            foreach (var m in messages)
            {
                await s.TryAddMessageAsync(m);
                await s.RecordOutboxAsync(new OutboxEntry(m.Id, key, m.Channel.ToString().ToLowerInvariant(), m.CreatedAt, m.Content, m.Recipients));
            }

            foreach (var e in events)
            {
                await s.AppendDeliveryEventAsync(e with { RecordedAt = e.At });
            }

            await s.MarkTokenBouncedAsync(oldToken, at.AddHours(1), $"Unregistered {oldToken}");
        });
        return new Seeded(key, anonKey, email, phone, token, oldToken, userId, anonId, [.. messages.Select(m => m.Id)], instance.Id, providerId);
    }

    private async Task<string> ReportAsync(DateTimeOffset from, DateTimeOffset to)
    {
        var builder = new DeliveryReportBuilder(from, to);
        foreach (var e in await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(from, to, 10_000)))
        {
            builder.Add(e);
        }

        builder.Add(await Store.GetInstanceOutcomesAsync(from, to));
        return JsonSerializer.Serialize(builder.Build());
    }

    [Fact]
    public async Task EraseProfile_LeavesNoTraceOfThePersonAnywhere_KeepsReportTotals_AndLeavesOthersAlone()
    {
        var processor = new EventProcessor(new IngestLimits(), new FakeTimeProvider(T0));
        var ann = await SeedPersonAsync(processor, "ann", T0);
        var bob = await SeedPersonAsync(processor, "bob", T0.AddMinutes(30));
        var before = await RawContentsAsync();
        foreach (var needle in ann.Needles.Concat(bob.Needles))
        {
            Assert.True(before.Contains(needle, StringComparison.Ordinal), $"the raw search cannot see '{needle}' even before the erase");
        }

        var report = await ReportAsync(T0.AddDays(-1), T0.AddDays(1));
        var bobMessages = JsonSerializer.Serialize(await Store.GetMessagesAsync(bob.Key, 100), StoreJson.Options);

        await ProcessAsync(processor, Parser.Delete(ann.Email, T0.AddDays(1)));

        var after = await RawContentsAsync();
        var left = ann.Needles.Where(n => after.Contains(n, StringComparison.Ordinal)).ToList();
        Assert.True(left.Count == 0, "still stored after the erase: " + string.Join(", ", left));
        var lost = bob.Needles.Where(n => !after.Contains(n, StringComparison.Ordinal)).ToList();
        Assert.True(lost.Count == 0, "the other person lost: " + string.Join(", ", lost));
        Assert.Null(await Store.ResolveAsync(Id(ann.UserId)));
        Assert.Null(await Store.ResolveAsync(Anon(ann.AnonId)));
        Assert.Null(await Store.GetDeviceAsync(ann.Token));
        Assert.Null(await Store.GetTokenBounceAsync(ann.OldToken));
        Assert.Equal(bob.Key, await Store.ResolveAsync(Id(bob.UserId)));
        Assert.NotNull(await Store.GetTokenBounceAsync(bob.OldToken));
        Assert.Equal(bobMessages, JsonSerializer.Serialize(await Store.GetMessagesAsync(bob.Key, 100), StoreJson.Options));
        Assert.Equal(report, await ReportAsync(T0.AddDays(-1), T0.AddDays(1)));

        // Repeating the erase (a retried op) changes nothing.
        await CommitAsync(s => s.EraseProfileAsync(ann.Key, T0.AddDays(1)));
        Assert.Equal(report, await ReportAsync(T0.AddDays(-1), T0.AddDays(1)));
        Assert.Equal(after.Length, (await RawContentsAsync()).Length);
    }

    [Fact]
    public async Task EraseProfile_AnOpenJourneyInstance_EndsAndStopsWaiting()
    {
        var p = NewProfile("k1", "u1", "u1@example.com");
        var waiting = NewInstance("cart:k1:1", "k1", T0.AddHours(1));
        await PutAsync(p);
        await CommitAsync(s => s.PutInstanceAsync(waiting));

        await CommitAsync(s => s.EraseProfileAsync("k1", T0.AddMinutes(5)));

        Assert.Empty(await Store.DueInstancesAsync(T0.AddDays(1), 10));
        var kept = Assert.Single(await Store.GetInstanceOutcomesAsync(T0.AddDays(-1), T0.AddDays(1)));
        Assert.Equal(("cart", Erasure.ErasedKey, true), (kept.JourneyId, kept.ProfileKey, kept.Ended));
        Assert.DoesNotContain("k1", kept.InstanceId, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Purge_DeletesOnlyWhatIsOlderThanEachHorizon_APageAtATime()
    {
        var clock = new FakeTimeProvider(T0);
        var processor = new EventProcessor(new IngestLimits(), clock);
        var old = await SeedPersonAsync(processor, "ann", T0);
        clock.Advance(TimeSpan.FromDays(200));
        var recent = await SeedPersonAsync(processor, "bob", clock.GetUtcNow());
        var now = clock.GetUtcNow();
        var eventsBefore = (await Store.GetRecentEventsAsync(old.Key, 100)).Count;
        Assert.True(eventsBefore > 0);

        // Events older than 180 days go; messages (365 days) all stay.
        var purged = new List<PurgeCounts>();
        do
        {
            purged.Add(await Store.PurgeAsync(now.AddDays(-180), now.AddDays(-365), 2));
        }
        while (purged[^1].More(2));

        Assert.Equal(eventsBefore, purged.Sum(c => c.Events));
        Assert.Equal(0, purged.Sum(c => c.Messages + c.Outbox + c.DeliveryEvents));
        Assert.Empty(await Store.GetRecentEventsAsync(old.Key, 100));
        Assert.NotEmpty(await Store.GetRecentEventsAsync(recent.Key, 100));
        Assert.Equal(4, (await Store.GetMessagesAsync(old.Key, 100)).Count);

        // A year on, the old person's messages, outbox entries and delivery events go too; the recent ones stay.
        clock.Advance(TimeSpan.FromDays(200));
        now = clock.GetUtcNow();
        var oldDelivery = await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0.AddDays(-1), T0.AddDays(1), 1000));
        purged.Clear();
        do
        {
            purged.Add(await Store.PurgeAsync(now.AddDays(-180), now.AddDays(-365), 3));
        }
        while (purged[^1].More(3));

        Assert.Equal((4L, 4L, (long)oldDelivery.Count), (purged.Sum(c => c.Messages), purged.Sum(c => c.Outbox), purged.Sum(c => c.DeliveryEvents)));
        Assert.Empty(await Store.GetMessagesAsync(old.Key, 100));
        Assert.Empty(await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0.AddDays(-1), T0.AddDays(1), 1000)));
        Assert.Equal(4, (await Store.GetMessagesAsync(recent.Key, 100)).Count);
        Assert.Equal(4, (await Store.GetOutboxAsync(100)).Count);
        Assert.NotEmpty(await Store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0.AddDays(199), T0.AddDays(201), 1000)));
        Assert.NotNull(await Store.GetProfileAsync(old.Key));
    }
}
