using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Delivery;
using Nudge.Delivery.Apns;
using Nudge.Delivery.Fcm;
using Nudge.Delivery.Sandbox;
using Nudge.Delivery.Tests.Apns;
using Nudge.Delivery.Tests.Fcm;
using Nudge.Delivery.Tests.Support;
using Nudge.Pipeline;
using Nudge.Sqlite.Store;
using Xunit.Abstractions;

namespace Nudge.Host.Tests;

/// <summary>
/// Provider fault harness: thousands of pushes (half iOS, half Android, some to dead tokens) through the real send stage,
/// the real <see cref="ApnsProvider"/> and <see cref="FcmProvider"/> and a SQLite file, against the loopback APNs (HTTP/2,
/// TLS) and FCM (OAuth2) peers answering a seeded <see cref="FaultPlan"/>: a share of requests get 500, 503 or 429 with
/// Retry-After, hang past the client's timeout, or are reset. The clock jumps to the next due retry, so backoff costs no
/// real waiting; timeouts are real (1 s). At the end every message is final (sent, bounced with its device removed, or
/// failed with a reason after its last attempt), no peer accepted a message twice, and no retry came sooner than the
/// Retry-After before it.
/// </summary>
/// <remarks>
/// Seeded: the seed is printed and <c>NUDGE_FAULT_SEED</c> replays the same fault plan (faults are drawn per message and
/// attempt, not per arrival, so the plan does not depend on timing). <c>NUDGE_FAULT_MESSAGES</c> changes the size
/// (default 3,000).
/// </remarks>
public sealed class ProviderFaultHarnessTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Provider timeout for the run, in seconds: the smallest the options allow, so a hang costs one real second.</summary>
    private const int TimeoutSeconds = 1;

    /// <summary>Share of dead tokens (APNs 410 Unregistered, FCM UNREGISTERED): 5 %.</summary>
    private const double BadTokenShare = 0.05;

    /// <summary>
    /// Between passes the clock jumps to the earliest due retry plus this: 5 s. Retries due within it share a pass, which
    /// keeps the run short (each pass with a hang costs a real timeout). A retry is then up to 5 s late, never early, so
    /// the Retry-After check still catches a retry scheduled more than 5 s too soon; the exact case (the wait counted
    /// from the answer, not the claim) has its own test below.
    /// </summary>
    private static readonly TimeSpan Gather = TimeSpan.FromSeconds(5);

    private readonly string _root = Directory.CreateTempSubdirectory("nudge-faults-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task TwentyPercentProviderFaults_EveryMessageEndsFinal_NoneSentTwice_RetryAfterHonoured()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("NUDGE_FAULT_SEED"), CultureInfo.InvariantCulture, out var s) ? s : Random.Shared.Next();
        var count = int.TryParse(Environment.GetEnvironmentVariable("NUDGE_FAULT_MESSAGES"), CultureInfo.InvariantCulture, out var n) ? n : 3_000;
        output.WriteLine($"provider fault harness: seed {seed} (NUDGE_FAULT_SEED), {count} messages (NUDGE_FAULT_MESSAGES)");

        var clock = new JumpClock();
        var plan = new FaultPlan(seed, clock);
        await using var rig = await Rig.StartAsync(Path.Combine(_root, "faults.db"), clock, plan, plan);
        var targets = await rig.SeedAsync(count, new Random(seed), BadTokenShare);

        var watch = Stopwatch.StartNew();
        var passes = await rig.DriveUntilIdleAsync(Gather);
        output.WriteLine($"{passes} passes, {watch.Elapsed.TotalSeconds:F1} s real, {(clock.GetUtcNow() - rig.Start).TotalMinutes:F1} min of clock");

        var log = plan.Log.ToArray();
        var byKey = log.GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Attempt).ToList());
        output.WriteLine($"{log.Length} requests: " + string.Join(", ", log.GroupBy(r => r.Answer).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}")));

        var maxAttempts = new SendOptions().Retry.MaxAttempts;
        var problems = new List<string>();
        var statuses = new Dictionary<string, int>();
        var excused = 0;
        foreach (var t in targets)
        {
            var m = (await rig.Store.GetMessageAsync(t.MessageId))!;
            var d = Assert.Single(m.Deliveries);
            statuses[m.Status] = statuses.GetValueOrDefault(m.Status) + 1;
            var requests = byKey.GetValueOrDefault(t.MessageId) ?? [];
            var accepted = requests.Count(r => r.Answer == "accepted");

            // Final: nothing left to do, and a reason on every non-delivery.
            if (m.Ready || m.Status is MessageStatus.Drafted or MessageStatus.Attempted)
            {
                problems.Add($"{t.MessageId}: not final ({m.Status}, ready {m.Ready}, next {m.NextAttemptAt:O})");
                continue;
            }

            switch (m.Status)
            {
                case MessageStatus.Sent when !t.Bad && accepted >= 1:
                    break;
                case MessageStatus.Bounced when t.Bad && m.Reason == MessageReason.InvalidToken:
                    if (await rig.Store.GetDeviceAsync(t.Token) is not null)
                    {
                        problems.Add($"{t.MessageId}: bounced but the device was kept");
                    }

                    break;
                case MessageStatus.Failed when m.Reason is { Length: > 0 } && d.Attempts >= maxAttempts && requests.All(r => r.Fault != PlannedFault.None):
                    // Every attempt was a real call that met a fault: only then may a message give up (passing it over while
                    // the circuit is open spends no attempt). A fault is a planned one at the peer, or no answer within the
                    // client's timeout: on a loaded machine a request can run out of time before it reaches the peer, so an
                    // attempt need not show in the peer's log; one that reached it unfaulted is never excused.
                    output.WriteLine($"{t.MessageId} failed ({m.Reason}, {d.Detail}) after {d.Attempts} attempts; the peer answered "
                        + string.Join(", ", requests.Select(r => r.Answer)) + "; history "
                        + string.Join(", ", m.History.Select(h => $"{h.Status}/{h.Reason}@{(h.At - rig.Start).TotalSeconds:F0}s")));
                    break;
                default:
                    problems.Add($"{t.MessageId} ({(t.Bad ? "bad" : "good")} token): {m.Status} / {m.Reason} after {d.Attempts} attempts, {accepted} accepted");
                    break;
            }

            // No duplicates. A peer may hold a copy whose answer the client never saw (it timed out first): sending it again
            // is at-least-once delivery, not a bug, and shows as an attempt recorded with reason "timeout".
            if (accepted > 1)
            {
                var timedOut = m.History.Count(h => h.Status == MessageStatus.Attempted && h.Reason == DeliveryReason.Timeout);
                if (accepted - 1 > timedOut)
                {
                    problems.Add($"{t.MessageId}: accepted {accepted} times");
                }
                else
                {
                    excused++;
                }
            }

            if (m.Status != MessageStatus.Sent && accepted > 0)
            {
                problems.Add($"{t.MessageId}: the peer accepted it but it ended {m.Status}");
            }

            // Never sooner than Retry-After: arrival to arrival at the peer, on the same clock.
            for (var i = 0; i + 1 < requests.Count; i++)
            {
                if (requests[i].RetryAfterSeconds is { } after && requests[i + 1].At - requests[i].At < TimeSpan.FromSeconds(after))
                {
                    problems.Add($"{t.MessageId}: attempt {requests[i + 1].Attempt} came {(requests[i + 1].At - requests[i].At).TotalSeconds:F1} s after a {requests[i].Fault} with Retry-After {after}");
                }
            }
        }

        output.WriteLine("statuses: " + string.Join(", ", statuses.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
        output.WriteLine($"duplicates excused by a client timeout: {excused}; breakers: " + string.Join(", ", rig.Channels.Breakers.Values.Select(b => $"{b.Name} {b.State}")));
        problems.AddRange(plan.Problems);
        problems.AddRange(rig.Fcm.Problems);
        foreach (var p in problems.Take(30))
        {
            output.WriteLine(p);
        }

        Assert.Empty(problems);
        Assert.True(statuses.GetValueOrDefault(MessageStatus.Sent) >= targets.Count(t => !t.Bad) * 9 / 10, "most good tokens end sent");
        Assert.Contains(log, r => r.Fault == PlannedFault.Hang);
        Assert.Contains(log, r => r.Fault == PlannedFault.Reset);
        Assert.Contains(log, r => r.Fault == PlannedFault.TooManyRequests);
    }

    /// <summary>
    /// "Good tokens are not slowed by bad ones", in a form that does not depend on timing: APNs hangs on every request
    /// for as long as the test lasts (its timeout is five minutes, the most APNs allows) and a quarter of the Android tokens are dead, yet every
    /// good Android push is sent at its first attempt, and the dead ones bounce, while every APNs call is still out: APNs
    /// may hold all the call slots but an eighth, never all of them. Dead tokens (answers, not failures) leave the FCM
    /// circuit closed. The run is then cancelled, which gives up the hanging calls.
    /// </summary>
    [Fact]
    public async Task HangingApnsAndDeadFcmTokens_DoNotHoldBackGoodFcmTokens()
    {
        var clock = new JumpClock();
        var hangAll = new FaultPlan(1, clock) { Share = 1, Kinds = [PlannedFault.Hang], HangFor = TimeSpan.FromMinutes(10) };
        await using var rig = await Rig.StartAsync(Path.Combine(_root, "slow.db"), clock, hangAll, null, timeoutSeconds: 300);
        var targets = await rig.SeedAsync(400, new Random(7), 0);
        var android = targets.Where(t => t.Platform == Platforms.Android).ToList();
        var dead = android.Where((_, i) => i % 4 == 0).Select(t => t.Token).ToHashSet();
        foreach (var token in dead)
        {
            rig.Fcm.Faults[token] = FcmFault.Unregistered;
        }

        using var stop = new CancellationTokenSource();
        var run = rig.Stage.RunUntilIdleAsync(clock.GetUtcNow, 256, stop.Token);

        // Every Android push ends (sent or bounced) while APNs still holds its calls; four minutes is only a bound for a
        // broken stage, which would wait for APNs' five-minute timeout.
        var deadline = DateTime.UtcNow.AddMinutes(4);
        List<Message> ended;
        while ((ended = await AndroidEndedAsync()).Count < android.Count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{ended.Count} of {android.Count} Android pushes ended while APNs hung");
            Assert.False(run.IsCompleted, "the send stage ended before the Android pushes did");
            await Task.Delay(50);
        }

        var apnsOut = rig.Apns.RequestCount;
        foreach (var t in targets.Where(t => t.Platform == Platforms.Ios))
        {
            Assert.Equal(MessageStatus.Drafted, (await rig.Store.GetMessageAsync(t.MessageId))!.Status);
        }

        await stop.CancelAsync();
        await run;
        output.WriteLine($"APNs requests out while every Android push ended: {apnsOut}; breakers: "
            + string.Join(", ", rig.Channels.Breakers.Values.Select(b => $"{b.Name} {b.State}")));
        Assert.True(apnsOut > 0, "APNs had calls out");
        foreach (var t in android)
        {
            var m = (await rig.Store.GetMessageAsync(t.MessageId))!;
            var d = Assert.Single(m.Deliveries);
            Assert.Equal(dead.Contains(t.Token) ? (MessageStatus.Bounced, 1) : (MessageStatus.Sent, 1), (m.Status, d.Attempts));
        }

        Assert.Equal(android.Count - dead.Count, rig.Fcm.AcceptedBodies.Count);
        Assert.Equal("closed", rig.Channels.Breaker("fcm").State);
        Assert.Empty(hangAll.Problems);

        async Task<List<Message>> AndroidEndedAsync()
        {
            var ms = await Task.WhenAll(android.Select(t => rig.Store.GetMessageAsync(t.MessageId)));
            return [.. ms.Where(m => m!.Status is MessageStatus.Sent or MessageStatus.Bounced).Select(m => m!)];
        }
    }

    /// <summary>
    /// Regression: the retry of a 429 was scheduled Retry-After from the moment the round was claimed, not from the
    /// answer, so a call that waited for a slot or took long came back early (the harness saw retries up to 2 s sooner
    /// than Retry-After). Here the call takes 8 s of the clock, and APNs asks for 30 s.
    /// </summary>
    [Fact]
    public async Task RetryAfter_CountsFromTheAnswerNotFromTheClaim()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 9, 0, 0, TimeSpan.Zero));
        await using var rig = await Rig.StartAsync(Path.Combine(_root, "retry-after.db"), clock, null, null, timeoutSeconds: 10);
        var target = Assert.Single(await rig.SeedAsync(1, new Random(1), 0));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fault = new PeerFault { Status = 429, Reason = "TooManyRequests", RetryAfter = "30", HoldUntil = release.Task, Times = 1 };
        rig.Apns.Faults[target.Token] = fault;
        var claimed = clock.GetUtcNow();

        var run = rig.Stage.RunReadyAsync(claimed, 10, CancellationToken.None);
        await fault.Arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        clock.Advance(TimeSpan.FromSeconds(8));
        release.SetResult();
        await run;

        var m = (await rig.Store.GetMessageAsync(target.MessageId))!;
        Assert.Equal((MessageStatus.Attempted, DeliveryReason.RateLimited), (m.Status, Assert.Single(m.Deliveries).Reason));
        Assert.Equal(claimed + TimeSpan.FromSeconds(8 + 30), m.NextAttemptAt);
    }

    /// <summary>One push the harness seeded.</summary>
    private sealed record Target(string MessageId, string Token, string Platform, bool Bad);

    /// <summary>
    /// System time plus an offset that only grows: timers (the providers' timeouts) run in real time, while the
    /// stage's "now", the circuit breakers, JWT ages and Retry-After dates can jump ahead to the next due retry.
    /// </summary>
    private sealed class JumpClock : TimeProvider
    {
        private long _offsetTicks;

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

        /// <summary>Moves the clock forward to <paramref name="at"/> (never back).</summary>
        public void JumpTo(DateTimeOffset at)
        {
            var ahead = at - GetUtcNow();
            if (ahead > TimeSpan.Zero)
            {
                Interlocked.Add(ref _offsetTicks, ahead.Ticks);
            }
        }
    }

    /// <summary>The store, the peers and the stage with real providers pointed at the peers.</summary>
    private sealed class Rig : IAsyncDisposable
    {
        private readonly ECDsa _apnsKey;
        private readonly ServiceAccountKey _fcmKey;
        private readonly ApnsProvider _apnsProvider;
        private readonly FcmProvider _fcmProvider;

        private Rig(SqliteStore store, TimeProvider clock, ApnsPeer apns, FcmPeer fcm, ECDsa apnsKey, ServiceAccountKey fcmKey,
            ApnsProvider apnsProvider, FcmProvider fcmProvider)
        {
            (Store, Clock, Apns, Fcm, _apnsKey, _fcmKey, _apnsProvider, _fcmProvider) = (store, clock, apns, fcm, apnsKey, fcmKey, apnsProvider, fcmProvider);
            Start = clock.GetUtcNow();
            var sandbox = new SandboxProvider();
            Channels = new ChannelSet(apnsProvider, fcmProvider, sandbox, sandbox, clock);
            Stage = new SendStage(store, Channels);
        }

        public SqliteStore Store { get; }

        public TimeProvider Clock { get; }

        public ApnsPeer Apns { get; }

        public FcmPeer Fcm { get; }

        public ChannelSet Channels { get; }

        public SendStage Stage { get; }

        public DateTimeOffset Start { get; }

        public static async Task<Rig> StartAsync(string dbPath, TimeProvider clock, FaultPlan? apnsPlan, FaultPlan? fcmPlan, int timeoutSeconds = TimeoutSeconds)
        {
            var apnsKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var fcmKey = new ServiceAccountKey();
            var apns = await ApnsPeer.StartAsync(apnsKey, ApnsPeerFixture.KeyId, ApnsPeerFixture.TeamId, ApnsPeerFixture.BundleId);
            apns.Clock = clock;
            apns.Plan = apnsPlan;
            var fcm = await FcmPeer.StartAsync(fcmKey, clock);
            fcm.Plan = fcmPlan;
            var apnsOptions = new ApnsOptions
            {
                KeyId = ApnsPeerFixture.KeyId,
                TeamId = ApnsPeerFixture.TeamId,
                BundleId = ApnsPeerFixture.BundleId,
                PrivateKey = apnsKey.ExportPkcs8PrivateKeyPem(),
                ProductionUrl = apns.Url,
                SandboxUrl = apns.Url,
                RequestTimeoutSeconds = timeoutSeconds,
            };
            var apnsProvider = new ApnsProvider(apnsOptions, clock, ApnsPeerFixture.DefaultHandlerTrustingTestCertificate(apnsOptions));
            var fcmProvider = new FcmProvider(
                new FcmOptions { ServiceAccountJson = fcmKey.Json(fcm.TokenUri), BaseUrl = fcm.BaseUrl.ToString(), RequestTimeoutSeconds = timeoutSeconds },
                clock, new SocketsHttpHandler());
            var store = await SqliteStore.OpenAsync(dbPath);
            return new Rig(store, clock, apns, fcm, apnsKey, fcmKey, apnsProvider, fcmProvider);
        }

        /// <summary>
        /// <paramref name="count"/> people with one device and one ready push each, alternating iOS and Android; a share of
        /// the tokens are dead at their peer.
        /// </summary>
        public async Task<List<Target>> SeedAsync(int count, Random rng, double badShare)
        {
            var now = Clock.GetUtcNow();
            var targets = new List<Target>(count);
            await using var s = await Store.OpenSessionAsync();
            for (var i = 0; i < count; i++)
            {
                var key = $"p{i:D6}";
                var ios = i % 2 == 0;
                var bad = rng.NextDouble() < badShare;
                var t = new Target($"fault:{key}:push", ios ? ApnsPeerFixture.Token(i) : $"fcm-{i:D6}-token", ios ? Platforms.Ios : Platforms.Android, bad);
                targets.Add(t);
                if (bad && ios)
                {
                    Apns.Unregistered[t.Token] = 0;
                }
                else if (bad)
                {
                    Fcm.Faults[t.Token] = FcmFault.Unregistered;
                }

                await ReadyPush.SeedAsync(s, key, i, t.Token, t.Platform, t.MessageId, "faults",
                    new JsonObject { ["title"] = "Your cart is waiting", ["body"] = $"Cart {i}", ["deep_link"] = $"shop://cart/{i}" }, now);
            }

            await s.CommitAsync();
            return targets;
        }

        /// <summary>
        /// Runs the stage until nothing is ready, jumping the clock between passes to the earliest due retry plus
        /// <paramref name="gather"/>, so retries due close together share a pass (and the real second of their hangs);
        /// returns the number of passes.
        /// </summary>
        public async Task<int> DriveUntilIdleAsync(TimeSpan gather, int maxPasses = 10_000)
        {
            for (var pass = 1; pass <= maxPasses; pass++)
            {
                await Stage.RunUntilIdleAsync(Clock.GetUtcNow, 256, CancellationToken.None);
                var waiting = await Store.ReadyMessagesAsync(DateTimeOffset.MaxValue.AddYears(-1), 100_000);
                if (waiting.Count == 0)
                {
                    return pass;
                }

                ((JumpClock)Clock).JumpTo(waiting.Min(m => m.NextAttemptAt ?? Clock.GetUtcNow()) + gather);
            }

            throw new InvalidOperationException($"messages still ready after {maxPasses} passes");
        }

        public async ValueTask DisposeAsync()
        {
            await Store.DisposeAsync();
            _apnsProvider.Dispose();
            _fcmProvider.Dispose();
            await Apns.DisposeAsync();
            await Fcm.DisposeAsync();
            _apnsKey.Dispose();
            _fcmKey.Dispose();
        }
    }
}
