using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Apis.Auth.OAuth2;
using Microsoft.Data.Sqlite;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Delivery;
using Nudge.Delivery.Apns;
using Nudge.Delivery.Fcm;
using Nudge.Delivery.Sandbox;
using Nudge.Delivery.Tests.Apns;
using Nudge.Delivery.Tests.Fcm;
using Nudge.Delivery.Tests.Support;
using Nudge.Pipeline;
using Nudge.Sqlite.Store;

namespace Nudge.Benchmarks;

/// <summary>
/// Push delivery: pushes per second through the send stage (durable SQLite store, <see cref="ApnsProvider"/> and
/// <see cref="FcmProvider"/>) against the loopback APNs (HTTP/2, TLS, ES256 JWT) and FCM (OAuth2 bearer) peers of
/// Nudge.Delivery.Tests, beside a bare HttpClient loop sending the same pushes to the same peers at the same
/// concurrency (the ceiling). Two diagnostic passes split the gap: the providers alone (no store) and the send stage with
/// providers that answer at once (store only). Every pass checks its outcome: each message ends sent, and the peers
/// accepted exactly one push per message and rejected none.
/// </summary>
/// <remarks>
/// The peers run in a child process of the same executable (<c>-- peer</c>) by default, so their Kestrel, TLS and
/// per-request checks are not charged to the client's GC and thread pool; both machines' cores are still shared.
/// </remarks>
internal static class DeliveryBenchmark
{
    /// <summary>Provider calls in flight: the embedded server's default (SendOptions.Concurrency).</summary>
    public const int DefaultConcurrency = 128;

    /// <summary>Messages claimed per round: the embedded send worker's default.</summary>
    public const int DefaultBatch = 256;

    /// <summary>
    /// Concurrency and batch pairs <c>--sweep</c> tries before the measured passes; (128, 256) is what the embedded server
    /// runs (SendOptions.Concurrency's default, SendWorker's batch).
    /// </summary>
    public static readonly IReadOnlyList<(int Concurrency, int Batch)> SweepGrid =
        [(32, 256), (64, 256), (64, 1024), (64, 2048), (128, 256), (128, 1024), (128, 2048), (256, 256), (256, 1024), (256, 2048)];

    /// <summary>
    /// Pushes each path sends before it is timed (JIT tiering, connections, JWT and access token). With fewer, the first
    /// timed pass on two cores ran at a third of its later speed.
    /// </summary>
    private const int WarmUp = 30_000;

    public sealed record Settings(int Messages, int Concurrency, int Batch, bool ChildPeers, IReadOnlyList<(int Concurrency, int Batch)> Sweep);

    /// <summary>One timed pass over every message.</summary>
    /// <param name="Peers">What the loopback peers themselves counted over the pass (null when none were called).</param>
    public sealed record Pass(string Name, int Concurrency, int Batch, int Pushes, double Seconds, double ClientCpuMs, double? PeerCpuMs, double AllocatedMiB, int Gen2,
        PeerCounts? Peers = null)
    {
        public double PerSecond => Pushes / Seconds;

        public double ClientCpuUs => ClientCpuMs * 1000 / Pushes;

        public double? PeerCpuUs => PeerCpuMs * 1000 / Pushes;

        public double AllocatedKiBPerPush => AllocatedMiB * 1024 / Pushes;
    }

    /// <summary>Where the instrumented send-stage pass spent its time, in µs per push.</summary>
    /// <param name="Serial">Wall time with no provider call in flight per push: ready query plus claim transaction.</param>
    public sealed record Breakdown(Pass Pass, double Ready, double Claim, double ClaimCommit, double Lookups, double Provider,
        double ApplyRead, double ApplyWrite, double ApplyCommit, double ApplySessions, double Serial, double MessagesPerApplyCommit);

    public sealed record Result(Settings Settings, Pass Ceiling, Pass Stage, Pass Providers, Pass StoreOnly, Breakdown Breakdown,
        IReadOnlyList<Pass> Sweep, int Ios, int Android, double SeedSeconds, double PeakRssMiB);

    /// <summary>Runs every pass; null when NUDGE_BENCH_PROFILE asked for one pass only, for a profiler.</summary>
    public static async Task<Result?> RunAsync(Settings settings, string dir)
    {
        Machine.ResetPeakRss();
        await using IPeers peers = settings.ChildPeers ? await ChildPeers.StartAsync() : await InProcessPeers.StartAsync();
        var info = peers.Info;

        var seedPath = Path.Combine(dir, "seed.db");
        var seedWatch = Stopwatch.StartNew();
        var targets = await SeedAsync(seedPath, settings.Messages, DateTimeOffset.UtcNow.AddSeconds(-1));
        var seedSeconds = seedWatch.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"seeded {targets.Count:N0} messages in {seedSeconds:F1} s; peers: APNs {info.ApnsUrl}, FCM {info.FcmUrl} ({(settings.ChildPeers ? "child process" : "in process")})");
        var ios = targets.Count(t => t.Platform == Platforms.Ios);

        using var clients = await Clients.CreateAsync(info);
        var run = 0;
        string Copy()
        {
            var path = Path.Combine(dir, $"run{++run}.db");
            File.Copy(seedPath, path);
            return path;
        }

        // Warm every path once (JIT, TLS and HTTP/2 connections, the APNs JWT, the FCM access token); the passes reuse
        // the same clients and providers, as a server does.
        await CeilingAsync(clients, targets.Take(WarmUp).ToList(), settings.Concurrency, peers, check: false);
        await ProvidersAsync(clients, targets.Take(WarmUp).ToList(), settings.Concurrency, peers, check: false);
        await StageAsync("warm-up", Copy(), clients.Channels, settings.Concurrency, settings.Batch, targets, peers, stopAfter: WarmUp);

        if (Environment.GetEnvironmentVariable("NUDGE_BENCH_PROFILE") is { Length: > 0 } only)
        {
            // For a profiler attached by process id (perf record -p, dotnet-trace collect -p): after the warm-up, only
            // this pass (store, providers or stage), eight times; nothing written.
            Console.Error.WriteLine($"profiling pass '{only}', pid {Environment.ProcessId}");
            for (var i = 0; i < 8; i++)
            {
                Report(only == "store"
                    ? await StageAsync("send stage, instant providers", Copy(), new ChannelSet(new InstantPush("apns"), new InstantPush("fcm"),
                        new SandboxProvider(), new SandboxProvider(), TimeProvider.System), settings.Concurrency, settings.Batch, targets, peers: null)
                    : only == "providers" ? await ProvidersAsync(clients, targets, settings.Concurrency, peers)
                    : await StageAsync("send stage", Copy(), clients.Channels, settings.Concurrency, settings.Batch, targets, peers));
            }

            return null;
        }

        var sweep = new List<Pass>();
        foreach (var (c, b) in settings.Sweep)
        {
            sweep.Add(await StageAsync("send stage", Copy(), clients.Channels, c, b, targets, peers));
            Report(sweep[^1]);
        }

        var ceiling = await CeilingAsync(clients, targets, settings.Concurrency, peers);
        Report(ceiling);
        var stage = await StageAsync("send stage", Copy(), clients.Channels, settings.Concurrency, settings.Batch, targets, peers);
        Report(stage);
        var providers = await ProvidersAsync(clients, targets, settings.Concurrency, peers);
        Report(providers);

        // The ceiling again, after the stage: the first timed pass can still share the cores with background JIT and GC
        // left by the warm-up, which would flatter the ratio. The better of the two counts.
        var again = await CeilingAsync(clients, targets, settings.Concurrency, peers);
        Report(again);
        ceiling = again.PerSecond > ceiling.PerSecond ? again : ceiling;

        // The stage gets the same treatment: a second pass after the ceiling's, and the better of the two counts.
        var stageAgain = await StageAsync("send stage", Copy(), clients.Channels, settings.Concurrency, settings.Batch, targets, peers);
        Report(stageAgain);
        stage = stageAgain.PerSecond > stage.PerSecond ? stageAgain : stage;
        var instant = new InstantPush("apns");
        var storeOnly = await StageAsync("send stage, instant providers", Copy(), new ChannelSet(instant, new InstantPush("fcm"),
            new SandboxProvider(), new SandboxProvider(), TimeProvider.System), settings.Concurrency, settings.Batch, targets, peers: null);
        Report(storeOnly);

        var times = new PhaseTimes();
        var timed = new ChannelSet(new TimedPush(clients.Apns, times), new TimedPush(clients.Fcm, times),
            new SandboxProvider(), new SandboxProvider(), TimeProvider.System);
        var instrumented = await StageAsync("send stage, instrumented", Copy(), timed, settings.Concurrency, settings.Batch, targets, peers,
            wrap: s => new TimedStore(s, times));
        Report(instrumented);
        var breakdown = times.Breakdown(instrumented);

        return new Result(settings, ceiling, stage, providers, storeOnly, breakdown, sweep, ios, targets.Count - ios, seedSeconds, Machine.PeakRssMiB());
    }

    /// <summary>The peers' side of a child-process run: starts them, prints <see cref="PeerInfo"/>, answers "counts" until stdin closes.</summary>
    public static async Task ServePeersAsync()
    {
        await using var peers = await LoopbackPeers.StartAsync();
        Console.Out.WriteLine(JsonSerializer.Serialize(peers.Info));
        while (await Console.In.ReadLineAsync() is { } line)
        {
            if (line == "counts")
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(peers.Counts()));
            }
        }
    }

    private static void Report(Pass p) => Console.Error.WriteLine(
        $"{p.Name,-32} c={p.Concurrency,-4} batch={p.Batch,-5} {p.PerSecond,9:N0} pushes/s  ({p.Pushes:N0} in {p.Seconds:F2} s; client CPU {p.ClientCpuUs:F0} µs/push"
        + (p.PeerCpuUs is { } peer ? $", peers {peer:F0} µs/push" : "") + $"; {p.AllocatedKiBPerPush:F1} KiB/push allocated; gen2 GCs {p.Gen2})");

    private sealed record Target(int N, string MessageId, string ProfileKey, string Token, string Platform);

    private const string Title = "Your cart is waiting";

    private static string Body(int n) => $"Cart cart-{n} is saved.";

    private static string DeepLink(int n) => $"shop://cart/cart-{n}";

    /// <summary>N people with one device each (even n iOS, odd n Android) and one ready push each, in a durable store.</summary>
    private static async Task<List<Target>> SeedAsync(string path, int count, DateTimeOffset now)
    {
        var targets = new List<Target>(count);
        await using (var store = await SqliteStore.OpenAsync(path))
        {
            for (var start = 0; start < count; start += 10_000)
            {
                await using var s = await store.OpenSessionAsync();
                for (var n = start; n < Math.Min(count, start + 10_000); n++)
                {
                    var key = $"p{n:D8}";
                    var ios = n % 2 == 0;
                    var t = new Target(n, $"bench:{key}:push:1", key, ios ? ApnsPeerFixture.Token(n) : $"fcm-{n:D8}-token", ios ? Platforms.Ios : Platforms.Android);
                    targets.Add(t);
                    await ReadyPush.SeedAsync(s, key, n, t.Token, t.Platform, t.MessageId, "bench",
                        new JsonObject { ["title"] = Title, ["body"] = Body(n), ["deep_link"] = DeepLink(n) }, now);
                }

                await s.CommitAsync();
            }
        }

        // Pooled read connections would keep the WAL open; closed, the file is complete and can be copied per pass.
        SqliteConnection.ClearAllPools();
        return targets;
    }

    /// <summary>
    /// The send stage as the server runs it: RunUntilIdleAsync (overlapping rounds) until nothing is ready; the warm-up
    /// stops after <c>stopAfter</c> messages with RunReadyAsync rounds.
    /// </summary>
    private static async Task<Pass> StageAsync(string name, string db, ChannelSet channels, int concurrency, int batch, List<Target> targets,
        IPeers? peers, Func<IStore, IStore>? wrap = null, int? stopAfter = null)
    {
        var done = 0;
        PeerCounts? before = peers is null ? null : await peers.CountsAsync();
        Meter meter;
        await using (var sqlite = await SqliteStore.OpenAsync(db))
        {
            var store = wrap?.Invoke(sqlite) ?? sqlite;
            var stage = new SendStage(store, channels, new SendOptions { Concurrency = concurrency });
            meter = Meter.Start(peers);
            if (stopAfter is { } max)
            {
                while (done < max && await stage.RunReadyAsync(DateTimeOffset.UtcNow, batch, CancellationToken.None) is > 0 and var handled)
                {
                    done += handled;
                }
            }
            else
            {
                done = await stage.RunUntilIdleAsync(() => DateTimeOffset.UtcNow, batch, CancellationToken.None);
            }

            meter.Stop();
        }

        SqliteConnection.ClearAllPools();
        PeerCounts? counted = null;
        if (stopAfter is null)
        {
            await CheckStoreAsync(db, targets.Count);
            if (peers is not null)
            {
                counted = Check(name, before!, await peers.CountsAsync(), targets);
            }
        }

        File.Delete(db);
        return meter.Pass(name, concurrency, batch, done) with { Peers = counted };
    }

    /// <summary>Every message ended sent and none is left for the send stage.</summary>
    private static async Task CheckStoreAsync(string db, int expected)
    {
        await using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT status, ready > 0, COUNT(*) FROM messages GROUP BY 1, 2";
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        var sent = 0L;
        while (await r.ReadAsync())
        {
            rows.Add($"{r.GetString(0)}{(r.GetInt64(1) == 1 ? " (ready)" : "")}: {r.GetInt64(2)}");
            sent += r.GetString(0) == MessageStatus.Sent && r.GetInt64(1) == 0 ? r.GetInt64(2) : 0;
        }

        if (sent != expected || rows.Count != 1)
        {
            throw new InvalidOperationException($"expected {expected} messages sent, found {string.Join(", ", rows)}");
        }
    }

    /// <summary>The peers accepted exactly one push per target on its platform's peer, and refused nothing; returns what they counted.</summary>
    private static PeerCounts Check(string name, PeerCounts before, PeerCounts after, List<Target> targets)
    {
        var ios = targets.Count(t => t.Platform == Platforms.Ios);
        var d = after.Minus(before);
        if (d.ApnsAccepted != ios || d.FcmAccepted != targets.Count - ios || d.ApnsRejected != 0 || d.FcmRejected != 0 || d.Problems != 0)
        {
            throw new InvalidOperationException($"{name}: expected APNs {ios} and FCM {targets.Count - ios} accepted, none refused; peers counted {d}");
        }

        return d;
    }

    /// <summary>The ceiling: the same pushes with a bare HttpClient per peer, same connection settings, no store.</summary>
    private static async Task<Pass> CeilingAsync(Clients clients, List<Target> targets, int concurrency, IPeers peers, bool check = true)
    {
        var before = await peers.CountsAsync();
        var failed = 0;
        var meter = Meter.Start(peers);
        await Parallel.ForEachAsync(targets, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (t, ct) =>
        {
            if (!await clients.BareSendAsync(t, ct))
            {
                Interlocked.Increment(ref failed);
            }
        });
        meter.Stop();
        var counted = check ? Check("ceiling", before, await peers.CountsAsync(), targets) : null;
        return failed == 0 ? meter.Pass("bare HttpClient (ceiling)", concurrency, 0, targets.Count) with { Peers = counted }
            : throw new InvalidOperationException($"ceiling: {failed} pushes not accepted");
    }

    /// <summary>The providers alone: the same PushRequests the send stage would make, without the store.</summary>
    private static async Task<Pass> ProvidersAsync(Clients clients, List<Target> targets, int concurrency, IPeers peers, bool check = true)
    {
        var before = await peers.CountsAsync();
        var failed = 0;
        var meter = Meter.Start(peers);
        await Parallel.ForEachAsync(targets, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (t, ct) =>
        {
            var provider = t.Platform == Platforms.Ios ? (IPushProvider)clients.Apns : clients.Fcm;
            var content = new PushContent(Title, Body(t.N), DeepLink(t.N), Data: new Dictionary<string, string>());
            if ((await provider.SendAsync(new PushRequest(t.MessageId, t.Token, t.Platform, content), ct)).Kind != OutcomeKind.Sent)
            {
                Interlocked.Increment(ref failed);
            }
        });
        meter.Stop();
        var counted = check ? Check("providers", before, await peers.CountsAsync(), targets) : null;
        return failed == 0 ? meter.Pass("providers alone (no store)", concurrency, 0, targets.Count) with { Peers = counted }
            : throw new InvalidOperationException($"providers: {failed} pushes not sent");
    }

    /// <summary>Wall clock, CPU of this process and of the peers' process, allocations and gen-2 collections over a pass.</summary>
    private sealed class Meter
    {
        private readonly IPeers? _peers;
        private readonly long _start = Stopwatch.GetTimestamp();
        private readonly TimeSpan _cpu = Process.GetCurrentProcess().TotalProcessorTime;
        private readonly TimeSpan? _peerCpu;
        private readonly long _allocated = GC.GetTotalAllocatedBytes(precise: false);
        private readonly int _gen2 = GC.CollectionCount(2);
        private double _seconds;
        private double _cpuMs;
        private double? _peerCpuMs;
        private long _allocatedBytes;
        private int _gen2s;

        private Meter(IPeers? peers)
        {
            _peers = peers;
            _peerCpu = peers?.CpuTime();
        }

        public static Meter Start(IPeers? peers) => new(peers);

        public void Stop()
        {
            _seconds = Stopwatch.GetElapsedTime(_start).TotalSeconds;
            _cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - _cpu).TotalMilliseconds;
            _peerCpuMs = _peers?.CpuTime() - _peerCpu is { } p ? p.TotalMilliseconds : null;
            _allocatedBytes = GC.GetTotalAllocatedBytes(precise: false) - _allocated;
            _gen2s = GC.CollectionCount(2) - _gen2;
        }

        public Pass Pass(string name, int concurrency, int batch, int pushes) =>
            new(name, concurrency, batch, pushes, _seconds, _cpuMs, _peerCpuMs, _allocatedBytes / 1048576.0, _gen2s);
    }

    /// <summary>The clients every pass shares: the two providers, and the bare HttpClients of the ceiling.</summary>
    private sealed class Clients : IDisposable
    {
        private readonly HttpClient _apnsHttp;
        private readonly HttpClient _fcmHttp;
        private readonly SocketsHttpHandler _fcmHandler;
        private readonly Uri _apnsBase;
        private readonly Uri _fcmSend;
        private readonly string _jwt;
        private readonly string _accessToken;

        private Clients(ApnsProvider apns, FcmProvider fcm, SocketsHttpHandler fcmHandler, HttpClient apnsHttp, HttpClient fcmHttp,
            Uri apnsBase, Uri fcmSend, string jwt, string accessToken)
        {
            (Apns, Fcm, _fcmHandler, _apnsHttp, _fcmHttp, _apnsBase, _fcmSend, _jwt, _accessToken) =
                (apns, fcm, fcmHandler, apnsHttp, fcmHttp, apnsBase, fcmSend, jwt, accessToken);
            var sandbox = new SandboxProvider();
            Channels = new ChannelSet(apns, fcm, sandbox, sandbox, TimeProvider.System);
        }

        public ApnsProvider Apns { get; }

        public FcmProvider Fcm { get; }

        public ChannelSet Channels { get; }

        public static async Task<Clients> CreateAsync(PeerInfo info)
        {
            var apnsOptions = new ApnsOptions
            {
                KeyId = ApnsPeerFixture.KeyId,
                TeamId = ApnsPeerFixture.TeamId,
                BundleId = ApnsPeerFixture.BundleId,
                PrivateKey = info.ApnsKeyPem,
                ProductionUrl = info.ApnsUrl,
                SandboxUrl = info.ApnsUrl,
            };

            // ApnsProvider.CreateHandler (the production connection settings) trusting the peers' certificate, for both.
            SocketsHttpHandler ApnsHandler()
            {
                var h = ApnsProvider.CreateHandler(apnsOptions);
                h.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
                    errors == SslPolicyErrors.None || cert?.GetCertHashString() == info.CertHash;
                return h;
            }

            var apns = new ApnsProvider(apnsOptions, TimeProvider.System, ApnsHandler());
            var fcmHandler = new SocketsHttpHandler();
            var fcm = new FcmProvider(new FcmOptions { ServiceAccountJson = info.ServiceAccountJson, BaseUrl = info.FcmUrl }, TimeProvider.System, fcmHandler);

            // The ceiling's credentials: one ES256 JWT, and one access token from the peer's token endpoint.
            string jwt;
            using (var signer = new ApnsTokenSigner(apnsOptions, TimeProvider.System))
            {
                jwt = signer.GetToken();
            }

            using var account = JsonDocument.Parse(info.ServiceAccountJson);
            var root = account.RootElement;
            var credential = new ServiceAccountCredential(new ServiceAccountCredential.Initializer(
                root.GetProperty("client_email").GetString()!, root.GetProperty("token_uri").GetString()!)
            {
                Scopes = [FcmProvider.Scope],
            }.FromPrivateKey(root.GetProperty("private_key").GetString()!));
            var accessToken = await credential.GetAccessTokenForRequestAsync();
            credential.Key?.Dispose();

            var apnsHttp = new HttpClient(ApnsHandler()) { Timeout = TimeSpan.FromSeconds(10) };
            var fcmHttp = new HttpClient(new SocketsHttpHandler()) { Timeout = TimeSpan.FromSeconds(10) };
            var fcmSend = new Uri($"{info.FcmUrl.TrimEnd('/')}/v1/projects/{root.GetProperty("project_id").GetString()}/messages:send");
            return new Clients(apns, fcm, fcmHandler, apnsHttp, fcmHttp, new Uri(info.ApnsUrl.TrimEnd('/') + "/"), fcmSend, jwt, accessToken);
        }

        /// <summary>One push as a hand-written client would send it; true when the peer answered 200.</summary>
        public async Task<bool> BareSendAsync(Target t, CancellationToken ct)
        {
            if (t.Platform == Platforms.Ios)
            {
                var payload = $$"""{"aps":{"alert":{"title":"{{Title}}","body":"{{Body(t.N)}}"},"sound":"default"},"delivery_id":"{{t.MessageId}}","link":"{{DeepLink(t.N)}}","deep_link":"{{DeepLink(t.N)}}"}""";
                using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_apnsBase, "3/device/" + t.Token))
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                    Content = new ByteArrayContent(Encoding.UTF8.GetBytes(payload)),
                };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                request.Headers.Authorization = new AuthenticationHeaderValue("bearer", _jwt);
                request.Headers.TryAddWithoutValidation("apns-topic", ApnsPeerFixture.BundleId);
                request.Headers.TryAddWithoutValidation("apns-push-type", "alert");
                request.Headers.TryAddWithoutValidation("apns-priority", "10");
                request.Headers.TryAddWithoutValidation("apns-id", Guid.NewGuid().ToString("D"));
                using var response = await _apnsHttp.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
                return response.StatusCode == HttpStatusCode.OK;
            }
            else
            {
                var body = $$"""{"message":{"token":"{{t.Token}}","notification":{"title":"{{Title}}","body":"{{Body(t.N)}}"},"data":{"delivery_id":"{{t.MessageId}}","link":"{{DeepLink(t.N)}}","deep_link":"{{DeepLink(t.N)}}"},"android":{"priority":"HIGH"}""" + "}}";
                using var request = new HttpRequestMessage(HttpMethod.Post, _fcmSend) { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _accessToken);
                using var response = await _fcmHttp.SendAsync(request, ct);
                await response.Content.ReadAsByteArrayAsync(ct);
                return response.StatusCode == HttpStatusCode.OK;
            }
        }

        public void Dispose()
        {
            Apns.Dispose();
            Fcm.Dispose();
            _fcmHandler.Dispose();
            _apnsHttp.Dispose();
            _fcmHttp.Dispose();
        }
    }

    /// <summary>A push provider that answers "sent" at once: the send stage's own cost, store included, without the network.</summary>
    private sealed class InstantPush(string name) : IPushProvider
    {
        private static readonly Task<SendOutcome> Sent = Task.FromResult(SendOutcome.Sent("instant"));

        public string Name => name;

        public bool ReportsDelivery => false;

        public Task<SendOutcome> SendAsync(PushRequest request, CancellationToken ct) => Sent;
    }

    public sealed record PeerInfo(string ApnsUrl, string ApnsKeyPem, string FcmUrl, string ServiceAccountJson, string CertHash);

    public sealed record PeerCounts(long ApnsAccepted, long ApnsRejected, long FcmAccepted, long FcmRejected, long Problems)
    {
        public PeerCounts Minus(PeerCounts o) =>
            new(ApnsAccepted - o.ApnsAccepted, ApnsRejected - o.ApnsRejected, FcmAccepted - o.FcmAccepted, FcmRejected - o.FcmRejected, Problems - o.Problems);
    }

    private interface IPeers : IAsyncDisposable
    {
        PeerInfo Info { get; }

        Task<PeerCounts> CountsAsync();

        /// <summary>CPU time of the peers' own process; null when they share this one.</summary>
        TimeSpan? CpuTime();
    }

    /// <summary>
    /// One <see cref="ApnsPeer"/> and one <see cref="FcmPeer"/> on 127.0.0.1 with fresh keys. What the peers record per
    /// request is drained into counters every 100 ms, so their memory stays flat over hundreds of thousands of pushes.
    /// </summary>
    private sealed class LoopbackPeers : IAsyncDisposable
    {
        private readonly ECDsa _apnsKey;
        private readonly ServiceAccountKey _fcmKey;
        private readonly ApnsPeer _apns;
        private readonly FcmPeer _fcm;
        private readonly Lock _gate = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _drain;
        private long _apnsAccepted;
        private long _apnsRejected;
        private long _fcmAccepted;

        private LoopbackPeers(ECDsa apnsKey, ServiceAccountKey fcmKey, ApnsPeer apns, FcmPeer fcm)
        {
            (_apnsKey, _fcmKey, _apns, _fcm) = (apnsKey, fcmKey, apns, fcm);
            Info = new PeerInfo(apns.Url, apnsKey.ExportPkcs8PrivateKeyPem(), fcm.BaseUrl.AbsoluteUri, fcmKey.Json(fcm.TokenUri),
                TestCertificate.Instance.GetCertHashString());
            _drain = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    await Task.Delay(100, CancellationToken.None);
                    Counts();
                }
            });
        }

        public PeerInfo Info { get; }

        public static async Task<LoopbackPeers> StartAsync()
        {
            var apnsKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var fcmKey = new ServiceAccountKey();
            var apns = await ApnsPeer.StartAsync(apnsKey, ApnsPeerFixture.KeyId, ApnsPeerFixture.TeamId, ApnsPeerFixture.BundleId);
            var fcm = await FcmPeer.StartAsync(fcmKey, TimeProvider.System);
            return new LoopbackPeers(apnsKey, fcmKey, apns, fcm);
        }

        public PeerCounts Counts()
        {
            lock (_gate)
            {
                while (_apns.Accepted.TryDequeue(out _))
                {
                    _apnsAccepted++;
                }

                while (_apns.Answers.TryDequeue(out var a))
                {
                    _apnsRejected += a.Status == 200 ? 0 : 1;
                }

                while (_fcm.AcceptedBodies.TryDequeue(out _))
                {
                    _fcmAccepted++;
                }

                _fcm.BearersSeen.Clear();
                _fcm.ContentTypesSeen.Clear();
                return new PeerCounts(_apnsAccepted, _apnsRejected, _fcmAccepted, _fcm.SendRequests - _fcmAccepted, _fcm.Problems.Count);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _drain;
            await _apns.DisposeAsync();
            await _fcm.DisposeAsync();
            _apnsKey.Dispose();
            _fcmKey.Dispose();
            _stop.Dispose();
        }
    }

    private sealed class InProcessPeers(LoopbackPeers peers) : IPeers
    {
        public PeerInfo Info => peers.Info;

        public static async Task<InProcessPeers> StartAsync() => new(await LoopbackPeers.StartAsync());

        public Task<PeerCounts> CountsAsync() => Task.FromResult(peers.Counts());

        public TimeSpan? CpuTime() => null;

        public ValueTask DisposeAsync() => peers.DisposeAsync();
    }

    /// <summary>The peers in a child process of this executable (<c>peer</c> mode), spoken to over its stdin and stdout.</summary>
    private sealed class ChildPeers : IPeers
    {
        private readonly Process _process;
        private readonly SemaphoreSlim _gate = new(1, 1);

        private ChildPeers(Process process, PeerInfo info) => (_process, Info) = (process, info);

        public PeerInfo Info { get; }

        public static async Task<ChildPeers> StartAsync()
        {
            var exe = Environment.ProcessPath ?? throw new InvalidOperationException("no process path to start the peers from");
            var start = new ProcessStartInfo(exe) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
            {
                start.ArgumentList.Add(typeof(DeliveryBenchmark).Assembly.Location);
            }

            start.ArgumentList.Add("peer");
            var process = Process.Start(start) ?? throw new InvalidOperationException("the peer process did not start");
            var line = await process.StandardOutput.ReadLineAsync() ?? throw new InvalidOperationException("the peer process exited before it was ready");
            return new ChildPeers(process, JsonSerializer.Deserialize<PeerInfo>(line)!);
        }

        public async Task<PeerCounts> CountsAsync()
        {
            await _gate.WaitAsync();
            try
            {
                await _process.StandardInput.WriteLineAsync("counts");
                await _process.StandardInput.FlushAsync();
                var line = await _process.StandardOutput.ReadLineAsync() ?? throw new InvalidOperationException("the peer process exited");
                return JsonSerializer.Deserialize<PeerCounts>(line)!;
            }
            finally
            {
                _gate.Release();
            }
        }

        public TimeSpan? CpuTime()
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }

        public async ValueTask DisposeAsync()
        {
            _process.StandardInput.Close();
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }

            _process.Dispose();
            _gate.Dispose();
        }
    }

    private enum Phase
    {
        Ready,
        Lookup,
        Provider,
        SessionWait,
        Claim,
        ClaimCommit,
        ClaimSession,
        ApplyRead,
        ApplyWrite,
        ApplyCommit,
        ApplySession,
    }

    /// <summary>Summed Stopwatch time per phase (concurrent calls add up: per push it is latency, not wall time).</summary>
    private sealed class PhaseTimes
    {
        private readonly long[] _ticks = new long[Enum.GetValues<Phase>().Length];
        private readonly long[] _calls = new long[Enum.GetValues<Phase>().Length];

        public void Add(Phase p, long start)
        {
            Interlocked.Add(ref _ticks[(int)p], Stopwatch.GetTimestamp() - start);
            Interlocked.Increment(ref _calls[(int)p]);
        }

        public async Task<T> Time<T>(Phase p, Func<Task<T>> f)
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                return await f();
            }
            finally
            {
                Add(p, start);
            }
        }

        public async Task Time(Phase p, Func<Task> f)
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                await f();
            }
            finally
            {
                Add(p, start);
            }
        }

        public Breakdown Breakdown(Pass pass)
        {
            double Us(Phase p) => _ticks[(int)p] * 1e6 / Stopwatch.Frequency / pass.Pushes;
            return new Breakdown(pass, Us(Phase.Ready), Us(Phase.Claim), Us(Phase.ClaimCommit), Us(Phase.Lookup), Us(Phase.Provider),
                Us(Phase.ApplyRead), Us(Phase.ApplyWrite), Us(Phase.ApplyCommit), Us(Phase.ApplySession),
                Us(Phase.Ready) + Us(Phase.ClaimSession), pass.Pushes / (double)Math.Max(1, _calls[(int)Phase.ApplyCommit]));
        }
    }

    private sealed class TimedPush(IPushProvider inner, PhaseTimes times) : IPushProvider
    {
        public string Name => inner.Name;

        public bool ReportsDelivery => inner.ReportsDelivery;

        public Task<SendOutcome> SendAsync(PushRequest request, CancellationToken ct) => times.Time(Phase.Provider, () => inner.SendAsync(request, ct));
    }

    /// <summary>Times what the send stage asks of the store; everything else is passed through.</summary>
    private sealed class TimedStore(IStore inner, PhaseTimes times) : IStore
    {
        public async Task<IStoreSession> OpenSessionAsync(CancellationToken ct = default)
        {
            var start = Stopwatch.GetTimestamp();
            var s = await inner.OpenSessionAsync(ct);
            times.Add(Phase.SessionWait, start);
            return new TimedSession(s, times);
        }

        public async Task<IStoreSession> OpenUnsyncedSessionAsync(CancellationToken ct = default)
        {
            var start = Stopwatch.GetTimestamp();
            var s = await inner.OpenUnsyncedSessionAsync(ct);
            times.Add(Phase.SessionWait, start);
            return new TimedSession(s, times);
        }

        public Task<string?> ResolveAsync(Identifier identifier, CancellationToken ct = default) => inner.ResolveAsync(identifier, ct);

        public Task<Profile?> GetProfileAsync(string key, CancellationToken ct = default) => inner.GetProfileAsync(key, ct);

        public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey, CancellationToken ct = default) => inner.GetDevicesAsync(profileKey, ct);

        public Task<Device?> GetDeviceAsync(string token, CancellationToken ct = default) => times.Time(Phase.Lookup, () => inner.GetDeviceAsync(token, ct));

        public Task<IReadOnlyList<StoredEvent>> GetRecentEventsAsync(string profileKey, int limit, CancellationToken ct = default) =>
            inner.GetRecentEventsAsync(profileKey, limit, ct);

        public Task<IReadOnlyList<StoredEvent>> GetUnattachedEventsAsync(int limit, CancellationToken ct = default) => inner.GetUnattachedEventsAsync(limit, ct);

        public Task<StoreCounts> CountAsync(CancellationToken ct = default) => inner.CountAsync(ct);

        public Task<IReadOnlyList<(string Id, string ProfileKey)>> DueInstancesAsync(DateTimeOffset now, int limit, CancellationToken ct = default) =>
            inner.DueInstancesAsync(now, limit, ct);

        public Task<DateTimeOffset?> NextWakeAsync(CancellationToken ct = default) => inner.NextWakeAsync(ct);

        public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey, CancellationToken ct = default) => inner.GetInstancesAsync(profileKey, ct);

        public Task<IReadOnlyList<Message>> GetMessagesAsync(string profileKey, int limit, CancellationToken ct = default) =>
            inner.GetMessagesAsync(profileKey, limit, ct);

        public Task<Message?> GetMessageAsync(string id, CancellationToken ct = default) => inner.GetMessageAsync(id, ct);

        public Task<IReadOnlyList<MessageSummary>> ListMessagesAsync(MessageListQuery query, CancellationToken ct = default) => inner.ListMessagesAsync(query, ct);

        public Task<IReadOnlyList<Message>> ReadyMessagesAsync(DateTimeOffset now, int limit, CancellationToken ct = default) =>
            times.Time(Phase.Ready, () => inner.ReadyMessagesAsync(now, limit, ct));

        public Task<DateTimeOffset?> GetTokenBounceAsync(string token, CancellationToken ct = default) =>
            times.Time(Phase.Lookup, () => inner.GetTokenBounceAsync(token, ct));

        public Task<IReadOnlyDictionary<string, (Device Device, DateTimeOffset? BouncedAt)>> GetPushTargetsAsync(IReadOnlyCollection<string> tokens, CancellationToken ct = default) =>
            times.Time(Phase.Lookup, () => inner.GetPushTargetsAsync(tokens, ct));

        // The fence's read before provider calls is claim work.
        public Task<IReadOnlySet<string>> GetHeldClaimsAsync(IReadOnlyCollection<HeldClaim> claims, CancellationToken ct = default) =>
            times.Time(Phase.Claim, () => inner.GetHeldClaimsAsync(claims, ct));

        public Task<IReadOnlyList<OutboxEntry>> GetOutboxAsync(int limit, CancellationToken ct = default) => inner.GetOutboxAsync(limit, ct);

        public Task<IReadOnlyDictionary<string, Profile>> GetProfilesAsync(IReadOnlyCollection<string> keys, CancellationToken ct = default) => inner.GetProfilesAsync(keys, ct);

        public Task<IReadOnlyList<DeliveryEvent>> GetDeliveryEventsAsync(DeliveryEventQuery query, CancellationToken ct = default) => inner.GetDeliveryEventsAsync(query, ct);


        public Task<IReadOnlyList<InstanceOutcome>> GetInstanceOutcomesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken ct = default) =>
            inner.GetInstanceOutcomesAsync(from, to, ct);

        public Task<IReadOnlyList<PersonActivity>> GetActivePeopleAsync(DateTimeOffset since, CancellationToken ct = default) => inner.GetActivePeopleAsync(since, ct);

        public Task<Checkpoint?> GetCheckpointAsync(string name, CancellationToken ct = default) => inner.GetCheckpointAsync(name, ct);

        public Task<PurgeCounts> PurgeAsync(DateTimeOffset eventsBefore, DateTimeOffset messagesBefore, int limit, CancellationToken ct = default) =>
            inner.PurgeAsync(eventsBefore, messagesBefore, limit, ct);
    }

    /// <summary>A session is a claim (it claimed messages) or an apply (it recorded outcomes); each is timed from open to close.</summary>
    private sealed class TimedSession(IStoreSession inner, PhaseTimes times) : IStoreSession
    {
        private readonly long _opened = Stopwatch.GetTimestamp();
        private bool _claims;

        public Task<bool> TryMarkProcessedAsync(string key, DateTimeOffset at) => inner.TryMarkProcessedAsync(key, at);

        public Task<string?> ResolveAsync(Identifier identifier) => inner.ResolveAsync(identifier);

        public Task<Profile?> GetProfileAsync(string key) => inner.GetProfileAsync(key);

        public Task PutProfileAsync(Profile profile) => inner.PutProfileAsync(profile);

        public Task DeleteProfileAsync(string key) => inner.DeleteProfileAsync(key);

        public Task EraseProfileAsync(string key, DateTimeOffset now) => inner.EraseProfileAsync(key, now);

        public Task AppendEventAsync(StoredEvent e) => inner.AppendEventAsync(e);

        public Task MoveEventsAsync(string fromKey, string toKey) => inner.MoveEventsAsync(fromKey, toKey);

        public Task<Device?> GetDeviceAsync(string token) => inner.GetDeviceAsync(token);

        public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey) => inner.GetDevicesAsync(profileKey);

        public Task<IReadOnlyList<Device>> FindDevicesByPhysicalIdAsync(string deviceId) => inner.FindDevicesByPhysicalIdAsync(deviceId);

        public Task PutDeviceAsync(Device device) => inner.PutDeviceAsync(device);

        public Task DeleteDeviceAsync(string token) => inner.DeleteDeviceAsync(token);

        public Task<IReadOnlyList<StoredEvent>> GetEventsSinceAsync(string profileKey, DateTimeOffset since, int limit) =>
            inner.GetEventsSinceAsync(profileKey, since, limit);

        public Task<JourneyInstance?> GetInstanceAsync(string id) => inner.GetInstanceAsync(id);

        public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey) => inner.GetInstancesAsync(profileKey);

        public Task PutInstanceAsync(JourneyInstance instance) => inner.PutInstanceAsync(instance);

        public Task<bool> TryAddMessageAsync(Message message) => inner.TryAddMessageAsync(message);

        public Task<bool> TryRecordSendOutcomeAsync(Message message, DateTimeOffset claim) =>
            times.Time(Phase.ApplyWrite, () => inner.TryRecordSendOutcomeAsync(message, claim));

        // Renewals and the fence before each call are claim work.
        public Task<bool> TryRenewClaimAsync(string id, string profileKey, DateTimeOffset claim, DateTimeOffset until) =>
            times.Time(Phase.Claim, () => inner.TryRenewClaimAsync(id, profileKey, claim, until));

        public Task PutMessageAsync(Message message) => times.Time(Phase.ApplyWrite, () => inner.PutMessageAsync(message));

        public Task<Message?> GetMessageAsync(string id) => times.Time(Phase.ApplyRead, () => inner.GetMessageAsync(id));

        public Task<IReadOnlyList<Message>> GetMessagesSinceAsync(string profileKey, DateTimeOffset since) => inner.GetMessagesSinceAsync(profileKey, since);

        public Task MoveJourneysAsync(string fromKey, string toKey) => inner.MoveJourneysAsync(fromKey, toKey);

        public Task RecordOutboxAsync(OutboxEntry entry) => inner.RecordOutboxAsync(entry);

        public Task AppendDeliveryEventAsync(DeliveryEvent e) => inner.AppendDeliveryEventAsync(e);

        public Task<bool> TryPutCheckpointAsync(Checkpoint checkpoint) => inner.TryPutCheckpointAsync(checkpoint);

        public Task<IReadOnlyList<Message>> ClaimReadyMessagesAsync(DateTimeOffset now, DateTimeOffset until, int limit)
        {
            _claims = true;
            return times.Time(Phase.Claim, () => inner.ClaimReadyMessagesAsync(now, until, limit));
        }

        public Task<bool> TryClaimMessageAsync(string id, DateTimeOffset now, DateTimeOffset until)
        {
            _claims = true;
            return times.Time(Phase.Claim, () => inner.TryClaimMessageAsync(id, now, until));
        }

        public Task MarkTokenBouncedAsync(string token, DateTimeOffset at, string detail) => inner.MarkTokenBouncedAsync(token, at, detail);

        public Task<IReadOnlyList<string>> FindProfilesByPhoneAsync(string e164) => inner.FindProfilesByPhoneAsync(e164);

        public Task CommitAsync() => times.Time(_claims ? Phase.ClaimCommit : Phase.ApplyCommit, inner.CommitAsync);

        public async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            times.Add(_claims ? Phase.ClaimSession : Phase.ApplySession, _opened);
        }
    }
}
