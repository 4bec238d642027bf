using System.Net.Sockets;
using Nudge.Delivery.Apns;

namespace Nudge.Delivery.Tests.Apns;

public sealed class ApnsConcurrencyTests(ApnsPeerFixture peers) : IClassFixture<ApnsPeerFixture>
{
    /// <summary>Generous bound for work that takes well under a second on an idle machine (CI shares 2 cores).</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static PushRequest Push(int n, string? token = null) =>
        new($"msg-{n}", token ?? ApnsPeerFixture.Token(n), "ios", new PushContent("Hello", $"Message {n}"));

    [Fact]
    public async Task SendAsync_200_in_parallel_share_a_few_http2_connections_and_one_jwt()
    {
        var time = peers.Fresh();
        var options = peers.Options();
        using var provider = new ApnsProvider(options, time, ApnsPeerFixture.DefaultHandlerTrustingTestCertificate(options));

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => provider.SendAsync(Push(i), CancellationToken.None))))
            .WaitAsync(Patience);

        Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
        Assert.Equal(200, peers.Production.Accepted.Count);
        Assert.Equal(200, peers.Production.Accepted.Select(n => n.Headers["apns-id"]).Distinct().Count());
        Assert.Equal(["HTTP/2"], peers.Production.Protocols.Keys);
        Assert.InRange(peers.Production.ConnectionIds.Count, 1, 4);
        Assert.Single(peers.Production.Jwts);
    }

    [Fact]
    public async Task SendAsync_with_the_test_handler_also_multiplexes_on_http2()
    {
        var time = peers.Fresh();
        using var provider = peers.Provider(time);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => provider.SendAsync(Push(i), CancellationToken.None))).WaitAsync(Patience);

        Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
        Assert.Equal(["HTTP/2"], peers.Production.Protocols.Keys);
        Assert.InRange(peers.Production.ConnectionIds.Count, 1, 4);
    }

    [Fact]
    public async Task SendAsync_slow_bad_tokens_do_not_hold_up_good_ones()
    {
        var time = peers.Fresh();
        var options = peers.Options();
        using var provider = new ApnsProvider(options, time, ApnsPeerFixture.DefaultHandlerTrustingTestCertificate(options));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var badTokens = Enumerable.Range(1000, 10).Select(ApnsPeerFixture.Token).ToList();
        var faults = new List<PeerFault>();
        foreach (var token in badTokens)
        {
            // APNs is slow to answer these (the peer holds them until released), then says Unregistered.
            var fault = new PeerFault { HoldUntil = release.Task };
            faults.Add(fault);
            peers.Production.Faults[token] = fault;
            peers.Production.Unregistered[token] = 0;
        }

        try
        {
            // The provider sends its very first request alone (APNs allows one stream until a token was accepted).
            Assert.Equal(OutcomeKind.Sent, (await provider.SendAsync(Push(999), CancellationToken.None)).Kind);
            var bad = badTokens.Select((t, i) => provider.SendAsync(Push(1000 + i, t), CancellationToken.None)).ToList();
            await Task.WhenAll(faults.Select(f => f.Arrived.Task)).WaitAsync(Patience);

            var good = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => provider.SendAsync(Push(i), CancellationToken.None))).WaitAsync(Patience);

            Assert.All(good, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
            Assert.Equal(0, bad.Count(t => t.IsCompleted));

            release.SetResult();
            var badOutcomes = await Task.WhenAll(bad).WaitAsync(Patience);
            Assert.All(badOutcomes, o => Assert.Equal(SendOutcome.InvalidToken("Unregistered"), o));
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task SendAsync_when_apns_allows_one_stream_per_connection_opens_at_most_the_configured_connections()
    {
        // Before a valid token was posted APNs allows a single stream per connection.
        await using var narrow = await ApnsPeer.StartAsync(
            peers.Key, ApnsPeerFixture.KeyId, ApnsPeerFixture.TeamId, ApnsPeerFixture.BundleId, maxStreamsPerConnection: 1);
        var time = peers.Fresh();
        narrow.Clock = time;
        var options = peers.Options(o => o.ProductionUrl = narrow.Url);
        var handler = ApnsPeerFixture.DefaultHandlerTrustingTestCertificate(options);
        var gauge = new ConnectionGauge(handler);
        using var provider = new ApnsProvider(options, time, handler);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => provider.SendAsync(Push(i), CancellationToken.None))).WaitAsync(Patience);

        // The cap is on connections open at once: a loaded machine may see one dropped and replaced (the peer counts
        // every connection that ever served), which the cap allows.
        Assert.True(outcomes.All(o => o.Kind == OutcomeKind.Sent), $"{gauge} failed {outcomes.Count(o => o.Kind != OutcomeKind.Sent)}");
        Assert.InRange(gauge.MaxOpen, 1, options.MaxConnectionsPerHost);
    }

    /// <summary>The TCP connections a handler holds open at the same time, at most, seen through its ConnectCallback.</summary>
    private sealed class ConnectionGauge
    {
        private int _open;
        private int _maxOpen;
        private int _opened;

        public ConnectionGauge(SocketsHttpHandler handler) => handler.ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, ct);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            return new GaugedStream(socket, this);
        };

        public int MaxOpen => Volatile.Read(ref _maxOpen);

        public override string ToString() => $"{Volatile.Read(ref _opened)} connections opened, at most {MaxOpen} at once;";

        private void Opened()
        {
            Interlocked.Increment(ref _opened);
            var open = Interlocked.Increment(ref _open);
            for (var max = Volatile.Read(ref _maxOpen); open > max; max = Volatile.Read(ref _maxOpen))
            {
                if (Interlocked.CompareExchange(ref _maxOpen, open, max) == max)
                {
                    break;
                }
            }
        }

        private void Closed() => Interlocked.Decrement(ref _open);

        /// <summary>The connection's stream: the handler disposes it when it drops the connection.</summary>
        private sealed class GaugedStream : NetworkStream
        {
            private readonly ConnectionGauge _gauge;
            private int _closed;

            public GaugedStream(Socket socket, ConnectionGauge gauge)
                : base(socket, ownsSocket: true)
            {
                _gauge = gauge;
                gauge.Opened();
            }

            protected override void Dispose(bool disposing)
            {
                if (Interlocked.Exchange(ref _closed, 1) == 0)
                {
                    _gauge.Closed();
                }

                base.Dispose(disposing);
            }
        }
    }

    [Fact]
    public async Task SendAsync_first_request_to_a_host_goes_alone_until_answered()
    {
        var time = peers.Fresh();
        var options = peers.Options();
        using var provider = new ApnsProvider(options, time, ApnsPeerFixture.DefaultHandlerTrustingTestCertificate(options));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = new PeerFault { HoldUntil = release.Task };
        peers.Production.Faults[ApnsPeerFixture.Token(0)] = first;
        try
        {
            var sends = new List<Task<SendOutcome>> { provider.SendAsync(Push(0), CancellationToken.None) };
            await first.Arrived.Task.WaitAsync(Patience);
            sends.AddRange(Enumerable.Range(1, 20).Select(i => provider.SendAsync(Push(i), CancellationToken.None)));
            await Task.Delay(300);
            Assert.Equal(1, peers.Production.RequestCount);

            release.SetResult();
            var outcomes = await Task.WhenAll(sends).WaitAsync(Patience);

            Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
            Assert.Equal(21, peers.Production.RequestCount);
        }
        finally
        {
            release.TrySetResult();
        }
    }
}
