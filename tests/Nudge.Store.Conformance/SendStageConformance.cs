using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Delivery;
using Nudge.Delivery.Resilience;
using Nudge.Delivery.Sandbox;
using Nudge.Pipeline;

namespace Nudge.Store.Conformance;

/// <summary>
/// The send stage against a real store, with providers scripted per recipient: outcomes recorded per recipient,
/// dead tokens removed and later dropped, retries with backoff, fallback to the next channel, the circuit breaker.
/// The send stage shares the store contract, so every store runs it. (Each provider's own wire protocol is tested
/// against its loopback peer in Nudge.Delivery.Tests.)
/// </summary>
public abstract class SendStageConformance : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _clock = new(T0);
    private readonly Scripted _push = new("apns");
    private readonly Scripted _sms = new("twilio");
    private IStore _store = null!;

    /// <summary>Opens a new, empty store.</summary>
    protected abstract Task<IStore> CreateStoreAsync();

    /// <summary>Deletes what the store kept (files, databases); called after the store is closed.</summary>
    protected virtual Task DeleteStorageAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        try
        {
            _store = await CreateStoreAsync();
        }
        catch
        {
            // xunit does not call DisposeAsync when InitializeAsync fails.
            await DeleteStorageAsync();
            throw;
        }

        await using var s = await _store.OpenSessionAsync();
        await s.PutProfileAsync(new Profile { Key = "k1", Id = "u1", Email = "u1@example.com", CreatedAt = T0, UpdatedAt = T0 });
        foreach (var t in new[] { "good", "dead", "flaky" })
        {
            await s.PutDeviceAsync(new Device { Token = t, ProfileKey = "k1", Platform = Platforms.Ios, LastUsed = T0, CreatedAt = T0, UpdatedAt = T0 });
        }

        await s.CommitAsync();
    }

    public async Task DisposeAsync()
    {
        if (_store is IAsyncDisposable d)
        {
            await d.DisposeAsync();
        }

        await DeleteStorageAsync();
    }

    private SendStage Stage(RetryPolicy? retry = null) =>
        new(_store, new ChannelSet(_push, _push, _sms, new SandboxProvider(), _clock), new SendOptions { Retry = retry ?? new RetryPolicy() });

    private static Message Push(string id, params string[] tokens) => new()
    {
        Id = id,
        ProfileKey = "k1",
        InstanceId = "i1",
        JourneyId = "cart",
        StepId = "push",
        Channel = Channel.Push,
        Status = MessageStatus.Drafted,
        Ready = true,
        CreatedAt = T0,
        Content = new JsonObject { ["title"] = "Your cart", ["body"] = "is waiting", ["deep_link"] = "shop://cart/1", ["data"] = new JsonObject { ["cart_id"] = "c1" } },
        Recipients = [.. tokens],
        Platforms = [.. tokens.Select(_ => Platforms.Ios)],
        History = [new StatusChange(MessageStatus.Drafted, T0, null)],
    };

    private static Message Sms(string id, string to, string body) => new()
    {
        Id = id,
        ProfileKey = "k1",
        InstanceId = "i1",
        JourneyId = "cart",
        StepId = "sms",
        Channel = Channel.Sms,
        Status = MessageStatus.Drafted,
        Ready = true,
        CreatedAt = T0,
        Recipients = [to],
        Content = new JsonObject { ["body"] = body },
    };

    private async Task AddAsync(params Message[] messages)
    {
        await using var s = await _store.OpenSessionAsync();
        foreach (var m in messages)
        {
            await s.TryAddMessageAsync(m);
        }

        await s.CommitAsync();
    }

    private async Task<Message> GetAsync(string id) => (await _store.GetMessageAsync(id))!;

    [Fact]
    public async Task Sandbox_RecordsTheRenderedMessageAndReportsItDelivered()
    {
        await AddAsync(Push("m1", "good"));
        var stage = new SendStage(_store, ChannelSet.Sandbox(_clock));

        Assert.Equal(1, await stage.RunReadyAsync(T0, 10, default));

        // Sent, then delivered through the status model, with a delivery event each: reports, log and status agree.
        var m = await GetAsync("m1");
        Assert.Equal(MessageStatus.Delivered, m.Status);
        Assert.Equal([MessageStatus.Drafted, MessageStatus.Sent, MessageStatus.Delivered], m.History.Select(h => h.Status));
        Assert.Equal("sandbox", m.History[^1].Source);
        var events = await _store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0, T0.AddMinutes(1), 10));
        Assert.Equal([MessageStatus.Delivered, MessageStatus.Sent], events.Select(e => e.Metric).Order(StringComparer.Ordinal));
        Assert.All(events, e => Assert.Equal(("m1", "ios", "good"), (e.MessageId, e.Platform, e.Recipient)));
        Assert.False(m.Ready);
        Assert.Equal("sandbox", Assert.Single(m.Deliveries).Provider);
        var o = Assert.Single(await _store.GetOutboxAsync(10));
        Assert.Equal("Your cart", (string?)o.Content["title"]);
        Assert.Equal(0, await stage.RunReadyAsync(T0.AddHours(1), 10, default));
    }

    [Fact]
    public async Task Sandbox_EverySmsAndEmailDelivered_PushLeftToTheAppWhenItReports()
    {
        var sandbox = new SandboxProvider(reportPushDelivered: false);
        var email = new Message
        {
            Id = "m3",
            ProfileKey = "k1",
            InstanceId = "i1",
            JourneyId = "cart",
            StepId = "email",
            Channel = Channel.Email,
            Status = MessageStatus.Drafted,
            Ready = true,
            CreatedAt = T0,
            Recipients = ["u1@example.com"],
            Content = new JsonObject { ["subject"] = "Hi", ["html"] = "<p>Hi</p>" },
        };
        await AddAsync(Push("m1", "good"), Sms("m2", "+15005550006", "Your cart"), email);
        var stage = new SendStage(_store, new ChannelSet(sandbox, sandbox, sandbox, sandbox, _clock));

        Assert.Equal(3, await stage.RunReadyAsync(T0, 10, default));

        Assert.Equal(MessageStatus.Sent, (await GetAsync("m1")).Status); // the app's SDK reports it
        Assert.Equal(MessageStatus.Delivered, (await GetAsync("m2")).Status);
        Assert.Equal(MessageStatus.Delivered, (await GetAsync("m3")).Status);
        var delivered = (await _store.GetDeliveryEventsAsync(new DeliveryEventQuery(T0, T0.AddMinutes(1), 10))).Where(e => e.Metric == MessageStatus.Delivered);
        Assert.Equal(["email", "sms"], delivered.Select(e => e.Channel).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Sent_KeepsTheProviderIdAndThePayloadCarriesTheContent()
    {
        await AddAsync(Push("m1", "good"));

        await Stage().RunReadyAsync(T0, 10, default);

        var m = await GetAsync("m1");
        Assert.Equal(MessageStatus.Sent, m.Status);
        Assert.Equal(T0, m.SentAt);
        var d = Assert.Single(m.Deliveries);
        Assert.Equal((DeliveryStatus.Sent, "apns", "id-good"), (d.Status, d.Provider, d.ProviderId));
        var call = Assert.Single(_push.Calls);
        Assert.Equal(("m1", "good", "Your cart", "is waiting", "shop://cart/1"), (call.MessageId, call.Token, call.Content.Title, call.Content.Body, call.Content.DeepLink));
        Assert.Equal("c1", call.Content.Data!["cart_id"]);
    }

    [Fact]
    public async Task InvalidToken_RemovesTheDeviceAndALaterSendIsDroppedWithoutACall()
    {
        await AddAsync(Push("m1", "good", "dead"));

        await Stage().RunReadyAsync(T0, 10, default);

        var m = await GetAsync("m1");
        Assert.Equal(MessageStatus.Sent, m.Status); // one device got it
        var dead = m.Deliveries.Single(d => d.Recipient == "dead");
        Assert.Equal((DeliveryStatus.Bounced, MessageReason.InvalidToken, "Unregistered"), (dead.Status, dead.Reason, dead.Detail));
        Assert.Null(await _store.GetDeviceAsync("dead"));
        Assert.NotNull(await _store.GetDeviceAsync("good"));
        Assert.Equal(T0, await _store.GetTokenBounceAsync("dead"));
        var removed = Assert.Single(await _store.GetRecentEventsAsync("k1", 10), e => e.Name == "device_removed");
        Assert.Equal(("invalid_token", "Unregistered"), ((string?)removed.Data["reason"], (string?)removed.Data["detail"]));

        _push.Calls.Clear();
        await AddAsync(Push("m2", "dead"));
        await Stage().RunReadyAsync(T0.AddMinutes(1), 10, default);

        var m2 = await GetAsync("m2");
        Assert.Equal((MessageStatus.Dropped, MessageReason.InvalidToken), (m2.Status, m2.Reason));
        Assert.Empty(_push.Calls);
    }

    [Fact]
    public async Task AllTokensBounced_MarksBouncedAndFallsBackToTheNextChannel()
    {
        var m = Push("m1", "dead");
        m.Fallbacks = [new FallbackDraft(Channel.Sms, new JsonObject { ["body"] = "Your cart is waiting" }, ["+15005550006"], [])];
        await AddAsync(m);

        await Stage().RunReadyAsync(T0, 10, default);

        var bounced = await GetAsync("m1");
        Assert.Equal((MessageStatus.Bounced, MessageReason.InvalidToken, "m1.sms"), (bounced.Status, bounced.Reason, bounced.FallbackMessageId));
        var sms = await GetAsync("m1.sms");
        Assert.Equal((Channel.Sms, MessageStatus.Drafted, "m1"), (sms.Channel, sms.Status, sms.FallbackOf));
        Assert.Equal(MessageReason.InvalidToken, (string?)sms.FallbackReasons["push"]);

        await Stage().RunReadyAsync(T0, 10, default);

        Assert.Equal(MessageStatus.Sent, (await GetAsync("m1.sms")).Status);
        Assert.Equal("Your cart is waiting", Assert.Single(_sms.SmsCalls).Body);
    }

    [Fact]
    public async Task FallbackToSms_InsideQuietHours_WaitsForTheirEnd()
    {
        var night = new DateTimeOffset(2026, 3, 2, 22, 30, 0, TimeSpan.Zero);
        var m = Push("m1", "dead");
        m.Fallbacks = [new FallbackDraft(Channel.Sms, new JsonObject { ["body"] = "Your cart is waiting" }, ["+15005550006"], [])];
        await AddAsync(m);
        var quiet = new Schedule("UTC", new QuietHours(new TimeOnly(21, 0), new TimeOnly(8, 0)));
        var stage = new SendStage(_store, new ChannelSet(_push, _push, _sms, new SandboxProvider(), _clock), new SendOptions { QuietHours = quiet });

        await stage.RunReadyAsync(night, 10, default);

        var sms = await GetAsync("m1.sms");
        Assert.Equal(new DateTimeOffset(2026, 3, 3, 8, 0, 0, TimeSpan.Zero), sms.NextAttemptAt);
        Assert.Equal(0, await stage.RunReadyAsync(night.AddHours(9), 10, default)); // 07:30
        Assert.Empty(_sms.SmsCalls);
        Assert.Equal(1, await stage.RunReadyAsync(night.AddHours(9.5), 10, default)); // 08:00
        Assert.Equal(MessageStatus.Sent, (await GetAsync("m1.sms")).Status);
    }

    [Fact]
    public async Task FallbackToSms_OverTheSmsCap_IsUndeliverableFrequencyCapped()
    {
        // An SMS went out an hour ago; the global cap allows one per 24 h.
        var earlier = new Message
        {
            Id = "earlier",
            ProfileKey = "k1",
            InstanceId = "i0",
            JourneyId = "shipping",
            StepId = "sms",
            Channel = Channel.Sms,
            Status = MessageStatus.Sent,
            CreatedAt = T0.AddHours(-1),
            Recipients = ["+15005550006"],
        };
        var m = Push("m1", "dead");
        m.Fallbacks = [new FallbackDraft(Channel.Sms, new JsonObject { ["body"] = "Your cart is waiting" }, ["+15005550006"], [])];
        await AddAsync(earlier, m);
        var caps = new FrequencyCaps([new CapRule(Channel.Sms, 1, TimeSpan.FromHours(24))]);
        var stage = new SendStage(_store, new ChannelSet(_push, _push, _sms, new SandboxProvider(), _clock), new SendOptions { Caps = caps });

        await stage.RunReadyAsync(T0, 10, default);

        var sms = await GetAsync("m1.sms");
        Assert.Equal((MessageStatus.Undeliverable, MessageReason.FrequencyCapped, false), (sms.Status, sms.Reason, sms.Ready));
        Assert.Equal(0, await stage.RunReadyAsync(T0.AddMinutes(1), 10, default));
        Assert.Empty(_sms.SmsCalls);
    }

    [Fact]
    public async Task Transient_RetriesAfterTheBackoffAndOnlyThePendingRecipient()
    {
        _push.FailTimes["flaky"] = 1;
        await AddAsync(Push("m1", "good", "flaky"));

        await Stage().RunReadyAsync(T0, 10, default);

        var m = await GetAsync("m1");
        Assert.Equal(MessageStatus.Attempted, m.Status);
        Assert.True(m.Ready);
        Assert.InRange(m.NextAttemptAt!.Value, T0.AddSeconds(15), T0.AddSeconds(30)); // 30 s step, 50-100 % jitter
        Assert.Equal(0, await Stage().RunReadyAsync(T0.AddSeconds(14), 10, default));

        await Stage().RunReadyAsync(T0.AddMinutes(1), 10, default);

        m = await GetAsync("m1");
        Assert.Equal(MessageStatus.Sent, m.Status);
        Assert.Equal(1, _push.Calls.Count(c => c.Token == "good"));
        Assert.Equal(2, _push.Calls.Count(c => c.Token == "flaky"));
        Assert.All(m.Deliveries, d => Assert.Equal(DeliveryStatus.Sent, d.Status));
        Assert.Contains(m.History, h => h.Status == MessageStatus.Attempted && h.Reason == DeliveryReason.ProviderUnavailable);
    }

    [Fact]
    public async Task RateLimited_WaitsAtLeastRetryAfter()
    {
        _push.RateLimit = TimeSpan.FromMinutes(10);
        await AddAsync(Push("m1", "good"));

        await Stage().RunReadyAsync(T0, 10, default);

        Assert.Equal(T0.AddMinutes(10), (await GetAsync("m1")).NextAttemptAt);
    }

    [Fact]
    public async Task Transient_EveryTime_FailsWithTheReasonAfterTheLastAttempt()
    {
        _push.FailTimes["flaky"] = 100;
        await AddAsync(Push("m1", "flaky"));
        var stage = Stage(new RetryPolicy(MaxAttempts: 3));

        var now = T0;
        for (var i = 0; i < 3; i++)
        {
            await stage.RunReadyAsync(now, 10, default);
            now = now.AddHours(2);
        }

        var m = await GetAsync("m1");
        Assert.Equal((MessageStatus.Failed, DeliveryReason.ProviderUnavailable), (m.Status, m.Reason));
        Assert.False(m.Ready);
        Assert.Equal(3, _push.Calls.Count);
        Assert.Equal(3, m.Attempts);
    }

    [Fact]
    public async Task Permanent_FailsAtOnceWithTheProvidersCode()
    {
        _push.Permanent["good"] = "BadTopic";
        await AddAsync(Push("m1", "good"));

        await Stage().RunReadyAsync(T0, 10, default);

        var m = await GetAsync("m1");
        Assert.Equal((MessageStatus.Failed, DeliveryReason.ProviderRejected), (m.Status, m.Reason));
        Assert.Equal("BadTopic", Assert.Single(m.Deliveries).Detail);
    }

    [Fact]
    public async Task ProviderThatThrows_IsRetriedNotLost()
    {
        _push.Throw = true;
        await AddAsync(Push("m1", "good"));

        await Stage().RunReadyAsync(T0, 10, default);

        var m = await GetAsync("m1");
        Assert.Equal(MessageStatus.Attempted, m.Status);
        Assert.True(m.Ready);
    }

    [Fact]
    public async Task CircuitBreaker_OpensAfterFiveFailuresAndStopsCallingTheProvider()
    {
        _push.FailTimes["flaky"] = 1000;
        await AddAsync([.. Enumerable.Range(0, 20).Select(i => Push($"m{i:D2}", "flaky"))]);
        var stage = new SendStage(_store, new ChannelSet(_push, _push, _sms, new SandboxProvider(), _clock), new SendOptions { Concurrency = 1 });

        await stage.RunReadyAsync(T0, 100, default);

        Assert.Equal(5, _push.Calls.Count);
        var later = await GetAsync("m19");
        var skipped = Assert.Single(later.Deliveries);
        Assert.Equal(DeliveryReason.CircuitOpen, skipped.Reason);
        Assert.Equal("open", stage.Channels.Breaker("apns").State);

        // Passed over, not tried: no attempt is spent, and it is due again when the breaker lets calls through.
        Assert.Equal((0, 1, true, MessageStatus.Attempted), (skipped.Attempts, skipped.Skips, later.Ready, later.Status));
        Assert.Equal(T0.AddSeconds(30), later.NextAttemptAt);

        // After 30 s one trial call goes through; it fails and the circuit stays open.
        _clock.Advance(TimeSpan.FromSeconds(31));
        await stage.RunReadyAsync(T0.AddHours(2), 100, default);
        Assert.Equal(6, _push.Calls.Count);
    }

    [Fact]
    public async Task ReRegisteredToken_AfterABounce_IsSentToAgain()
    {
        await using (var s = await _store.OpenSessionAsync())
        {
            await s.MarkTokenBouncedAsync("good", T0.AddDays(-1), "Unregistered");
            await s.CommitAsync();
        }

        await AddAsync(Push("m1", "good"));
        await Stage().RunReadyAsync(T0, 10, default);

        Assert.Equal(MessageStatus.Sent, (await GetAsync("m1")).Status);
    }

    [Fact]
    public async Task DeviceMovedToAnotherPerson_IsDroppedAsNoDevice()
    {
        await using (var s = await _store.OpenSessionAsync())
        {
            await s.PutDeviceAsync(new Device { Token = "good", ProfileKey = "k2", Platform = Platforms.Ios, LastUsed = T0, CreatedAt = T0, UpdatedAt = T0 });
            await s.CommitAsync();
        }

        await AddAsync(Push("m1", "good"));
        await Stage().RunReadyAsync(T0, 10, default);

        Assert.Equal((MessageStatus.Dropped, MessageReason.NoDevice), ((await GetAsync("m1")).Status, (await GetAsync("m1")).Reason));
        Assert.Empty(_push.Calls);
    }

    [Fact]
    public async Task TwoSendStagesAtOnce_CallTheProviderOncePerMessage()
    {
        _push.Delay = TimeSpan.FromMilliseconds(20);
        await AddAsync([.. Enumerable.Range(0, 100).Select(i => Push($"m{i:D3}", "good"))]);

        var counts = await Task.WhenAll(Stage().RunReadyAsync(T0, 1000, default), Stage().RunReadyAsync(T0, 1000, default), Stage().RunReadyAsync(T0, 1000, default));

        Assert.Equal(100, counts.Sum());
        Assert.Equal(100, _push.Calls.Count);
        Assert.Equal(100, _push.Calls.Select(c => c.MessageId).Distinct().Count());
        Assert.Equal(0, await Stage().RunReadyAsync(T0.AddDays(1), 1000, default));
    }

    [Fact]
    public async Task LaneWaitLongerThanTheClaim_EveryMessageReachesTheProviderOnce()
    {
        // One call slot, a one-minute claim and 20 pushes: the first two calls are held at the provider while the clock
        // moves past the claims of the 18 messages still waiting for the lane, and a second send stage runs then (as the
        // same stage's next round would). Each message must reach the provider once, whichever stage sends it.
        var claim = TimeSpan.FromMinutes(1);
        var first = new TaskCompletionSource();
        var second = new TaskCompletionSource();
        _push.HoldCalls = [first.Task, second.Task];
        await AddAsync([.. Enumerable.Range(0, 20).Select(i => Push($"m{i:D3}", "good"))]);
        var channels = new ChannelSet(_push, _push, _sms, new SandboxProvider(), _clock);
        var slow = new SendStage(_store, channels, new SendOptions { Concurrency = 1, ClaimFor = claim });

        var run = slow.RunUntilIdleAsync(_clock.GetUtcNow, 100, default);
        await WaitForCallsAsync(1, run);

        // The first call is out; the second becomes the call in flight, fenced 50 s in.
        _clock.Advance(TimeSpan.FromSeconds(50));
        first.SetResult();
        await WaitForCallsAsync(2, run);

        // 70 s in: the waiting messages' first claims have run out (unless the slow stage renewed them meanwhile).
        _clock.Advance(TimeSpan.FromSeconds(20));
        var other = new SendStage(_store, channels, new SendOptions { Concurrency = 8, ClaimFor = claim });
        var otherRun = other.RunReadyAsync(_clock.GetUtcNow(), 100, default);

        second.SetResult();
        var taken = await otherRun;
        await run;

        var perMessage = _push.Calls.GroupBy(c => c.MessageId).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(20, perMessage.Count);
        Assert.All(perMessage, p => Assert.True(p.Value == 1, $"{p.Key} reached the provider {p.Value} times ({taken} taken by the second stage)"));
        Assert.All(await Task.WhenAll(Enumerable.Range(0, 20).Select(i => GetAsync($"m{i:D3}"))), m => Assert.Equal(MessageStatus.Sent, m.Status));
    }

    [Fact]
    public async Task RenewedClaim_IsTheOnlyOneThatRecords_AndAClaimTakenByAnotherCannotBeRenewed()
    {
        await AddAsync(Push("m1", "good"), Push("m2", "good"));
        var (c1, c2) = (T0.AddMinutes(1), T0.AddMinutes(2));
        await using (var s = await _store.OpenSessionAsync())
        {
            Assert.True(await s.TryClaimMessageAsync("m1", T0, c1));
            Assert.False(await s.TryRenewClaimAsync("m1", "k1", c2, c2));
            Assert.True(await s.TryRenewClaimAsync("m1", "k1", c1, c2));
            await s.CommitAsync();
        }

        var m1 = await GetAsync("m1");
        m1.Ready = false;
        m1.Status = MessageStatus.Sent;
        await using (var s = await _store.OpenSessionAsync())
        {
            // Not due while renewed; the old value no longer records.
            Assert.False(await s.TryClaimMessageAsync("m1", c1.AddSeconds(30), c1.AddMinutes(5)));
            Assert.False(await s.TryRecordSendOutcomeAsync(m1, c1));
            Assert.True(await s.TryRecordSendOutcomeAsync(m1, c2));

            // m2's claim runs out and another stage takes it: the first holder can neither renew nor record.
            Assert.True(await s.TryClaimMessageAsync("m2", T0, c1));
            Assert.True(await s.TryClaimMessageAsync("m2", c1, c2.AddMinutes(1)));
            Assert.False(await s.TryRenewClaimAsync("m2", "k1", c1, c2));
            Assert.False(await s.TryRecordSendOutcomeAsync(await GetAsync("m2"), c1));
            await s.CommitAsync();
        }

        Assert.Equal(MessageStatus.Sent, (await GetAsync("m1")).Status);
        Assert.False(await ClaimedBy("m1", c2));
    }

    private async Task<bool> ClaimedBy(string id, DateTimeOffset claim)
    {
        await using var s = await _store.OpenSessionAsync();
        return await s.TryRenewClaimAsync(id, "k1", claim, claim);
    }

    /// <summary>Waits (without a deadline of its own: the test's timeout applies) until the provider has had <paramref name="n"/> calls.</summary>
    private async Task WaitForCallsAsync(int n, Task run)
    {
        while (_push.Calls.Count < n)
        {
            Assert.False(run.IsCompleted && _push.Calls.Count < n, $"the send stage ended after {_push.Calls.Count} calls");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task AttemptCutOff_BeforeItsOutcomeWasRecorded_IsDueAgainAfterTheClaim()
    {
        await AddAsync(Push("m1", "good"));
        await using (var s = await _store.OpenSessionAsync())
        {
            // A send stage took it and died before recording anything.
            Assert.True(await s.TryClaimMessageAsync("m1", T0, T0.AddMinutes(5)));
            await s.CommitAsync();
        }

        Assert.Equal(0, await Stage().RunReadyAsync(T0.AddMinutes(4), 10, default));
        Assert.Equal(1, await Stage().RunReadyAsync(T0.AddMinutes(5), 10, default));
        Assert.Equal(MessageStatus.Sent, (await GetAsync("m1")).Status);
    }

    [Fact]
    public async Task HangingBadTokens_DoNotHoldUpTheGoodOnes()
    {
        // 8 calls in flight; 6 of them hang on bad tokens. The 50 good pushes still go out and are recorded meanwhile.
        var release = new TaskCompletionSource();
        _push.Hang = ("flaky", release.Task);
        await AddAsync([.. Enumerable.Range(0, 6).Select(i => Push($"bad{i}", "flaky")), .. Enumerable.Range(0, 50).Select(i => Push($"good{i:D2}", "good"))]);
        var stage = new SendStage(_store, new ChannelSet(_push, _push, _sms, new SandboxProvider(), _clock), new SendOptions { Concurrency = 8 });

        var run = stage.RunReadyAsync(T0, 100, default);
        // The bad calls hang until released, so this bound only has to outlast a loaded machine (and the Cosmos emulator).
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while ((await Task.WhenAll(Enumerable.Range(0, 50).Select(i => GetAsync($"good{i:D2}")))).Any(m => m.Status != MessageStatus.Sent))
        {
            Assert.True(DateTime.UtcNow < deadline, "good pushes were held up by hanging ones");
            Assert.False(run.IsCompleted);
            await Task.Delay(20);
        }

        Assert.Equal(MessageStatus.Drafted, (await GetAsync("bad0")).Status);
        release.SetResult();
        Assert.Equal(56, await run);
        Assert.Equal(MessageStatus.Attempted, (await GetAsync("bad0")).Status);
    }

    [Fact]
    public async Task LongTitle_IsSentWithALintWarning()
    {
        var m = Push("m1", "good");
        m.Content["title"] = new string('x', 80);
        await AddAsync(m);

        await Stage().RunReadyAsync(T0, 10, default);

        Assert.Contains((await GetAsync("m1")).Warnings, w => w.StartsWith("push_title_truncated", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LongSms_RecordsItsSegmentsWithAWarning()
    {
        await AddAsync(Sms("s1", "+15005550006", string.Concat(Enumerable.Repeat("Your cart 🛒 is waiting. ", 12))));

        await Stage().RunReadyAsync(T0, 10, default);

        var sent = await GetAsync("s1");
        Assert.Equal(MessageStatus.Sent, sent.Status);
        Assert.Equal(5, sent.Segments); // 12 x 26 UTF-16 units = 312 > 4 x 67 in UCS-2
        Assert.Contains(sent.Warnings, w => w.StartsWith("sms_segments: the body takes 5 segments (Ucs2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SmsRefusedWith21610_ClearsSmsConsent()
    {
        await using (var s = await _store.OpenSessionAsync())
        {
            var p = (await s.GetProfileAsync("k1"))!;
            ProfileRules.ApplyAttributes(p, new JsonObject { ["sms_consent"] = true, ["phone"] = "+15005550009" }, T0.AddDays(-1), "test", null, 300);
            await s.PutProfileAsync(p);
            await s.CommitAsync();
        }

        await AddAsync(Sms("s1", "+15005550009", "Your cart is waiting"));

        await Stage().RunReadyAsync(T0, 10, default);

        var m = await GetAsync("s1");
        Assert.Equal((MessageStatus.Failed, DeliveryReason.RecipientUnsubscribed), (m.Status, m.Reason));
        var profile = (await _store.GetProfileAsync("k1"))!;
        Assert.False(profile.Consent.SmsConsent);
        Assert.Contains(profile.ConsentHistory, c => c.Source == "twilio:21610");
    }

    /// <summary>A provider that answers by recipient: "dead" is unregistered, "flaky" fails transiently N times.</summary>
    private sealed class Scripted(string name) : IPushProvider, ISmsProvider
    {
        public ConcurrentBag<PushRequest> Calls { get; } = [];

        public ConcurrentBag<SmsRequest> SmsCalls { get; } = [];

        public ConcurrentDictionary<string, int> FailTimes { get; } = new();

        public Dictionary<string, string> Permanent { get; } = [];

        public TimeSpan? RateLimit { get; set; }

        public bool Throw { get; set; }

        public TimeSpan Delay { get; set; }

        /// <summary>Calls for this token wait for the task, then fail transiently (a provider timing out).</summary>
        public (string Token, Task Until)? Hang { get; set; }

        /// <summary>The first calls wait for these tasks, one each in call order, then are answered as usual (a slow provider).</summary>
        public Task[] HoldCalls { get; set; } = [];

        private int _calls;

        public string Name => name;

        public bool ReportsDelivery => false;

        public async Task<SendOutcome> SendAsync(PushRequest r, CancellationToken ct)
        {
            Calls.Add(r);
            if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay, ct);
            }

            if (Interlocked.Increment(ref _calls) - 1 is var n && n < HoldCalls.Length)
            {
                await HoldCalls[n];
            }

            if (Hang is { } hang && hang.Token == r.Token)
            {
                await hang.Until;
                return SendOutcome.Transient(DeliveryReason.Timeout, "no answer in 10s");
            }

            return Answer(r);
        }

        private SendOutcome Answer(PushRequest r)
        {
            if (Throw)
            {
                throw new InvalidOperationException("provider bug");
            }

            if (RateLimit is { } wait)
            {
                return SendOutcome.RateLimited(wait, "TooManyRequests");
            }

            if (r.Token == "dead")
            {
                return SendOutcome.InvalidToken("Unregistered");
            }

            if (Permanent.TryGetValue(r.Token, out var code))
            {
                return SendOutcome.Permanent(DeliveryReason.ProviderRejected, code);
            }

            if (FailTimes.TryGetValue(r.Token, out var n) && n > 0)
            {
                FailTimes[r.Token] = n - 1;
                return SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "503 ServiceUnavailable");
            }

            return SendOutcome.Sent("id-" + r.Token);
        }

        public Task<SendOutcome> SendAsync(SmsRequest r, CancellationToken ct)
        {
            SmsCalls.Add(r);
            return Task.FromResult(r.To == "+15005550009"
                ? SendOutcome.Permanent(DeliveryReason.RecipientUnsubscribed, "21610")
                : SendOutcome.Sent("SM" + r.MessageId));
        }
    }
}
