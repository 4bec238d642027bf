using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Data.Sqlite;
using Nudge.Delivery.Tests.Fcm;
using Nudge.Delivery.Tests.Twilio;
using Xunit.Abstractions;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// Crash harness: Nudge.Host as a child process runs a short real-time cart journey (add_to_cart, 15 s, push through a
/// loopback FCM peer, 15 s, SMS through a loopback Twilio peer; exit and goal on purchase of the same cart) for thousands
/// of shoppers while it is killed with SIGKILL five times and restarted on the same data folder. Clients retry every
/// call not answered 2xx with the same event id, as real clients do. At the end: every acknowledged event is stored
/// once; every journey ended as its shopper's plan says, with no message drafted after the purchase was processed and
/// its messages at least their delays apart (a restart does not bunch them); every message reached its peer; and a
/// message reached a peer twice only when its first copy was in flight at a kill (its outcome not yet stored).
/// </summary>
/// <remarks>
/// <para>
/// Nothing here depends on how fast the machine is: a purchase that is processed late (after a kill, on a loaded
/// runner) may let the next message go first, and the check allows exactly that; whether a copy was in flight is read
/// from the store, not from a time gap.
/// </para>
/// Seeded: the seed is printed and <c>NUDGE_CRASH_SEED</c> replays the same plan and kill moments (the moments are
/// progress thresholds, so timing still varies). <c>NUDGE_CRASH_SHOPPERS</c> changes the size (default 10,000).
/// </remarks>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class CrashHarnessTests(ITestOutputHelper output) : IDisposable
{
    private const int Kills = 5;
    private const int Senders = 16;
    private const int PushDelaySeconds = 15;
    private const int SmsDelaySeconds = 15;

    /// <summary>
    /// Nudge:Workers:SendClaimSeconds for the run: a send in flight at a kill is retried this long after it was claimed.
    /// Far above a loopback provider call (milliseconds), so a live process never repeats a call it still has out.
    /// </summary>
    private const int SendClaimSeconds = 10;

    private static readonly string Journey = $$$"""
        # Written by CrashHarnessTests: cart recovery in seconds, so a crash run finishes in real time.
        id: crash_cart
        version: 1
        name: Crash harness cart
        trigger:
          event: add_to_cart
          where:
            - { path: event.cart_id, op: exists }
        reentry: every_time
        exit:
          - event: purchase
            match: [cart_id]
        goal:
          event: purchase
          match: [cart_id]
          within: 1d
        steps:
          - id: wait_push
            delay: {{{PushDelaySeconds}}}s
          - id: push
            send:
              channel: push
              quiet_hours: ignore
              push:
                title: "Your cart is waiting"
                body: "Cart {{ event.cart_id }}"
                data: { cart_id: "{{ event.cart_id }}" }
          - id: wait_sms
            delay: {{{SmsDelaySeconds}}}s
          - id: sms
            send:
              channel: sms
              quiet_hours: ignore
              sms:
                body: "Cart {{ event.cart_id }} expires soon. Reply STOP to opt out."
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("nudge-crash-").FullName;
    private readonly long _t0 = Stopwatch.GetTimestamp();
    private readonly ConcurrentQueue<Arrival> _arrivals = new();
    private readonly ConcurrentDictionary<string, byte> _acknowledged = new(StringComparer.Ordinal);
    private int _pushes;
    private int _sms;
    private int _acks;
    private int _retries;
    private int _attempts;

    /// <summary>What a shopper does: only browse, buy right after adding to the cart, or buy once the push reached them.</summary>
    private enum Plan
    {
        Browse,
        BuyBeforePush,
        BuyAfterPush,
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Kill9FiveTimesDuringJourneys_EveryAcceptedEventProcessed_NoMessageLost_NoneSentTwiceUnlessInFlight()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("NUDGE_CRASH_SEED"), CultureInfo.InvariantCulture, out var s) ? s : Random.Shared.Next();
        var shoppers = int.TryParse(Environment.GetEnvironmentVariable("NUDGE_CRASH_SHOPPERS"), CultureInfo.InvariantCulture, out var n) ? n : 10_000;
        output.WriteLine($"crash harness: seed {seed} (NUDGE_CRASH_SEED), {shoppers} shoppers (NUDGE_CRASH_SHOPPERS), {Kills} kills");
        var rng = new Random(seed);
        var plans = Enumerable.Range(0, shoppers).Select(_ => rng.Next(10) switch { < 6 => Plan.Browse, < 8 => Plan.BuyBeforePush, _ => Plan.BuyAfterPush }).ToArray();
        var buyAfterPush = plans.Count(p => p == Plan.BuyAfterPush);

        // Kill moments count messages every run sends whatever its timing: the browsers' and the late buyers' pushes, and
        // the browsers' SMS (a buyer's message depends on when the purchase is processed).
        var expectedPushes = plans.Count(p => p != Plan.BuyBeforePush);
        var expectedSms = plans.Count(p => p == Plan.Browse);
        var ingestCalls = 3 * shoppers + plans.Count(p => p == Plan.BuyBeforePush);

        var dataDir = Directory.CreateDirectory(Path.Combine(_root, "data")).FullName;
        var journeys = Directory.CreateDirectory(Path.Combine(_root, "journeys")).FullName;
        await File.WriteAllTextAsync(Path.Combine(journeys, "crash_cart.yaml"), Journey);

        using var fcmKey = new ServiceAccountKey();
        await using var fcm = await FcmPeer.StartAsync(fcmKey, TimeProvider.System);
        await using var twilio = await TwilioPeer.StartAsync();
        var purchases = System.Threading.Channels.Channel.CreateUnbounded<int>();
        var purchaseQueued = new ConcurrentDictionary<int, byte>();
        fcm.OnAccepted = raw =>
        {
            using var doc = JsonDocument.Parse(raw);
            var data = doc.RootElement.GetProperty("message").GetProperty("data");
            var cart = data.GetProperty("cart_id").GetString()!;
            _arrivals.Enqueue(new Arrival("push", data.GetProperty("delivery_id").GetString()!, cart, Stopwatch.GetTimestamp()));
            Interlocked.Increment(ref _pushes);
            var i = ShopperOf(cart);
            if (plans[i] == Plan.BuyAfterPush && purchaseQueued.TryAdd(i, 0))
            {
                purchases.Writer.TryWrite(i);
                if (purchaseQueued.Count == buyAfterPush)
                {
                    purchases.Writer.TryComplete();
                }
            }
        };
        twilio.OnAccepted = r =>
        {
            var callback = new Uri(r.Form.Single(f => f.Key == "StatusCallback").Value);
            var id = QueryHelpers.ParseQuery(callback.Query)["message_id"].ToString();
            var cart = CartInText().Match(r.Form.Single(f => f.Key == "Body").Value).Value;
            _arrivals.Enqueue(new Arrival("sms", id, cart, Stopwatch.GetTimestamp()));
            Interlocked.Increment(ref _sms);
        };

        string[] args =
        [
            .. ProcessTests.Keys, $"--Nudge:Journeys:Dir={journeys}", $"--Nudge:Workers:SendClaimSeconds={SendClaimSeconds}",
            "--Nudge:PublicBaseUrl=https://nudge.example.com", "--Logging:LogLevel:Default=Warning",
            $"--Nudge:Providers:Fcm:ServiceAccountJson={fcmKey.Json(fcm.TokenUri)}", $"--Nudge:Providers:Fcm:BaseUrl={fcm.BaseUrl}",
            $"--Nudge:Providers:Twilio:AccountSid={TwilioPeer.AccountSid}", $"--Nudge:Providers:Twilio:AuthToken={TwilioPeer.AuthToken}",
            $"--Nudge:Providers:Twilio:MessagingServiceSid={TwilioPeer.ServiceSid}", $"--Nudge:Providers:Twilio:BaseUrl={twilio.BaseUrl}",
        ];

        // Kill moments are progress thresholds drawn from the seed: two during ingest (and event processing), two while
        // pushes go out (timers firing, steps running, sends in flight), one while SMS go out. Each new life first runs
        // for a random while, so a kill also lands at start-up recovery only by chance, not always.
        var moments = new (string What, Func<bool> Reached)[Kills];
        var fractions = new[] { (0.05, 0.35), (0.5, 0.9), (0.1, 0.45), (0.55, 0.95), (0.2, 0.8) }
            .Select(r => r.Item1 + (rng.NextDouble() * (r.Item2 - r.Item1))).ToArray();
        var ackAt = new[] { (int)(fractions[0] * ingestCalls), (int)(fractions[1] * ingestCalls) };
        var pushAt = new[] { (int)(fractions[2] * expectedPushes), (int)(fractions[3] * expectedPushes) };
        var smsAt = (int)(fractions[4] * expectedSms);
        moments[0] = ($"ingest: {ackAt[0]} of {ingestCalls} calls acknowledged", () => Volatile.Read(ref _acks) >= ackAt[0]);
        moments[1] = ($"ingest: {ackAt[1]} of {ingestCalls} calls acknowledged", () => Volatile.Read(ref _acks) >= ackAt[1]);
        moments[2] = ($"sending: {pushAt[0]} of {expectedPushes} pushes at the peer", () => Volatile.Read(ref _pushes) >= pushAt[0]);
        moments[3] = ($"sending: {pushAt[1]} of {expectedPushes} pushes at the peer", () => Volatile.Read(ref _pushes) >= pushAt[1]);
        moments[4] = ($"sending: {smsAt} of {expectedSms} SMS at the peer", () => Volatile.Read(ref _sms) >= smsAt);
        var settle = Enumerable.Range(0, Kills).Select(_ => TimeSpan.FromMilliseconds(rng.Next(300, 2000))).ToArray();
        var jitter = Enumerable.Range(0, Kills).Select(_ => TimeSpan.FromMilliseconds(rng.Next(0, 250))).ToArray();

        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(10) + TimeSpan.FromMilliseconds(shoppers * 20));
        var ct = deadline.Token;
        await using var server = new Server(dataDir, args);
        await server.StartAsync();

        var kills = new List<KillRecord>();
        var killer = Task.Run(async () =>
        {
            for (var k = 0; k < Kills; k++)
            {
                await Task.Delay(settle[k], ct);
                while (!moments[k].Reached())
                {
                    await Task.Delay(5, ct);
                }

                await Task.Delay(jitter[k], ct);
                var (at, atWall) = (Stopwatch.GetTimestamp(), DateTimeOffset.UtcNow);
                await server.KillAsync();
                var dead = Stopwatch.GetTimestamp();
                await server.StartAsync();
                kills.Add(new KillRecord(k + 1, moments[k].What, at, atWall, dead, Stopwatch.GetTimestamp()));
            }
        }, ct);

        var next = -1;
        var ingest = Enumerable.Range(0, Senders).Select(_ => Task.Run(async () =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) < shoppers;)
            {
                var id = Shopper(i);
                await SendAsync(server, null, c => c.PutAsync($"/api/v1/customers/{id}",
                    Json($$"""{"email":"{{id}}@example.com","phone":"+1415{{2_000_000 + i}}","sms_consent":true}""")), ct);
                await SendAsync(server, null, c => c.PutAsync($"/api/v1/customers/{id}/devices",
                    Json($$$"""{"device":{"id":"fcm-{{{id}}}","platform":"android"}}""")), ct);
                await SendAsync(server, $"atc-{i}", c => c.PostAsync($"/api/v1/customers/{id}/events",
                    Json($$$"""{"name":"add_to_cart","id":"atc-{{{i}}}","data":{"cart_id":"{{{Cart(i)}}}","cart_value":50}}""")), ct);
                if (plans[i] == Plan.BuyBeforePush)
                {
                    await Purchase(i);
                }
            }
        }, ct)).ToArray();
        var buyers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            await foreach (var i in purchases.Reader.ReadAllAsync(ct))
            {
                await Purchase(i);
            }
        }, ct)).ToArray();
        if (buyAfterPush == 0)
        {
            purchases.Writer.TryComplete();
        }

        Task Purchase(int i) => SendAsync(server, $"buy-{i}", c => c.PostAsync($"/api/v1/customers/{Shopper(i)}/events",
            Json($$$"""{"name":"purchase","id":"buy-{{{i}}}","data":{"cart_id":"{{{Cart(i)}}}","total":50}}""")), ct);

        await Task.WhenAll(ingest);
        var ingestDone = Stopwatch.GetTimestamp();
        await Task.WhenAll(buyers);
        await killer;

        // Everything done: no queued event, no open journey instance, no message ready or claimed (a claim left by the
        // last kill runs out after SendClaimSeconds and its message is sent again).
        // The bound only ends a hung run; a slow machine just takes longer to get there.
        var quiet = await WaitForQuiescenceAsync(server, dataDir, TimeSpan.FromMinutes(10));
        var settled = Stopwatch.GetTimestamp();
        await Task.Delay(1000, CancellationToken.None); // anything still sent after quiescence would be a bug: give it a chance to show
        await server.DisposeAsync();

        var state = await ReadStoreAsync(dataDir);
        var arrivals = _arrivals.ToList();
        var (duplicates, allowed, maxGap) = Duplicates(arrivals, kills, state.FirstOutcome);

        output.WriteLine($"ingest: {ingestCalls + buyAfterPush} calls acknowledged ({Volatile.Read(ref _attempts)} attempts: {Volatile.Read(ref _retries)} cut or refused by kills and sent again), done at {Secs(ingestDone)}");
        output.WriteLine($"plans: {plans.Count(p => p == Plan.Browse)} browse, {plans.Count(p => p == Plan.BuyBeforePush)} buy before push, {buyAfterPush} buy after push");
        foreach (var k in kills)
        {
            output.WriteLine($"kill {k.Number} at {Secs(k.At)} ({k.Moment}); restarted in {Stopwatch.GetElapsedTime(k.At, k.RestartedAt).TotalSeconds:F1} s");
        }

        output.WriteLine($"settled at {Secs(settled)} ({(quiet ? "quiet" : "NOT QUIET: timed out")}); messages in store: {state.Messages.Count}; " +
            $"peer arrivals: {arrivals.Count(a => a.Channel == "push")} push, {arrivals.Count(a => a.Channel == "sms")} SMS");
        output.WriteLine($"duplicates at the peers: {allowed.Count} allowed (in flight at a kill: outcome not stored; largest gap from the first copy to the kill {maxGap.TotalMilliseconds:F0} ms), {duplicates.Count} not allowed");
        foreach (var d in duplicates.Take(10))
        {
            output.WriteLine("  not allowed: " + d);
        }

        Assert.True(quiet, $"not quiet after the last kill: {state.Open} open instances, {state.Ready} ready messages");
        Assert.Equal(Kills, kills.Count);

        // Every acknowledged event is stored exactly once, and nothing else under those names.
        Assert.Equal(shoppers + plans.Count(p => p != Plan.Browse), _acknowledged.Count);
        Assert.Empty(state.EventCounts.Where(e => e.Value != 1).Select(e => $"{e.Key} x{e.Value}"));
        Assert.Empty(_acknowledged.Keys.Except(state.EventCounts.Keys));
        Assert.Empty(state.EventCounts.Keys.Except(_acknowledged.Keys));
        Assert.Equal(shoppers, state.Devices);

        // Every journey ended as its shopper's plan says and by the journey's rules (see Wrong).
        var messagesByCart = state.Messages.ToLookup(m => m.Cart, StringComparer.Ordinal);
        var wrong = new List<string>();
        for (var i = 0; i < shoppers; i++)
        {
            var cart = Cart(i);
            var messages = messagesByCart[cart].OrderBy(m => m.CreatedAt).ToList();
            var instance = state.Instances.GetValueOrDefault(cart);
            if (Wrong(plans[i], instance, messages) is { } why)
            {
                wrong.Add($"{cart} ({plans[i]}): {why}; {instance?.Status ?? "no instance"} ({instance?.EndReason}) started {instance?.StartedAt:HH:mm:ss.fff}, ended {instance?.EndedAt:HH:mm:ss.fff} " +
                    $"[{string.Join(", ", messages.Select(m => $"{m.Step} {m.Status} {m.CreatedAt:HH:mm:ss.fff}"))}]");
            }
        }

        output.WriteLine($"buyers whose next message went before their purchase was processed: {plans.Select((p, i) => (p, n: messagesByCart[Cart(i)].Count())).Count(x => x.p == Plan.BuyBeforePush ? x.n > 0 : x.p == Plan.BuyAfterPush && x.n > 1)}");
        Assert.True(wrong.Count == 0, $"{wrong.Count} journeys ended wrong, e.g.:\n" + string.Join('\n', wrong.Take(20)));
        Assert.Equal(shoppers, state.Instances.Count);
        Assert.Equal(0, state.Open);
        Assert.Equal(0, state.Ready);

        // Zero lost: the peers received every message the store says was sent, and nothing the store does not know.
        foreach (var channel in new[] { "push", "sms" })
        {
            var atPeer = arrivals.Where(a => a.Channel == channel).Select(a => a.MessageId).ToHashSet(StringComparer.Ordinal);
            var inStore = state.Messages.Where(m => m.Channel == channel).Select(m => m.Id).ToHashSet(StringComparer.Ordinal);
            Assert.Empty(inStore.Except(atPeer));
            Assert.Empty(atPeer.Except(inStore));
        }

        Assert.InRange(state.Messages.Count(m => m.Channel == "push"), expectedPushes, shoppers);
        Assert.InRange(state.Messages.Count(m => m.Channel == "sms"), expectedSms, shoppers);

        // Zero sent twice, except what was in flight at a kill.
        Assert.Empty(duplicates);
    }

    private static string Shopper(int i) => $"shopper-{i:D5}";

    private static string Cart(int i) => $"cart-{i:D5}";

    private static int ShopperOf(string cart) => int.Parse(cart["cart-".Length..], CultureInfo.InvariantCulture);

    /// <summary>
    /// Why a shopper's journey broke the rules, or null. Browsers get the push and the SMS and complete. A purchase ends
    /// the journey (converted) when it is processed; a message whose delay ran out before that goes (after a kill or on a
    /// loaded machine the purchase can be processed late, so a buyer may get the next message, and that is allowed), but
    /// none is drafted after it. A buyer after the push got the push. Every message is at least its delay after the step
    /// before it was reached, however late a restart ran the timers, and was sent.
    /// </summary>
    private static string? Wrong(Plan plan, StoredInstance? i, List<StoredMessage> messages)
    {
        if (i is null || i.Duplicate)
        {
            return i is null ? "no journey instance" : "two instances for one cart (a retried add_to_cart started twice)";
        }

        var (status, atLeast) = plan switch
        {
            Plan.Browse => ("Completed", "push,sms"),
            Plan.BuyAfterPush => ("Converted", "push"),
            _ => ("Converted", ""),
        };
        var steps = string.Join(',', messages.Select(m => m.Step));
        if (i.Status != status)
        {
            return $"status {i.Status}, expected {status}";
        }

        if (steps is not ("" or "push" or "push,sms") || !steps.StartsWith(atLeast, StringComparison.Ordinal))
        {
            return $"messages [{steps}], expected [{atLeast}] or the next steps of [push,sms]";
        }

        if (messages.FirstOrDefault(m => m.Status is not ("sent" or "converted")) is { } unsent)
        {
            return $"{unsent.Step} ended {unsent.Status}";
        }

        // The run that processed the purchase ended the instance (EndedAt), or found it completed already.
        if (plan != Plan.Browse && i.EndReason is not ("goal:purchase" or "completed"))
        {
            return $"ended by {i.EndReason}, expected the purchase (goal) or completion before it";
        }

        if (messages.FirstOrDefault(m => m.CreatedAt > i.EndedAt) is { } late)
        {
            return $"{late.Step} drafted after the journey ended";
        }

        var reached = i.StartedAt;
        foreach (var (m, delay) in messages.Zip([TimeSpan.FromSeconds(PushDelaySeconds), TimeSpan.FromSeconds(SmsDelaySeconds)]))
        {
            if (m.CreatedAt - reached < delay)
            {
                return $"{m.Step} {(m.CreatedAt - reached).TotalSeconds:F3} s after the step before it, expected at least {delay.TotalSeconds} s";
            }

            reached = m.CreatedAt;
        }

        return null;
    }

    /// <summary>
    /// Copies of one message at a peer, checked pairwise in arrival order: the earlier copy must have arrived in an
    /// earlier process life (a life ends when the killed process has exited; whatever reached a peer before then came
    /// from it), and that life must not have stored the message's outcome: the first outcome in the store
    /// (<paramref name="firstOutcome"/>, stamped with the claim of the attempt that gave it) comes from an attempt claimed
    /// after that kill. An outcome stored before the kill, followed by another call, is a lost outcome, i.e. a bug.
    /// </summary>
    private static (List<string> NotAllowed, List<string> Allowed, TimeSpan MaxGap) Duplicates(
        List<Arrival> arrivals, List<KillRecord> kills, Dictionary<string, DateTimeOffset> firstOutcome)
    {
        int Life(long at) => kills.Count(k => k.Dead < at);
        var (notAllowed, allowed, maxGap) = (new List<string>(), new List<string>(), TimeSpan.Zero);
        foreach (var copies in arrivals.GroupBy(a => a.MessageId).Where(g => g.Count() > 1))
        {
            var ordered = copies.OrderBy(a => a.At).ToList();
            for (var c = 1; c < ordered.Count; c++)
            {
                var (first, again) = (ordered[c - 1], ordered[c]);
                var life = Life(first.At);
                var kill = life < kills.Count ? kills[life] : null;
                var outcome = firstOutcome.TryGetValue(first.MessageId, out var o) ? o : (DateTimeOffset?)null;
                var storedBeforeKill = kill is not null && outcome <= kill.AtWall;
                var what = $"{first.Channel} {first.MessageId} ({first.Cart}): copy in life {life}, again in life {Life(again.At)}, " +
                    $"first outcome stored from a claim at {outcome:HH:mm:ss.fff}, kill {life + 1} at {kill?.AtWall:HH:mm:ss.fff}";
                if (kill is not null && Life(again.At) > life && !storedBeforeKill)
                {
                    var gap = Stopwatch.GetElapsedTime(first.At, kill.Dead);
                    allowed.Add(what);
                    maxGap = gap > maxGap ? gap : maxGap;
                }
                else
                {
                    notAllowed.Add(what);
                }
            }
        }

        return (notAllowed, allowed, maxGap);
    }

    /// <summary>Sends one client call until it is answered 2xx, after restarts too, with the same body (and event id).</summary>
    private async Task SendAsync(Server server, string? eventId, Func<HttpClient, Task<HttpResponseMessage>> call, CancellationToken ct)
    {
        while (true)
        {
            var client = await server.Up.WaitAsync(ct);
            Interlocked.Increment(ref _attempts);
            try
            {
                using var r = await call(client);
                if (r.IsSuccessStatusCode)
                {
                    if (eventId is not null)
                    {
                        _acknowledged.TryAdd(eventId, 0);
                    }

                    Interlocked.Increment(ref _acks);
                    return;
                }

                if ((int)r.StatusCode < 500 && r.StatusCode != HttpStatusCode.TooManyRequests)
                {
                    throw new InvalidOperationException($"{r.RequestMessage?.RequestUri}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync(ct)}");
                }
            }
            catch (HttpRequestException)
            {
                // The process is gone (connection refused or reset): the call is sent again once it is back.
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                // The client's own timeout: answered or not, the call is repeated, as a real client would.
            }

            Interlocked.Increment(ref _retries);
            await Task.Delay(50, ct);
        }
    }

    private static async Task<bool> WaitForQuiescenceAsync(Server server, string dataDir, TimeSpan timeout)
    {
        var until = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            var stats = await Stats(server.Admin);
            if (stats["queued_events"]!.GetValue<long>() == 0)
            {
                await using var db = await OpenAsync(dataDir, readOnly: true);
                if (await ScalarAsync(db, "SELECT count(*) FROM instances WHERE status IN ('Active', 'Pending')") == 0
                    && await ScalarAsync(db, "SELECT count(*) FROM messages WHERE ready > 0") == 0)
                {
                    return true;
                }
            }

            await Task.Delay(250);
        }

        return false;
    }

    private static async Task<StoredState> ReadStoreAsync(string dataDir)
    {
        await using var db = await OpenAsync(dataDir, readOnly: false);
        var events = new Dictionary<string, int>(StringComparer.Ordinal);
        await using (var cmd = new SqliteCommand("SELECT event_id, count(*) FROM events WHERE name IN ('add_to_cart', 'purchase') GROUP BY event_id", db))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                events[r.GetString(0)] = r.GetInt32(1);
            }
        }

        var instances = new Dictionary<string, StoredInstance>(StringComparer.Ordinal);
        await using (var cmd = new SqliteCommand("""
            SELECT json_extract(doc, '$.trigger.data.cart_id'), status, json_extract(doc, '$.endReason'), json_extract(doc, '$.startedAt'), json_extract(doc, '$.endedAt')
            FROM instances WHERE journey_id = 'crash_cart'
            """, db))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                // A second instance for one cart would be a retried add_to_cart started twice: recorded as such.
                var cart = r.GetString(0);
                var i = new StoredInstance(r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), Time(r.GetString(3)), r.IsDBNull(4) ? DateTimeOffset.MaxValue : Time(r.GetString(4)));
                instances[cart] = instances.ContainsKey(cart) ? i with { Duplicate = true } : i;
            }
        }

        var messages = new List<StoredMessage>();
        await using (var cmd = new SqliteCommand("""
            SELECT m.id, m.channel, m.status, json_extract(m.doc, '$.stepId'), json_extract(i.doc, '$.trigger.data.cart_id'), json_extract(m.doc, '$.createdAt')
            FROM messages m JOIN instances i ON i.id = m.instance_id
            """, db))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                messages.Add(new StoredMessage(r.GetString(0), r.GetString(1).ToLowerInvariant(), r.GetString(2), r.GetString(3), r.GetString(4), Time(r.GetString(5))));
            }
        }

        // Per message, the earliest send outcome stored: its time is the claim of the attempt that gave it.
        var outcomes = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        await using (var cmd = new SqliteCommand("""
            SELECT json_extract(doc, '$.messageId'), min(recorded_at) FROM delivery_events
            WHERE json_extract(doc, '$.metric') NOT IN ('drafted', 'converted') GROUP BY 1
            """, db))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                outcomes[r.GetString(0)] = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1));
            }
        }

        return new StoredState(events, instances, messages, outcomes,
            await ScalarAsync(db, "SELECT count(*) FROM devices"),
            await ScalarAsync(db, "SELECT count(*) FROM instances WHERE status IN ('Active', 'Pending')"),
            await ScalarAsync(db, "SELECT count(*) FROM messages WHERE ready > 0"));
    }

    private static DateTimeOffset Time(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    private static async Task<SqliteConnection> OpenAsync(string dataDir, bool readOnly)
    {
        var db = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(dataDir, "nudge.db"),
            Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWrite,
            Pooling = false,
        }.ToString());
        await db.OpenAsync();
        return db;
    }

    private static async Task<long> ScalarAsync(SqliteConnection db, string sql)
    {
        await using var cmd = new SqliteCommand(sql, db);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private string Secs(long at) => $"{Stopwatch.GetElapsedTime(_t0, at).TotalSeconds:F1} s";

    [GeneratedRegex("cart-[0-9]{5}")]
    private static partial Regex CartInText();

    private sealed record Arrival(string Channel, string MessageId, string Cart, long At);

    /// <param name="At">Just before SIGKILL.</param>
    /// <param name="AtWall">The same moment on the wall clock, which the process stamps stored outcomes with.</param>
    /// <param name="Dead">The process had exited (its last sends had reached the peers).</param>
    /// <param name="RestartedAt">The next process was listening.</param>
    private sealed record KillRecord(int Number, string Moment, long At, DateTimeOffset AtWall, long Dead, long RestartedAt);

    private sealed record StoredMessage(string Id, string Channel, string Status, string Step, string Cart, DateTimeOffset CreatedAt);

    /// <param name="EndedAt">MaxValue while open.</param>
    private sealed record StoredInstance(string Status, string? EndReason, DateTimeOffset StartedAt, DateTimeOffset EndedAt)
    {
        public bool Duplicate { get; init; }
    }

    private sealed record StoredState(Dictionary<string, int> EventCounts, Dictionary<string, StoredInstance> Instances, List<StoredMessage> Messages,
        Dictionary<string, DateTimeOffset> FirstOutcome, long Devices, long Open, long Ready);

    /// <summary>The current Nudge process; <see cref="Up"/> hands out a client for it and waits while it is down.</summary>
    private sealed class Server(string dataDir, string[] args) : IAsyncDisposable
    {
        private readonly List<HttpClient> _clients = [];
        private TaskCompletionSource<HttpClient> _up = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private NudgeProcess? _process;

        public Task<HttpClient> Up => Volatile.Read(ref _up).Task;

        public HttpClient Admin { get; private set; } = null!;

        public async Task StartAsync()
        {
            _process = await NudgeProcess.StartAsync(dataDir, args, TimeSpan.FromSeconds(90));
            var track = ProcessTests.Client(_process.BaseAddress, "Basic", Basic(SiteId, ApiKey));
            track.Timeout = TimeSpan.FromSeconds(30);
            Admin = ProcessTests.Client(_process.BaseAddress, "Bearer", AdminKey);
            _clients.AddRange([track, Admin]);
            Volatile.Read(ref _up).TrySetResult(track);
        }

        public async Task KillAsync()
        {
            // Callers keep the old client until the process is dead, so the kill cuts their calls in flight (were they
            // held back first, every call would have its answer before the kill and the clients' retries went untested).
            await _process!.KillHardAsync();
            Volatile.Write(ref _up, new TaskCompletionSource<HttpClient>(TaskCreationOptions.RunContinuationsAsynchronously));
            await _process.DisposeAsync();
            _process = null;
        }

        public async ValueTask DisposeAsync()
        {
            if (_process is not null)
            {
                await _process.DisposeAsync();
                _process = null;
            }

            foreach (var c in _clients)
            {
                c.Dispose();
            }

            _clients.Clear();
        }
    }
}
