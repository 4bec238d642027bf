using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Queues;
using Nudge.Sqlite.Queue;

namespace Nudge.Sqlite.Tests;

/// <summary>
/// What every <see cref="IWorkQueue"/> must do. Each test gets fresh, empty queues and a fake clock that only moves
/// when the test advances it.
/// </summary>
public abstract class WorkQueueConformance : IAsyncLifetime
{
    protected const string Work = "work";
    protected const string PoisonSuffix = "-poison";

    protected static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    protected static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    private IWorkQueue? _queue;

    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2024, 6, 1, 12, 0, 0, TimeSpan.Zero));

    protected IWorkQueue Queue => _queue ?? throw new InvalidOperationException("the queue is not open");

    /// <summary>Deliveries before a message moves to the poison queue.</summary>
    protected virtual int MaxDeliveries => 5;

    /// <summary>Opens new, empty queues that read the time from <paramref name="time"/>.</summary>
    protected abstract Task<IWorkQueue> CreateQueueAsync(TimeProvider time);

    /// <summary>Closes <paramref name="queue"/> and opens the same queues again (a process restart).</summary>
    protected abstract Task<IWorkQueue> ReopenQueueAsync(IWorkQueue queue, TimeProvider time);

    /// <summary>Deletes what the queues kept; called after they are closed.</summary>
    protected virtual Task DeleteStorageAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        try
        {
            _queue = await CreateQueueAsync(Time);
        }
        catch
        {
            // xunit does not call DisposeAsync when InitializeAsync fails.
            await DeleteStorageAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_queue is IAsyncDisposable d)
        {
            await d.DisposeAsync();
        }

        _queue = null;
        await DeleteStorageAsync();
    }

    protected async Task ReopenAsync() => _queue = await ReopenQueueAsync(Queue, Time);

    protected Task EnqueueAsync(string queue, params string[] bodies) =>
        Queue.EnqueueAsync(queue, bodies.Select(b => new OutgoingMessage(b)).ToList());

    protected async Task<LeasedMessage> ReceiveOneAsync(string queue = Work)
    {
        var m = Assert.Single(await Queue.ReceiveAsync(queue, 1, Lease));
        return m;
    }

    protected async Task AssertNothingVisibleAsync(string queue = Work) =>
        Assert.Empty(await Queue.ReceiveAsync(queue, 32, Lease));

    /// <summary>Receives and completes until the queue returns nothing, returning the bodies in delivery order.</summary>
    protected async Task<List<string>> DrainAsync(string queue = Work)
    {
        var bodies = new List<string>();
        while (await Queue.ReceiveAsync(queue, 32, TimeSpan.FromMinutes(10)) is { Count: > 0 } batch)
        {
            bodies.AddRange(batch.Select(m => m.Body));
            await Queue.CompleteAsync(batch);
        }

        return bodies;
    }

    private static string[] Bodies(IEnumerable<LeasedMessage> messages) => messages.Select(m => m.Body).ToArray();

    [Fact]
    public async Task Receive_ReturnsMessagesInFifoOrder()
    {
        await EnqueueAsync(Work, "m1");
        await EnqueueAsync(Work, "m2", "m3");
        await EnqueueAsync(Work, "m4");

        var first = await Queue.ReceiveAsync(Work, 2, Lease);
        Assert.Equal(["m1", "m2"], Bodies(first));
        var rest = await Queue.ReceiveAsync(Work, 10, Lease);
        Assert.Equal(["m3", "m4"], Bodies(rest));
        Assert.All(first.Concat(rest), m =>
        {
            Assert.Equal(Work, m.Queue);
            Assert.Equal(1, m.DequeueCount);
            Assert.Equal(Time.GetUtcNow(), m.EnqueuedAt);
            Assert.False(string.IsNullOrEmpty(m.LeaseToken));
        });
        Assert.Equal(4, first.Concat(rest).Select(m => m.Id).Distinct().Count());
        await AssertNothingVisibleAsync();
    }

    [Fact]
    public async Task Receive_EmptyQueue_ReturnsNothing()
    {
        await AssertNothingVisibleAsync();
        Assert.Equal(0, await Queue.CountAsync(Work));
    }

    [Fact]
    public async Task Enqueue_SeveralMessages_AllVisibleAtOnce()
    {
        await Queue.EnqueueAsync(Work, [new("a"), new("b"), new("c"), new("d"), new("e")]);

        Assert.Equal(5, await Queue.CountAsync(Work));
        Assert.Equal(["a", "b", "c", "d", "e"], Bodies(await Queue.ReceiveAsync(Work, 10, Lease)));
    }

    [Fact]
    public async Task Enqueue_ConcurrentBatches_NeverHalfVisible()
    {
        const int batches = 20;
        const int size = 50;
        var observed = new ConcurrentBag<long>();
        using var stop = new CancellationTokenSource();
        var poller = Task.Run(async () =>
        {
            do
            {
                observed.Add(await Queue.CountAsync(Work));
            }
            while (!stop.IsCancellationRequested);
        });

        await Task.WhenAll(Enumerable.Range(0, batches).Select(b => Task.Run(() =>
            Queue.EnqueueAsync(Work, Enumerable.Range(0, size).Select(i => new OutgoingMessage($"{b}:{i}")).ToList()))));
        await stop.CancelAsync();
        await poller;

        Assert.NotEmpty(observed);
        Assert.All(observed, count => Assert.Equal(0, count % size));
        var bodies = await DrainAsync();
        Assert.Equal(batches * size, bodies.Count);

        // Each batch keeps its own order.
        foreach (var group in bodies.GroupBy(b => b.Split(':')[0]))
        {
            Assert.Equal(Enumerable.Range(0, size).Select(i => $"{group.Key}:{i}"), group);
        }
    }

    [Fact]
    public async Task Receive_Leased_HiddenUntilLeaseExpiresThenBackWithDequeueCountTwo()
    {
        await EnqueueAsync(Work, "job");
        var first = await ReceiveOneAsync();
        Assert.Equal(1, first.DequeueCount);

        await AssertNothingVisibleAsync();
        Time.Advance(Lease - Second);
        await AssertNothingVisibleAsync();
        Assert.Equal(1, await Queue.CountAsync(Work));

        Time.Advance(Second * 2);
        var again = await ReceiveOneAsync();
        Assert.Equal(first.Id, again.Id);
        Assert.Equal("job", again.Body);
        Assert.Equal(2, again.DequeueCount);
        Assert.Equal(first.EnqueuedAt, again.EnqueuedAt);
        Assert.NotEqual(first.LeaseToken, again.LeaseToken);
    }

    [Fact]
    public async Task Receive_LeasedMessage_DoesNotBlockLaterMessages()
    {
        await EnqueueAsync(Work, "m1", "m2");
        Assert.Equal("m1", (await ReceiveOneAsync()).Body);
        Assert.Equal("m2", (await ReceiveOneAsync()).Body);
        await AssertNothingVisibleAsync();
    }

    [Fact]
    public async Task Complete_DeletesTheMessage()
    {
        await EnqueueAsync(Work, "m1", "m2", "m3");
        var batch = await Queue.ReceiveAsync(Work, 2, Lease);

        await Queue.CompleteAsync(batch);

        Assert.Equal(1, await Queue.CountAsync(Work));
        Time.Advance(Lease + Second);
        Assert.Equal(["m3"], Bodies(await Queue.ReceiveAsync(Work, 10, Lease)));
    }

    [Fact]
    public async Task Complete_StaleLease_DoesNotDeleteTheNewHoldersMessage()
    {
        await EnqueueAsync(Work, "job");
        var slow = await ReceiveOneAsync();
        Time.Advance(Lease + Second);
        var current = await ReceiveOneAsync();
        Assert.Equal(slow.Id, current.Id);

        await Queue.CompleteAsync([slow]);

        Assert.Equal(1, await Queue.CountAsync(Work));
        await AssertNothingVisibleAsync(); // still leased by the new holder

        await Queue.CompleteAsync([current]);
        Assert.Equal(0, await Queue.CountAsync(Work));
        Time.Advance(Lease + Second);
        await AssertNothingVisibleAsync();
    }

    [Fact]
    public async Task Abandon_WithDelay_VisibleAgainAfterTheDelay()
    {
        await EnqueueAsync(Work, "job");
        var m = await ReceiveOneAsync();

        await Queue.AbandonAsync(m, TimeSpan.FromSeconds(10));

        await AssertNothingVisibleAsync();
        Time.Advance(TimeSpan.FromSeconds(9));
        await AssertNothingVisibleAsync();
        Time.Advance(Second * 2);
        var again = await ReceiveOneAsync();
        Assert.Equal(2, again.DequeueCount);

        // No delay: visible at once, well before the lease would have run out.
        await Queue.AbandonAsync(again, TimeSpan.Zero);
        var third = await ReceiveOneAsync();
        Assert.Equal(3, third.DequeueCount);
        Assert.Equal(1, await Queue.CountAsync(Work));
    }

    [Fact]
    public async Task Abandon_StaleLease_LeavesTheNewHoldersLeaseAlone()
    {
        await EnqueueAsync(Work, "job");
        var slow = await ReceiveOneAsync();
        Time.Advance(Lease + Second);
        var current = await ReceiveOneAsync();

        await Queue.AbandonAsync(slow, TimeSpan.Zero);

        await AssertNothingVisibleAsync();
        await Queue.CompleteAsync([current]);
        Assert.Equal(0, await Queue.CountAsync(Work));
    }

    [Fact]
    public async Task Enqueue_VisibleAt_DelaysTheMessage()
    {
        var at = Time.GetUtcNow().AddMinutes(5);
        await Queue.EnqueueAsync(Work, [new OutgoingMessage("later", at)]);
        await EnqueueAsync(Work, "now");

        Assert.Equal(2, await Queue.CountAsync(Work));
        var now = await Queue.ReceiveAsync(Work, 10, Lease);
        Assert.Equal(["now"], Bodies(now));
        await Queue.CompleteAsync(now);
        Time.Advance(TimeSpan.FromMinutes(5) - Second);
        await AssertNothingVisibleAsync();
        Time.Advance(Second * 2);
        var m = await ReceiveOneAsync();
        Assert.Equal("later", m.Body);
        Assert.Equal(1, m.DequeueCount);
    }

    [Fact]
    public async Task Receive_AfterMaxDeliveries_MovesMessageToPoisonQueue()
    {
        await EnqueueAsync(Work, "bad", "good");
        var good = await Queue.ReceiveAsync(Work, 10, Lease);
        await Queue.CompleteAsync(good.Where(m => m.Body == "good").ToList());

        var deliveries = 1;
        Time.Advance(Lease + Second);
        while (await Queue.ReceiveAsync(Work, 10, Lease) is [var m])
        {
            deliveries++;
            Assert.Equal("bad", m.Body);
            Assert.Equal(deliveries, m.DequeueCount);
            Time.Advance(Lease + Second);
            Assert.True(deliveries <= MaxDeliveries + 1, "the message keeps coming back");
        }

        Assert.Equal(MaxDeliveries, deliveries);
        Assert.Equal(0, await Queue.CountAsync(Work));
        Assert.Equal(1, await Queue.CountAsync(Work + PoisonSuffix));
        Time.Advance(TimeSpan.FromHours(1));
        await AssertNothingVisibleAsync();
    }

    [Fact]
    public async Task Receive_FromPoisonQueue_ReturnsMessagePoisonedByDeliveries()
    {
        await EnqueueAsync(Work, "bad");
        for (var i = 0; i < MaxDeliveries; i++)
        {
            await ReceiveOneAsync();
            Time.Advance(Lease + Second);
        }

        await AssertNothingVisibleAsync();

        // Someone inspecting or replaying the poison queue gets the message.
        var poisoned = await Queue.ReceiveAsync(Work + PoisonSuffix, 10, Lease);
        Assert.Equal(["bad"], Bodies(poisoned));
        Assert.Equal(Work + PoisonSuffix, poisoned[0].Queue);
        await Queue.CompleteAsync(poisoned);
        Assert.Equal(0, await Queue.CountAsync(Work + PoisonSuffix));
    }

    [Fact]
    public async Task DeadLetter_MovesMessageToPoisonQueue()
    {
        await EnqueueAsync(Work, "bad", "fine");
        var bad = await ReceiveOneAsync();

        await Queue.DeadLetterAsync(bad, "template missing");

        Assert.Equal(1, await Queue.CountAsync(Work));
        Assert.Equal(1, await Queue.CountAsync(Work + PoisonSuffix));
        Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(["fine"], Bodies(await Queue.ReceiveAsync(Work, 10, Lease)));
        var poisoned = await Queue.ReceiveAsync(Work + PoisonSuffix, 10, Lease);
        Assert.Equal(["bad"], Bodies(poisoned));
    }

    [Fact]
    public async Task Queues_AreIndependent()
    {
        await EnqueueAsync("a", "a1", "a2");
        await EnqueueAsync("b", "b1");

        Assert.Equal(2, await Queue.CountAsync("a"));
        Assert.Equal(1, await Queue.CountAsync("b"));
        Assert.Equal(0, await Queue.CountAsync("c"));
        var fromA = await Queue.ReceiveAsync("a", 10, Lease);
        Assert.Equal(["a1", "a2"], Bodies(fromA));
        Assert.All(fromA, m => Assert.Equal("a", m.Queue));
        await Queue.CompleteAsync(fromA);

        Assert.Equal(0, await Queue.CountAsync("a"));
        Assert.Equal(1, await Queue.CountAsync("b"));
        Assert.Empty(await Queue.ReceiveAsync("c", 10, Lease));
        var fromB = await ReceiveOneAsync("b");
        Assert.Equal("b1", fromB.Body);
        Assert.Equal("b", fromB.Queue);
    }

    [Fact]
    public async Task Reopen_MessagesSurvive()
    {
        await EnqueueAsync(Work, "a", "b");
        await Queue.EnqueueAsync(Work, [new OutgoingMessage("c", Time.GetUtcNow().AddMinutes(10))]);
        var leased = await ReceiveOneAsync();
        Assert.Equal("a", leased.Body);
        var done = await Queue.ReceiveAsync(Work, 1, Lease);
        Assert.Equal(["b"], Bodies(done));
        await Queue.CompleteAsync(done);

        await ReopenAsync();

        Assert.Equal(2, await Queue.CountAsync(Work));
        Time.Advance(TimeSpan.FromMinutes(10) + Second);
        var after = await Queue.ReceiveAsync(Work, 10, Lease);
        Assert.Equal(["a", "c"], Bodies(after));
        Assert.Equal(2, after[0].DequeueCount);
        Assert.Equal(1, after[1].DequeueCount);
    }

    [Fact]
    public async Task Enqueue_2000ConcurrentCalls_EveryMessageReceivedExactlyOnce()
    {
        const int n = 2000;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, n).Select(i => Task.Run(() => EnqueueAsync(Work, $"m{i}"))));
        var enqueueTime = sw.Elapsed;

        // Every call returned, so every message is stored.
        Assert.Equal(n, await Queue.CountAsync(Work));
        var bodies = await DrainAsync();
        Assert.Equal(n, bodies.Count);
        Assert.Equal(n, bodies.Distinct().Count());
        Assert.Equal(Enumerable.Range(0, n).Select(i => $"m{i}").Order(StringComparer.Ordinal), bodies.Order(StringComparer.Ordinal));
        Assert.Equal(0, await Queue.CountAsync(Work));
        Time.Advance(TimeSpan.FromHours(1));
        await AssertNothingVisibleAsync();
        Assert.True(enqueueTime < TimeSpan.FromSeconds(60), $"2,000 concurrent enqueues took {enqueueTime}");
    }

    [Fact]
    public async Task WaitForWork_ReturnsPromptlyAfterEnqueueFromAnotherTask()
    {
        // The wait's own timeout is far longer than the test allows it, so returning at all means the enqueue woke it
        // (a bound on elapsed time would fail whenever a loaded machine stalls the test).
        var waiting = Queue.WaitForWorkAsync(Work, TimeSpan.FromHours(1));
        await Task.Run(async () =>
        {
            await Task.Delay(50);
            await EnqueueAsync(Work, "wake");
        });

        await waiting.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal("wake", (await ReceiveOneAsync()).Body);
    }

    [Fact]
    public async Task WaitForWork_NothingEnqueued_ReturnsByTheTimeout()
    {
        // Nothing will wake it: only its timeout can end the wait before the test's bound.
        await Queue.WaitForWorkAsync(Work, TimeSpan.FromMilliseconds(200)).WaitAsync(TimeSpan.FromMinutes(2));
    }
}

/// <summary>The queue conformance suite against <see cref="SqliteWorkQueue"/> on a real file.</summary>
public sealed class SqliteWorkQueueConformanceTests : WorkQueueConformance
{
    private readonly TempFolder _folder = new();

    private string DbPath => _folder.File("queue.db");

    private SqliteWorkQueue Sqlite => (SqliteWorkQueue)Queue;

    protected override async Task<IWorkQueue> CreateQueueAsync(TimeProvider time) => await SqliteWorkQueue.OpenAsync(DbPath, time);

    protected override async Task<IWorkQueue> ReopenQueueAsync(IWorkQueue queue, TimeProvider time)
    {
        await ((SqliteWorkQueue)queue).DisposeAsync();
        return await SqliteWorkQueue.OpenAsync(DbPath, time);
    }

    protected override Task DeleteStorageAsync()
    {
        _folder.Delete();
        return Task.CompletedTask;
    }

    [Fact]
    public void MaxDeliveries_DefaultsToFive() => Assert.Equal(5, Sqlite.MaxDeliveries);

    [Fact]
    public async Task PoisonAsync_AfterMaxDeliveries_RecordsWhy()
    {
        await EnqueueAsync(Work, "bad");
        for (var i = 0; i <= MaxDeliveries; i++)
        {
            await Queue.ReceiveAsync(Work, 10, Lease);
            Time.Advance(Lease + Second);
        }

        var (body, reason) = Assert.Single(await Sqlite.PoisonAsync(Work));
        Assert.Equal("bad", body);
        Assert.Contains("5 times", reason, StringComparison.Ordinal);
        Assert.Empty(await Sqlite.PoisonAsync("other"));
    }

    [Fact]
    public async Task PoisonAsync_DeadLetter_RecordsTheGivenReason()
    {
        await EnqueueAsync(Work, "first", "second");
        foreach (var m in await Queue.ReceiveAsync(Work, 10, Lease))
        {
            await Queue.DeadLetterAsync(m, $"reason for {m.Body}");
        }

        var poisoned = await Sqlite.PoisonAsync(Work);
        Assert.Equal([("first", "reason for first"), ("second", "reason for second")], poisoned);
    }

    [Fact]
    public async Task Open_LeasesOfAnEarlierProcess_AreReleasedAtOnce()
    {
        await EnqueueAsync(Work, "in flight");
        await Queue.ReceiveAsync(Work, 10, TimeSpan.FromMinutes(10));

        await ReopenAsync();

        var m = await ReceiveOneAsync();
        Assert.Equal("in flight", m.Body);
        Assert.Equal(2, m.DequeueCount);
    }

    [Fact]
    public async Task Open_DelayedMessagesStayDelayed()
    {
        await Queue.EnqueueAsync(Work, [new OutgoingMessage("later", Time.GetUtcNow().AddMinutes(10))]);

        await ReopenAsync();

        await AssertNothingVisibleAsync();
        Time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal("later", (await ReceiveOneAsync()).Body);
    }

    [Fact]
    public async Task Enqueue_AfterDispose_Throws()
    {
        var other = await SqliteWorkQueue.OpenAsync(_folder.File("other.db"), Time);
        await other.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => other.EnqueueAsync(Work, [new OutgoingMessage("late")]));
    }

    [Fact]
    public async Task DisposeAsync_Twice_IsHarmless()
    {
        var other = await SqliteWorkQueue.OpenAsync(_folder.File("other.db"), Time);
        await other.EnqueueAsync(Work, [new OutgoingMessage("kept")]);
        await other.DisposeAsync();

        var e = await Record.ExceptionAsync(async () => await other.DisposeAsync());

        Assert.Null(e);
    }
}
