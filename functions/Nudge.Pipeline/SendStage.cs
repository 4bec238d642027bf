using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Delivery;
using Nudge.Delivery.Resilience;
using Nudge.Delivery.Sandbox;
using Nudge.Delivery.Twilio;

namespace Nudge.Pipeline;

/// <summary>Settings of the send stage.</summary>
public sealed record SendOptions
{
    /// <summary>Provider calls in flight at once: 128. A slow or bad recipient holds one slot, never the others.</summary>
    public int Concurrency { get; init; } = 128;

    public RetryPolicy Retry { get; init; } = new();

    /// <summary>
    /// How long a message taken for an attempt stays away from other send stages without renewal: 5 min. The stage renews
    /// the claims it holds at half-time and fences each call with one more renewal; if the process dies during the
    /// attempt, the message is due again after this.
    /// </summary>
    public TimeSpan ClaimFor { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Nudge's public address: Twilio status callbacks and email unsubscribe links point there.</summary>
    public Uri? PublicBaseUrl { get; init; }

    /// <summary>
    /// Quiet hours in each person's time zone (the journeys' schedule). A fallback message the send stage creates for
    /// push or SMS waits for the end of quiet hours, as the step's own send would have; null: no quiet hours.
    /// </summary>
    public Schedule? QuietHours { get; init; }

    /// <summary>
    /// The global frequency caps, and each journey's own (by journey id). A fallback message the send stage creates is
    /// held to them like the step's own send: over a cap it is recorded undeliverable (frequency_capped), not sent.
    /// </summary>
    public FrequencyCaps? Caps { get; init; }

    /// <summary>A journey's own caps, by journey id; null: none.</summary>
    public Func<string, IReadOnlyList<CapRule>>? JourneyCaps { get; init; }

    /// <summary>An SMS over this many segments is sent with a warning: 4.</summary>
    public int MaxSmsSegments { get; init; } = 4;

    /// <summary>Extra headers for an email (List-Unsubscribe on marketing mail); null adds none.</summary>
    public Func<Message, IReadOnlyDictionary<string, string>>? EmailHeaders { get; init; }

    /// <summary>Rewrites an email's HTML just before it is sent (open pixel, signed click links); null sends it as rendered.</summary>
    public Func<Message, string, string>? EmailHtml { get; init; }
}

/// <summary>
/// The send stage: hands ready messages to their providers, records each recipient's outcome, removes dead push tokens,
/// schedules retries, and falls back to the next channel of the step's chain when nothing could be delivered.
/// Provider calls run outside the store transaction, in parallel; their outcomes are committed in groups as they come
/// back, so a crash re-sends only what was in flight. Idempotent: a message no longer ready is left alone.
/// </summary>
public sealed class SendStage(IStore store, ChannelSet channels, SendOptions? options = null)
{
    /// <summary>Device attribute naming the APNs environment of its token ("production" or "sandbox").</summary>
    public const string ApnsEnvironmentAttribute = "apns_environment";

    /// <summary>
    /// Times a recipient may be passed over while its provider's circuit is open before it fails (circuit_open): 100. The
    /// breaker stays open 30 s, doubling to 5 min, with a 1 s wait while its trial call is out, so that is at least half an
    /// hour of outage.
    /// </summary>
    private const int MaxSkips = 100;

    /// <summary>Messages started (waiting for their lane, or in a call) at a time, in multiples of the concurrency: 4.</summary>
    private const int Backlog = 4;

    /// <summary>Most outcomes recorded in one commit: 512.</summary>
    private const int GroupCommit = 512;

    /// <summary>Longest an outcome waits for others to share its commit: 20 ms.</summary>
    private static readonly TimeSpan GroupWindow = TimeSpan.FromMilliseconds(20);

    private readonly SendOptions _o = options ?? new SendOptions();
    private readonly Random _random = new();

    public ChannelSet Channels => channels;

    /// <summary>Handles up to <paramref name="limit"/> messages due at <paramref name="now"/>; returns how many.</summary>
    public Task<int> RunReadyAsync(DateTimeOffset now, int limit, CancellationToken ct) => RunAsync(() => now, limit, once: true, ct);

    /// <summary>
    /// Handles every message that is due, in rounds of <paramref name="batch"/>, until none is left; returns how many.
    /// Rounds overlap: the next round is claimed and its calls start as slots free up, while the last calls of the round
    /// before are still out, so the providers always have <see cref="SendOptions.Concurrency"/> calls in flight.
    /// </summary>
    public Task<int> RunUntilIdleAsync(Func<DateTimeOffset> clock, int batch, CancellationToken ct) => RunAsync(clock, batch, once: false, ct);

    private async Task<int> RunAsync(Func<DateTimeOffset> clock, int batch, bool once, CancellationToken ct)
    {
        var done = System.Threading.Channels.Channel.CreateUnbounded<Attempt>();
        var slots = new SemaphoreSlim(_o.Concurrency, _o.Concurrency);

        // Each lane (channel, and platform for push: one provider) may hold all the call slots but an eighth, so a
        // provider that hangs until its timeouts leaves those to the others, while hanging tokens of one provider still
        // leave most of its lane to its good ones. Messages wait for their lane off the claiming loop (it never waits
        // behind one lane), up to Backlog of them at a time.
        var laneSlots = Math.Max(1, _o.Concurrency - Math.Max(1, _o.Concurrency / 8));
        var lanes = new Dictionary<string, SemaphoreSlim>(StringComparer.Ordinal);
        var backlog = Backlog * _o.Concurrency;
        var started = new SemaphoreSlim(backlog, backlog);
        var claims = new SendClaims(store, _o.ClaimFor, clock);
        var recording = Task.Run(() => RecordAsync(done.Reader, claims), CancellationToken.None);
        var total = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var now = clock();

                // Claim them (one statement, one commit), so a send stage running beside this one never calls a provider for
                // the same message; a message whose attempt is cut off by a crash is due again when the claim runs out.
                var claim = now + _o.ClaimFor;
                IReadOnlyList<Message> ready;
                await using (var s = await store.OpenSessionAsync(ct))
                {
                    ready = await s.ClaimReadyMessagesAsync(now, claim, batch);
                    await s.CommitAsync();
                }

                if (ready.Count == 0)
                {
                    break;
                }

                // Held from here: renewed while the messages wait and their calls are out, fenced before each call.
                claims.Hold(ready, claim);

                // The round's provider calls start inside its span, so their spans are its children.
                using var span = PipelineTelemetry.StartStage(PipelineTelemetry.Send, ready.Count);
                var round = await ReadRoundAsync(ready, ct);
                total += ready.Count;
                foreach (var m in ready)
                {
                    // Not cancellable: a claimed message is attempted (a shutdown cancels its provider call instead).
                    await started.WaitAsync(CancellationToken.None);
                    var lane = Lane(m);
                    if (!lanes.TryGetValue(lane, out var laneSlot))
                    {
                        lanes[lane] = laneSlot = new SemaphoreSlim(laneSlots, laneSlots);
                    }

                    _ = Task.Run(() => AttemptInLaneAsync(m, round, now, claims, done.Writer, laneSlot, slots, started, ct), CancellationToken.None);
                }

                if (once)
                {
                    break;
                }
            }
        }
        finally
        {
            // Every call in flight comes back (its outcome is recorded even when the caller is cancelling: the
            // provider already has it), then the recorder finishes.
            for (var n = 0; n < backlog; n++)
            {
                await started.WaitAsync(CancellationToken.None);
            }

            done.Writer.TryComplete();
            await recording;
            await claims.DisposeAsync();
            slots.Dispose();
            started.Dispose();
            foreach (var l in lanes.Values)
            {
                l.Dispose();
            }
        }

        return total;
    }

    /// <summary>
    /// Handles the one message <paramref name="messageId"/> (the Functions send trigger carries one id per message): takes
    /// it with <see cref="IStoreSession.TryClaimMessageAsync"/>, then attempts it and records the outcome through the
    /// same code as the batch path (retries, dead tokens, fallback). Returns false, having changed nothing, when the
    /// message is not ready or not due at <paramref name="now"/>: handled already, waiting to retry, or claimed by
    /// another send stage. A retry it schedules is due again in the store, where the ready-messages sweep finds it.
    /// </summary>
    /// <remarks>A store failure (claiming or recording) propagates; a claimed message is due again when its claim runs out.</remarks>
    public async Task<bool> RunOneAsync(string messageId, DateTimeOffset now, CancellationToken ct = default)
    {
        var claim = now + _o.ClaimFor;
        using var span = PipelineTelemetry.StartStage(PipelineTelemetry.Send, 1);
        Message? m;
        await using (var s = await store.OpenSessionAsync(ct))
        {
            if (!await s.TryClaimMessageAsync(messageId, now, claim))
            {
                return false;
            }

            m = await s.GetMessageAsync(messageId);
            await s.CommitAsync();
        }

        if (m is null)
        {
            return false;
        }

        // The claim's clock runs on from the caller's now, so a call that takes long has its claim renewed.
        var began = channels.Time.GetTimestamp();
        await using var claims = new SendClaims(store, _o.ClaimFor, () => now + channels.Time.GetElapsedTime(began));
        claims.Hold([m], claim);
        var attempt = await AttemptAsync(m, await ReadRoundAsync([m], ct), now, claims, ct);
        await ApplyAsync([attempt], claims);
        return true;
    }

    /// <summary>
    /// What the attempts of a round need from the store, read once for the whole round: the devices of its pushes and
    /// whether their tokens bounced, and the people the messages are for (their consent is checked again before a call).
    /// </summary>
    private sealed record Round(IReadOnlyDictionary<string, (Device Device, DateTimeOffset? BouncedAt)> Targets, IReadOnlyDictionary<string, Profile> People);

    private async Task<Round> ReadRoundAsync(IReadOnlyList<Message> ready, CancellationToken ct) => new(
        await store.GetPushTargetsAsync(PendingPushTokens(ready), ct),
        await store.GetProfilesAsync(ready.Select(m => m.ProfileKey).ToHashSet(StringComparer.Ordinal), ct));

    /// <summary>The push tokens still waiting for an outcome in <paramref name="messages"/>, for one read of their devices.</summary>
    private static HashSet<string> PendingPushTokens(IEnumerable<Message> messages) =>
        messages.Where(m => m.Channel == Channel.Push)
            .SelectMany(m => m.Deliveries.Count > 0
                ? m.Deliveries.Where(d => d.Status == DeliveryStatus.Pending).Select(d => d.Recipient)
                : m.Recipients)
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>One message's attempt, once its lane and then a call slot are free; all three are given back however it ends.</summary>
    private async Task AttemptInLaneAsync(Message m, Round round, DateTimeOffset now, SendClaims claims,
        System.Threading.Channels.ChannelWriter<Attempt> done, SemaphoreSlim lane, SemaphoreSlim slots, SemaphoreSlim started, CancellationToken ct)
    {
        try
        {
            await lane.WaitAsync(CancellationToken.None);
            try
            {
                await slots.WaitAsync(CancellationToken.None);
                try
                {
                    done.TryWrite(await AttemptAsync(m, round, now, claims, ct));
                }
                finally
                {
                    slots.Release();
                }
            }
            finally
            {
                lane.Release();
            }
        }
        finally
        {
            started.Release();
        }
    }

    /// <summary>The provider a message goes to, as far as the message tells: its channel, and for push its one platform.</summary>
    private static string Lane(Message m) =>
        m.Channel != Channel.Push ? ChannelName(m.Channel) : m.Platforms is [var platform] ? "push:" + platform : "push";

    /// <summary>
    /// Records outcomes as they come back. Each commit costs an fsync: outcomes gather for up to 20 ms (or 512 of them)
    /// and are recorded together.
    /// </summary>
    private async Task RecordAsync(System.Threading.Channels.ChannelReader<Attempt> done, SendClaims claims)
    {
        while (await done.WaitToReadAsync(CancellationToken.None))
        {
            var batch = new List<Attempt>();
            var gather = Stopwatch.StartNew();
            while (batch.Count < GroupCommit)
            {
                while (batch.Count < GroupCommit && done.TryRead(out var a))
                {
                    batch.Add(a);
                }

                var left = GroupWindow - gather.Elapsed;
                if (batch.Count >= GroupCommit || left <= TimeSpan.Zero || done.Completion.IsCompleted)
                {
                    break;
                }

                using var wait = new CancellationTokenSource(left);
                try
                {
                    if (!await done.WaitToReadAsync(wait.Token))
                    {
                        break;
                    }
                }
                catch (OperationCanceledException) when (wait.IsCancellationRequested)
                {
                    break;
                }
            }

            await ApplyAsync(batch, claims);
        }
    }

    /// <summary>One message's attempt: what each pending recipient came to, at <paramref name="Now"/>.</summary>
    /// <remarks>
    /// <paramref name="Blocked"/>: the person withdrew consent or was suppressed since the message was drafted (the reason);
    /// nothing was sent. <paramref name="Lost"/>: the claim ran out and another send run took the message before its call
    /// (the fence found it so); nothing was sent, and nothing is recorded: the message is the other run's.
    /// </remarks>
    private sealed record Attempt(Message Message, List<MessageDelivery> Deliveries, List<RecipientResult> Results, List<string> Warnings, DateTimeOffset Now,
        string? Blocked = null, bool Lost = false);

    /// <summary>What happened to one pending recipient: a provider outcome, or dropped before any call.</summary>
    /// <remarks><paramref name="AnsweredAt"/>: when the outcome came back, by the channels' clock (null without a call).</remarks>
    private sealed record RecipientResult(int Index, string Provider, SendOutcome? Outcome, string? DropReason, DateTimeOffset? AnsweredAt = null);

    private async Task<Attempt> AttemptAsync(Message m, Round round,
        DateTimeOffset now, SendClaims claims, CancellationToken ct)
    {
        var deliveries = Deliveries(m);
        var warnings = new List<string>();

        // Consent may have been withdrawn since the step drafted the message (STOP reply, unsubscribe, suppression): checked
        // again right before the call. Not cancellable, like the attempt itself.
        if (Withdrawn(round.People.GetValueOrDefault(m.ProfileKey), m) is { } blocked)
        {
            return new Attempt(m, deliveries, [], warnings, now, blocked);
        }

        var pending = deliveries.Select((d, i) => (d, i)).Where(x => x.d.Status == DeliveryStatus.Pending).ToList();

        // The fence: a provider is called only while this run's claim holds in the store. One that ran out (a long wait
        // for the lane on a loaded machine) may have been taken and sent by another run meanwhile.
        if (pending.Count > 0 && !await claims.FenceAsync(m))
        {
            return new Attempt(m, deliveries, [], warnings, now, Lost: true);
        }

        var results = pending.Count == 1
            ? [await SendOneAsync(m, pending[0].d, pending[0].i, round.Targets, warnings, ct)]
            : await Task.WhenAll(pending.Select(x => SendOneAsync(m, x.d, x.i, round.Targets, warnings, ct)));
        return new Attempt(m, deliveries, [.. results], warnings.Distinct().ToList(), now);
    }

    private async Task<RecipientResult> SendOneAsync(Message m, MessageDelivery d, int index,
        IReadOnlyDictionary<string, (Device Device, DateTimeOffset? BouncedAt)> targets, List<string> warnings, CancellationToken ct)
    {
        string provider;
        Func<Task<SendOutcome>> call;
        switch (m.Channel)
        {
            case Channel.Push:
                {
                    var (device, bounced) = targets.TryGetValue(d.Recipient, out var t) ? t : (null, await store.GetTokenBounceAsync(d.Recipient, ct));
                    if (device is null || device.ProfileKey != m.ProfileKey || (bounced is { } b && b >= device.UpdatedAt))
                    {
                        // A token that bounced before is dropped (Customer.io's "dropped"); one the person no longer has, too.
                        var reason = bounced is not null ? MessageReason.InvalidToken : MessageReason.NoDevice;
                        return new RecipientResult(index, "none", null, reason);
                    }

                    var content = PushContentOf(m.Content);
                    lock (warnings)
                    {
                        warnings.AddRange(PushLint.Check(content));
                    }

                    var p = channels.Push(device.Platform);
                    provider = p.Name;
                    var env = device.Attributes[ApnsEnvironmentAttribute] is JsonValue v && v.TryGetValue<string>(out var e) ? e : null;
                    call = () => p.SendAsync(new PushRequest(m.Id, d.Recipient, device.Platform, content, env), ct);
                    break;
                }

            case Channel.Sms:
                {
                    var body = Text(m.Content, "body") ?? "";
                    var count = SmsSegments.Count(body);
                    if (count.Segments > _o.MaxSmsSegments)
                    {
                        lock (warnings)
                        {
                            warnings.Add($"sms_segments: the body takes {count.Segments} segments ({count.Encoding}, {count.Characters} characters); more than {_o.MaxSmsSegments}");
                        }
                    }

                    var p = channels.Sms;
                    provider = p.Name;
                    var callback = _o.PublicBaseUrl is { } u ? new Uri(u, $"webhooks/twilio/status?message_id={Uri.EscapeDataString(m.Id)}") : null;
                    call = () => p.SendAsync(new SmsRequest(m.Id, d.Recipient, body, callback), ct);
                    break;
                }

            default:
                {
                    var p = channels.Email;
                    provider = p.Name;
                    var headers = _o.EmailHeaders?.Invoke(m) ?? new Dictionary<string, string>();
                    var html = Text(m.Content, "html") is { } h && _o.EmailHtml is { } track ? track(m, h) : Text(m.Content, "html");
                    call = () => p.SendAsync(new EmailRequest(m.Id, d.Recipient, Text(m.Content, "subject") ?? "", html, Text(m.Content, "text"), headers), ct);
                    break;
                }
        }

        var breaker = channels.Breaker(provider);
        if (breaker.Blocked() is { } wait)
        {
            return new RecipientResult(index, provider, SendOutcome.Transient(DeliveryReason.CircuitOpen, $"{provider} circuit open", wait), null, channels.Time.GetUtcNow());
        }

        var channel = ChannelName(m.Channel);
        var measured = DeliveryTelemetry.Start(provider, channel, m.Id);
        SendOutcome outcome;
        try
        {
            outcome = await call();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            outcome = SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "cancelled: shutting down");
        }
        catch (Exception ex)
        {
            // A provider bug must not lose the message: it is retried like an outage, and gives up with the reason.
            outcome = SendOutcome.Transient(DeliveryReason.ProviderUnavailable, ex.GetType().Name);
        }

        DeliveryTelemetry.Stop(measured, provider, channel, outcome);
        breaker.Record(outcome);
        return new RecipientResult(index, provider, outcome, null, channels.Time.GetUtcNow());
    }

    private async Task ApplyAsync(List<Attempt> batch, SendClaims claims)
    {
        using var span = PipelineTelemetry.StartStage(PipelineTelemetry.SendRecord, batch.Count);
        using var counts = PipelineTelemetry.Defer();
        try
        {
            await claims.RecordAsync(async current =>
            {
                await using var s = await store.OpenSessionAsync();
                foreach (var a in batch.Where(a => !a.Lost))
                {
                    // The message as read when claimed is still the stored one while the claim holds: no need to read it again.
                    await ApplyOneAsync(s, a.Message, a, a.Now, current(a.Message.Id));
                }

                await s.CommitAsync();
                return true;
            });
        }
        finally
        {
            // Recorded, lost, or (a store failure) due again when the claim runs out: no longer renewed either way.
            foreach (var a in batch)
            {
                claims.Release(a.Message.Id);
            }
        }

        counts.Complete();
    }

    /// <remarks><paramref name="claims"/>: the claim's current value (two when a renewal's outcome is unknown); none when lost.</remarks>
    private async Task ApplyOneAsync(IStoreSession s, Message m, Attempt a, DateTimeOffset now, IReadOnlyList<DateTimeOffset> claims)
    {
        // Work on other records runs only once the outcome is recorded, which succeeds only while this attempt's claim holds.
        var effects = new List<Func<Task>>();

        // The delivery events of the statuses this attempt gives the message, kept in the same session once the outcome is
        // recorded. Each path below records one status of its own (sent may be followed by delivered, see below).
        var recorded = new List<DeliveryEvent>(1);
        void Keep(DeliveryEvent e)
        {
            e = e with { RecordedAt = now };
            recorded.Add(e);
            effects.Add(() => s.AppendDeliveryEventAsync(e));
        }

        void Event(string status, string? reason, MessageDelivery? d) => Keep(DeliveryEvent.For(m, status, now, reason, d?.Recipient, d?.ProviderId));

        async Task RecordAsync()
        {
            var recordedUnderClaim = false;
            foreach (var claim in claims)
            {
                if (recordedUnderClaim = await s.TryRecordSendOutcomeAsync(m, claim))
                {
                    break;
                }
            }

            if (recordedUnderClaim)
            {
                foreach (var effect in effects)
                {
                    await effect();
                }

                foreach (var e in recorded)
                {
                    PipelineTelemetry.MessageStatus(e);
                }
            }
        }

        var deliveries = a.Deliveries;
        m.Deliveries = deliveries;
        if (a.Blocked is { } blocked)
        {
            // No provider was called: every pending recipient is dropped and the message ends undeliverable, without fallback
            // (the person said no, or is suppressed; another channel is for a new step to decide).
            foreach (var d in deliveries.Where(d => d.Status == DeliveryStatus.Pending))
            {
                (d.Status, d.Reason, d.At) = (DeliveryStatus.Dropped, blocked, now);
            }

            m.Ready = false;
            m.NextAttemptAt = null;
            m.Status = MessageStatus.Undeliverable;
            m.Reason = blocked;
            m.History.Add(new StatusChange(MessageStatus.Undeliverable, now, blocked));
            Event(MessageStatus.Undeliverable, blocked, null);
            await RecordAsync();
            return;
        }

        m.Attempts++;
        if (m.Channel == Channel.Sms)
        {
            m.Segments = SmsSegments.Count(Text(m.Content, "body") ?? "").Segments;
        }

        foreach (var w in a.Warnings.Where(w => !m.Warnings.Contains(w)))
        {
            m.Warnings.Add(w);
        }

        DateTimeOffset? next = null;
        string? retryReason = null;
        MessageDelivery? deliveredAtOnce = null;
        foreach (var r in a.Results)
        {
            var d = deliveries[r.Index];
            d.At = now;
            d.Provider = r.Provider;
            if (r.Outcome is not { } o)
            {
                (d.Status, d.Reason) = (DeliveryStatus.Dropped, r.DropReason);
                continue;
            }

            // Passed over while its provider's circuit is open: no call was made, so no attempt is spent (a long outage
            // would otherwise fail messages that were never tried); the wait is the breaker's, bounded by MaxSkips.
            if (o.Reason == DeliveryReason.CircuitOpen)
            {
                (d.Reason, d.Detail) = (o.Reason, o.Detail);
                if (++d.Skips <= MaxSkips)
                {
                    var at = now + (o.RetryAfter ?? TimeSpan.FromSeconds(30));
                    next = next is { } n && n < at ? n : at;
                    retryReason ??= o.Reason;
                }
                else
                {
                    d.Status = DeliveryStatus.Failed;
                }

                continue;
            }

            d.Attempts++;
            switch (o.Kind)
            {
                case OutcomeKind.Sent:
                    (d.Status, d.ProviderId, d.Reason, d.Detail) = (DeliveryStatus.Sent, o.ProviderId, null, null);
                    m.EstimatedCost = o.EstimatedCost ?? m.EstimatedCost;
                    if (o.Delivered)
                    {
                        deliveredAtOnce ??= d;
                    }

                    if (o.ApnsEnvironment is { } env)
                    {
                        // The token belongs to the other APNs environment: remember it, so the next push skips the detour.
                        effects.Add(async () =>
                        {
                            if (await s.GetDeviceAsync(d.Recipient) is { } dev && dev.ProfileKey == m.ProfileKey)
                            {
                                dev.Attributes[ApnsEnvironmentAttribute] = env;
                                await s.PutDeviceAsync(dev);
                            }
                        });
                    }

                    if (r.Provider == SandboxProvider.ProviderName)
                    {
                        effects.Add(() => s.RecordOutboxAsync(new OutboxEntry(m.Id, m.ProfileKey, Name(m.Channel), now, m.Content, [d.Recipient])));
                    }

                    break;
                case OutcomeKind.InvalidToken:
                    (d.Status, d.Reason, d.Detail) = (DeliveryStatus.Bounced, MessageReason.InvalidToken, o.Detail);
                    effects.Add(async () =>
                    {
                        await s.MarkTokenBouncedAsync(d.Recipient, now, o.Detail ?? "");
                        if (await s.GetDeviceAsync(d.Recipient) is { } dev && dev.ProfileKey == m.ProfileKey)
                        {
                            await s.DeleteDeviceAsync(d.Recipient);
                            await s.AppendEventAsync(new StoredEvent($"{m.Id}/device_removed/{dev.TokenTail}", m.ProfileKey, "device_removed", "system", now, now, "send",
                                new JsonObject { ["token_tail"] = dev.TokenTail, ["platform"] = dev.Platform, ["reason"] = MessageReason.InvalidToken, ["detail"] = o.Detail }));
                        }
                    });

                    break;
                case OutcomeKind.RateLimited or OutcomeKind.Transient:
                    (d.Reason, d.Detail) = (o.Reason, o.Detail);
                    if (_o.Retry.Next(d.Attempts, o.RetryAfter, _random) is { } wait)
                    {
                        // The wait counts from the answer, not from the claim: a call can wait for a slot, and take up to
                        // its timeout, after the round was claimed, and Retry-After is relative to the answer.
                        var at = (r.AnsweredAt is { } answered && answered > now ? answered : now) + wait;
                        next = next is { } n && n < at ? n : at;
                        retryReason ??= o.Reason;
                    }
                    else
                    {
                        d.Status = DeliveryStatus.Failed;
                    }

                    break;
                default:
                    (d.Status, d.Reason, d.Detail) = (DeliveryStatus.Failed, o.Reason, o.Detail);
                    if (m.Channel == Channel.Sms && o.Reason == DeliveryReason.RecipientUnsubscribed)
                    {
                        // Twilio 21610: the number replied STOP. Record it, so no later journey tries SMS again.
                        var source = $"{r.Provider}:{o.Detail}";
                        effects.Add(async () =>
                        {
                            if (await s.GetProfileAsync(m.ProfileKey) is { } p && p.Consent.SmsConsent != false)
                            {
                                ProfileRules.ApplyAttributes(p, new JsonObject { [Consent.SmsConsentAttr] = false }, now, source, null, int.MaxValue);
                                p.UpdatedAt = now;
                                await s.PutProfileAsync(p);
                            }
                        });
                    }

                    break;
            }
        }

        if (next is { } due)
        {
            m.Ready = true;
            m.NextAttemptAt = due;
            if (m.Status == MessageStatus.Drafted)
            {
                m.Status = MessageStatus.Attempted;
            }

            m.History.Add(new StatusChange(MessageStatus.Attempted, now, retryReason));
            Event(MessageStatus.Attempted, retryReason, null);
            await RecordAsync();
            return;
        }

        m.Ready = false;
        m.NextAttemptAt = null;
        if (deliveries.Any(d => d.Status == DeliveryStatus.Sent))
        {
            m.Status = MessageStatus.Sent;
            m.Reason = null;
            m.SentAt = now;
            var sent = deliveries.First(d => d.Status == DeliveryStatus.Sent);
            var sentReason = sent.Provider == SandboxProvider.ProviderName ? "sandbox" : null;
            m.History.Add(new StatusChange(MessageStatus.Sent, now, sentReason));
            Event(MessageStatus.Sent, sentReason, sent);

            // The provider reported delivery with its answer (the sandbox): recorded through the status model with the
            // provider's key, exactly as a delivery report from its webhook would be, so reports, log and status agree.
            if (deliveredAtOnce is { } dd
                && StatusTransitions.Apply(m, MessageStatus.Delivered, now, null, dd.Provider, $"{dd.ProviderId}:delivered", dd.Recipient, dd.ProviderId) is { } delivered)
            {
                Keep(delivered);
            }

            await RecordAsync();
            return;
        }

        // Nothing reached anyone: bounced if a token was invalid, dropped if every recipient was dropped, else failed.
        var (status, reason) = deliveries.Any(d => d.Status == DeliveryStatus.Bounced) ? (MessageStatus.Bounced, MessageReason.InvalidToken)
            : deliveries.All(d => d.Status == DeliveryStatus.Dropped) ? (MessageStatus.Dropped, deliveries.FirstOrDefault()?.Reason ?? MessageReason.NoDevice)
            : (MessageStatus.Failed, deliveries.First(d => d.Status == DeliveryStatus.Failed).Reason ?? MessageReason.ProviderRejected);
        m.Status = status;
        m.Reason = reason;
        m.History.Add(new StatusChange(status, now, reason));
        Event(status, reason, deliveries.FirstOrDefault(d => d.Status == status) ?? (deliveries.Count == 1 ? deliveries[0] : null));
        if (m.Fallbacks is [var fb, .. var rest])
        {
            var reasons = (JsonObject)m.FallbackReasons.DeepClone();
            reasons[Name(m.Channel)] = reason;
            var next2 = new Message
            {
                Id = $"{m.Id}.{Name(fb.Channel)}",
                ProfileKey = m.ProfileKey,
                InstanceId = m.InstanceId,
                JourneyId = m.JourneyId,
                StepId = m.StepId,
                Channel = fb.Channel,
                Status = MessageStatus.Drafted,
                Content = fb.Content,
                Recipients = fb.Recipients,
                Platforms = fb.Platforms,
                Holdout = m.Holdout,
                Priority = m.Priority,
                Transactional = m.Transactional,
                Ready = true,
                CreatedAt = now,
                History = [new StatusChange(MessageStatus.Drafted, now, MessageReason.FellBack)],
                FallbackReasons = reasons,
                Fallbacks = [.. rest],
                FallbackOf = m.Id,
            };
            effects.Add(async () =>
            {
                // Email ignores quiet hours by default, as a step's send does; transactional journeys are exempt.
                if (_o.QuietHours is { } schedule && next2.Channel != Channel.Email && !next2.Transactional
                    && schedule.QuietUntil(now, await s.GetProfileAsync(next2.ProfileKey)) is { } quietEnd)
                {
                    next2.NextAttemptAt = quietEnd;
                    next2.History.Add(new StatusChange(MessageStatus.Drafted, now, MessageReason.QuietHours));
                }

                if (!next2.Transactional && await CappedAsync(s, next2, now))
                {
                    next2.Status = MessageStatus.Undeliverable;
                    next2.Reason = MessageReason.FrequencyCapped;
                    next2.Ready = false;
                    next2.NextAttemptAt = null;
                    next2.History.Add(new StatusChange(MessageStatus.Undeliverable, now, MessageReason.FrequencyCapped));
                }

                if (await s.TryAddMessageAsync(next2))
                {
                    var first = next2.Status == MessageStatus.Drafted ? MessageReason.FellBack : next2.Reason;
                    var drafted = DeliveryEvent.For(next2, next2.Status, now, first) with { RecordedAt = now };
                    await s.AppendDeliveryEventAsync(drafted);
                    PipelineTelemetry.MessageStatus(drafted);
                }
            });
            m.FallbackMessageId = next2.Id;
        }

        await RecordAsync();
    }

    /// <summary>
    /// Why <paramref name="m"/> must not go out any more, or null: the person is suppressed, or withdrew this channel's
    /// consent (SMS opt-out, email unsubscribe, push opt-out). Only explicit withdrawals count here: positive consent was
    /// checked when the step drafted the message. A person no longer stored blocks nothing (the message goes with them).
    /// </summary>
    private static string? Withdrawn(Profile? p, Message m)
    {
        if (p is null)
        {
            return null;
        }

        if (p.Suppressed)
        {
            return MessageReason.Suppressed;
        }

        var c = p.Consent;
        return m.Channel switch
        {
            Channel.Push when c.PushOptIn == false => MessageReason.ConsentMissing,
            Channel.Sms when c.SmsConsent == false => MessageReason.ConsentMissing,
            Channel.Email when c.EmailUnsubscribed => MessageReason.ConsentMissing,
            _ => null,
        };
    }

    /// <summary>True when a fallback message would break a cap (global caps by priority, then its journey's own).</summary>
    private async Task<bool> CappedAsync(IStoreSession s, Message m, DateTimeOffset now)
    {
        var own = _o.JourneyCaps?.Invoke(m.JourneyId) ?? [];
        var horizon = new FrequencyCaps([.. _o.Caps?.Rules ?? [], .. own]).Horizon;
        if (horizon == TimeSpan.Zero)
        {
            return false;
        }

        var history = (await s.GetMessagesSinceAsync(m.ProfileKey, now - horizon))
            .Where(x => x.CountsTowardCaps && x.Id != m.FallbackOf)
            .Select(x => new SendRecord(x.Channel, x.CreatedAt, x.Priority, x.Transactional, x.JourneyId)).ToList();
        return _o.Caps?.Check(m.Channel, m.Priority, now, history) is not null
            || new FrequencyCaps(own).Check(m.Channel, int.MinValue, now, history.Where(h => h.JourneyId == m.JourneyId)) is not null;
    }

    /// <summary>The message's recipients with their outcomes so far (a copy: the attempt must not change the stored one).</summary>
    private static List<MessageDelivery> Deliveries(Message m) => m.Deliveries.Count > 0
        ? m.Deliveries.Select(d => new MessageDelivery
        {
            Recipient = d.Recipient,
            Platform = d.Platform,
            Status = d.Status,
            Provider = d.Provider,
            ProviderId = d.ProviderId,
            Reason = d.Reason,
            Detail = d.Detail,
            Attempts = d.Attempts,
            At = d.At,
        }).ToList()
        : m.Recipients.Select((r, i) => new MessageDelivery { Recipient = r, Platform = i < m.Platforms.Count ? m.Platforms[i] : null }).ToList();

    /// <summary>Push content from the rendered template fields: title, body, deep_link, image, collapse_key, and the data object.</summary>
    public static PushContent PushContentOf(JsonObject c)
    {
        var data = new Dictionary<string, string>(StringComparer.Ordinal);
        if (c["data"] is JsonObject d)
        {
            foreach (var (k, v) in d)
            {
                if (v is not null)
                {
                    data[k] = v.GetValueKind() == System.Text.Json.JsonValueKind.String ? v.GetValue<string>() : v.ToJsonString();
                }
            }
        }

        return new PushContent(Text(c, "title"), Text(c, "body"), Text(c, "deep_link"), Text(c, "image"), data, Text(c, "collapse_key"));
    }

    private static string? Text(JsonObject c, string key) => c[key] is JsonValue v
        ? (v.TryGetValue<string>(out var s) ? s : v.ToJsonString())
        : null;

    private static string Name(Channel c) => c.ToString().ToLower(CultureInfo.InvariantCulture);

    /// <summary>The channel's name without an allocation per call (telemetry attributes).</summary>
    private static string ChannelName(Channel c) => c switch
    {
        Channel.Push => "push",
        Channel.Sms => "sms",
        _ => "email",
    };
}
