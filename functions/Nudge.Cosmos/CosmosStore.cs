using System.Net;
using Azure.Identity;
using Microsoft.Azure.Cosmos;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

/// <summary>
/// The profile store on Cosmos DB (NoSQL API), with the containers of infra-bicep/cosmos-containers.json: everything
/// of one person in that person's partition of <c>people</c>, and small index containers for what is looked up across
/// people (identifiers, push tokens, due timers, message and instance ids, idempotency keys).
/// <para>
/// Cosmos DB has no multi-document transaction that works everywhere Nudge runs (the emulator has no transactional
/// batch, bulk, stored procedures or TTL), so a session applies each write as it goes and <see cref="IStoreSession.CommitAsync"/>
/// only records the session's idempotency keys. Every operation that writes several documents writes them in an order
/// that keeps the store correct if the process dies between any two of them: an index entry (identifier claim, timer
/// entry, lookup) is written before the document it points to and removed after it, and an entry counts only while the
/// document it points to confirms it. Entries a crash leaves behind are therefore invisible to readers, and are taken
/// over or removed once they are older than <see cref="CosmosStoreOptions.HalfWriteGrace"/>.
/// </para>
/// <para>
/// Optimistic concurrency uses ETags: profile and instance versions, message claims and send outcomes are checked
/// and written with If-Match, and a lost race throws <see cref="ConcurrencyException"/> (or returns false where the
/// contract says so) without writing anything.
/// </para>
/// </summary>
public sealed partial class CosmosStore : IStore, IAsyncDisposable
{
    /// <summary>
    /// What this store declares about its sessions: they are not transactions. Writes are visible as soon as they are
    /// made and a session disposed without commit keeps them; only its idempotency keys are left unrecorded, so the
    /// work is done again (idempotently) when its input is retried.
    /// </summary>
    public const bool SessionsAreTransactions = false;

    private readonly CosmosClient _client;
    private readonly TimeProvider _time;
    private readonly long _graceMs;
    private long _lastSeq;
    private int _disposed;

    private CosmosStore(CosmosClient client, Database database, TimeProvider time, TimeSpan grace)
    {
        _client = client;
        _time = time;
        _graceMs = (long)grace.TotalMilliseconds;
        People = new DocContainer(database.GetContainer("people"));
        Identifiers = new DocContainer(database.GetContainer("identifiers"));
        Tokens = new DocContainer(database.GetContainer("tokens"));
        Timers = new DocContainer(database.GetContainer("timers"));
        Lookups = new DocContainer(database.GetContainer("lookups"));
        Processed = new DocContainer(database.GetContainer("processed"));
        DeliveryEvents = new DocContainer(database.GetContainer("deliveryEvents"));
    }

    internal DocContainer People { get; }

    internal DocContainer Identifiers { get; }

    internal DocContainer Tokens { get; }

    internal DocContainer Timers { get; }

    internal DocContainer Lookups { get; }

    internal DocContainer Processed { get; }

    internal DocContainer DeliveryEvents { get; }

    /// <summary>
    /// Connects to the account, creates the database and containers when <see cref="CosmosStoreOptions.CreateContainers"/>
    /// is set (otherwise checks that they exist), and returns the store.
    /// </summary>
    /// <param name="options">Validated here.</param>
    /// <param name="time">The clock for half-write grace periods and event order; the system clock by default.</param>
    /// <param name="ct">Cancels opening.</param>
    /// <exception cref="ArgumentException">The options have problems; the message lists each by setting name.</exception>
    /// <exception cref="InvalidOperationException">A container is missing and the store may not create it.</exception>
    /// <exception cref="CosmosException">The account refused a request (wrong key, no permission, unreachable).</exception>
    public static Task<CosmosStore> OpenAsync(CosmosStoreOptions options, TimeProvider? time = null, CancellationToken ct = default) =>
        OpenAsync(options, time, configure: null, ct);

    /// <param name="options">Validated here.</param>
    /// <param name="time">The clock; the system clock by default.</param>
    /// <param name="configure">Tests add request handlers here (fault injection).</param>
    /// <param name="ct">Cancels opening.</param>
    internal static async Task<CosmosStore> OpenAsync(CosmosStoreOptions options, TimeProvider? time, Action<CosmosClientOptions>? configure, CancellationToken ct)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException($"{CosmosStoreOptions.Section} is not usable: {string.Join("; ", errors)}", nameof(options));
        }

        var client = CreateClient(options, configure);
        try
        {
            var set = CosmosContainerSet.Load();
            Database database;
            if (options.CreateContainers)
            {
                database = (await client.CreateDatabaseIfNotExistsAsync(options.Database, cancellationToken: ct)).Database;
                foreach (var c in set.Containers)
                {
                    // Never ReplaceContainer: the store adopts what exists (the emulator even drops every item on replace).
                    await database.CreateContainerIfNotExistsAsync(c.ToProperties(), cancellationToken: ct);
                }
            }
            else
            {
                database = client.GetDatabase(options.Database);
                foreach (var name in CosmosContainerSet.Required)
                {
                    try
                    {
                        await database.GetContainer(name).ReadContainerAsync(cancellationToken: ct);
                    }
                    catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
                    {
                        throw new InvalidOperationException(
                            $"Cosmos DB container '{name}' (database '{options.Database}', {options.Endpoint}) does not exist: deploy infra-bicep, " +
                            $"which declares it, or set {CosmosStoreOptions.Section}:CreateContainers=true (local emulator)", e);
                    }
                }
            }

            return new CosmosStore(client, database, time ?? TimeProvider.System, options.HalfWriteGrace);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private static CosmosClient CreateClient(CosmosStoreOptions options, Action<CosmosClientOptions>? configure)
    {
        // Without this every client probes the Azure VM metadata endpoint (169.254.169.254) for telemetry: Nudge needs
        // none of it, and outside Azure that is traffic off the machine that must not happen. Set before the first client.
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("COSMOS_DISABLE_IMDS_ACCESS")))
        {
            Environment.SetEnvironmentVariable("COSMOS_DISABLE_IMDS_ACCESS", "true");
        }

        var endpoint = new Uri(options.Endpoint!);
        var acceptAny = options.AcceptAnyServerCertificate;
        var clientOptions = new CosmosClientOptions
        {
            ApplicationName = "nudge",
            // Gateway mode speaks HTTPS to the endpoint only: what the emulator serves, and what Functions' outbound rules allow.
            ConnectionMode = ConnectionMode.Gateway,
            // The emulator advertises endpoints that are not the one we reach it on; in Azure the SDK may fail over between regions.
            LimitToEndpoint = endpoint.IsLoopback || acceptAny,
            RequestTimeout = options.RequestTimeout,
            EnableContentResponseOnWrite = false,
            // Documents go through the stream API with System.Text.Json; this covers anything the SDK serialises itself.
            UseSystemTextJsonSerializerWithOptions = StoreJson.Options,
            HttpClientFactory = () =>
            {
                var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
                if (acceptAny)
                {
                    // Validate() allows this for a loopback endpoint only: the local emulator's self-signed certificate.
#pragma warning disable CA5359 // Explicitly requested for the loopback emulator; never for a remote endpoint.
                    handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
#pragma warning restore CA5359
                }

                return new HttpClient(handler, disposeHandler: true);
            },
        };
        configure?.Invoke(clientOptions);
        return string.IsNullOrEmpty(options.Key)
            ? new CosmosClient(options.Endpoint, new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned), clientOptions)
            : new CosmosClient(options.Endpoint, options.Key, clientOptions);
    }

    public Task<IStoreSession> OpenSessionAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        return Task.FromResult<IStoreSession>(new CosmosSession(this));
    }

    public Task<string?> ResolveAsync(Identifier identifier, CancellationToken ct = default) => ResolveCoreAsync(identifier, ct);

    public Task<Profile?> GetProfileAsync(string key, CancellationToken ct = default) => GetProfileCoreAsync(key, ct);

    public async Task<IReadOnlyDictionary<string, Profile>> GetProfilesAsync(IReadOnlyCollection<string> keys, CancellationToken ct = default)
    {
        if (keys.Count == 0)
        {
            return new Dictionary<string, Profile>();
        }

        // One ReadMany: each profile is the document "profile" in its person's partition.
        var docs = await People.ReadManyAsync<PersonDoc<Profile>>(keys.Distinct(StringComparer.Ordinal).Select(k => (CosmosIds.Profile, k)), ct);
        return docs.ToDictionary(d => d.Pk, d =>
        {
            d.Doc.Version = d.Version ?? 0;
            return d.Doc;
        }, StringComparer.Ordinal);
    }

    public Task<IReadOnlyList<Device>> GetDevicesAsync(string profileKey, CancellationToken ct = default) => GetDevicesCoreAsync(profileKey, ct);

    public Task<Device?> GetDeviceAsync(string token, CancellationToken ct = default) => GetDeviceCoreAsync(token, ct);

    public Task<IReadOnlyList<StoredEvent>> GetRecentEventsAsync(string profileKey, int limit, CancellationToken ct = default) =>
        RecentEventsAsync(profileKey, limit, ct);

    public Task<IReadOnlyList<StoredEvent>> GetUnattachedEventsAsync(int limit, CancellationToken ct = default) =>
        RecentEventsAsync(CosmosIds.Unattached, limit, ct);

    public async Task<StoreCounts> CountAsync(CancellationToken ct = default) => new(
        await People.CountAsync(new QueryDefinition("SELECT VALUE COUNT(1) FROM c WHERE c.type = @t").WithParameter("@t", DocType.Profile), ct),
        await Tokens.CountAsync(new QueryDefinition("SELECT VALUE COUNT(1) FROM c WHERE IS_STRING(c.profileKey)"), ct),
        await People.CountAsync(new QueryDefinition("SELECT VALUE COUNT(1) FROM c WHERE c.type = @t").WithParameter("@t", DocType.Event), ct),
        await Processed.CountAsync(new QueryDefinition("SELECT VALUE COUNT(1) FROM c"), ct));

    public async Task<IReadOnlyList<(string Id, string ProfileKey)>> DueInstancesAsync(DateTimeOffset now, int limit, CancellationToken ct = default)
    {
        var due = new List<(string, string)>();
        if (limit <= 0)
        {
            return due;
        }

        await foreach (var (_, doc) in DueAsync<JourneyInstance>(DocType.Instance, now.ToUnixTimeMilliseconds(), ct))
        {
            due.Add((doc.Doc.Id, doc.Pk));
            if (due.Count == limit)
            {
                break;
            }
        }

        return due;
    }

    public async Task<DateTimeOffset?> NextWakeAsync(CancellationToken ct = default)
    {
        await foreach (var (entry, _) in DueAsync<JourneyInstance>(DocType.Instance, null, ct))
        {
            return DateTimeOffset.FromUnixTimeMilliseconds(entry.Due);
        }

        return null;
    }

    public Task<IReadOnlyList<JourneyInstance>> GetInstancesAsync(string profileKey, CancellationToken ct = default) => InstancesOfAsync(profileKey, ct);

    public async Task<IReadOnlyList<Message>> GetMessagesAsync(string profileKey, int limit, CancellationToken ct = default)
    {
        if (limit <= 0)
        {
            return [];
        }

        var q = new QueryDefinition("SELECT TOP @n * FROM c WHERE c.pk = @pk AND c.type = @t ORDER BY c.createdAt DESC, c.key ASC")
            .WithParameter("@n", limit).WithParameter("@pk", profileKey).WithParameter("@t", DocType.Message);
        return [.. (await People.QueryAllAsync<PersonDoc<Message>>(q, profileKey, ct)).Select(d => d.Doc)];
    }

    public async Task<Message?> GetMessageAsync(string id, CancellationToken ct = default) =>
        (await LocateAsync<Message>(DocType.Message, id, null, ct))?.Doc;

    public async Task<IReadOnlyList<MessageSummary>> ListMessagesAsync(MessageListQuery query, CancellationToken ct = default)
    {
        // Spans people: a cross-partition query on the fields kept beside each message document, newest first (the
        // composite index on createdAt and key, read backwards). A move interrupted by a crash may leave a copy in two
        // partitions for a while: copies are adjacent in this order, so each message is listed once, and the page is
        // topped up past the copies it skipped.
        var list = new List<MessageSummary>();
        var after = query.After ?? new MessageListCursor(query.To, "");
        var afterMs = after.CreatedAt.ToUnixTimeMilliseconds();
        var afterId = after.Id;
        while (list.Count < query.Limit)
        {
            var want = query.Limit - list.Count;
            var sql = new System.Text.StringBuilder("SELECT TOP @n * FROM c WHERE c.type = @type AND c.createdAt >= @from AND c.createdAt < @to "
                + "AND (c.createdAt < @t OR (c.createdAt = @t AND c.key < @id))");
            var args = new List<(string Name, object Value)>();
            foreach (var (field, name, value) in new[]
            {
                ("journeyId", "@journey", query.JourneyId), ("stepId", "@step", query.StepId), ("channel", "@channel", query.Channel),
                ("status", "@status", query.Status), ("reason", "@reason", query.Reason),
            })
            {
                if (value is not null)
                {
                    sql.Append(" AND c.").Append(field).Append(" = ").Append(name);
                    args.Add((name, value));
                }
            }

            if (query.Platform is not null)
            {
                sql.Append(" AND ARRAY_CONTAINS(c.platforms, @platform)");
                args.Add(("@platform", query.Platform));
            }

            var q = new QueryDefinition(sql.Append(" ORDER BY c.createdAt DESC, c.key DESC").ToString())
                .WithParameter("@n", want).WithParameter("@type", DocType.Message).WithParameter("@from", query.From.ToUnixTimeMilliseconds())
                .WithParameter("@to", query.To.ToUnixTimeMilliseconds()).WithParameter("@t", afterMs).WithParameter("@id", afterId);
            foreach (var (name, value) in args)
            {
                q = q.WithParameter(name, value);
            }

            var page = await People.QueryAllAsync<PersonDoc<Message>>(q, null, ct);
            foreach (var d in page)
            {
                if (list.Count == 0 || list[^1].Id != d.Doc.Id)
                {
                    list.Add(MessageSummary.Of(d.Doc));
                }

                (afterMs, afterId) = (d.CreatedAt ?? 0, d.Doc.Id);
            }

            if (page.Count < want)
            {
                break;
            }
        }

        return list;
    }

    public async Task<IReadOnlyList<Message>> ReadyMessagesAsync(DateTimeOffset now, int limit, CancellationToken ct = default)
    {
        var ready = new List<Message>();
        if (limit <= 0)
        {
            return ready;
        }

        await foreach (var (_, doc) in DueAsync<Message>(DocType.Message, now.ToUnixTimeMilliseconds(), ct))
        {
            ready.Add(doc.Doc);
            if (ready.Count == limit)
            {
                break;
            }
        }

        return ready;
    }

    public Task<DateTimeOffset?> GetTokenBounceAsync(string token, CancellationToken ct = default) => TokenBounceAsync(token, ct);

    public Task<IReadOnlySet<string>> GetHeldClaimsAsync(IReadOnlyCollection<HeldClaim> claims, CancellationToken ct = default) =>
        HeldClaimsCoreAsync(claims, ct);

    public Task<IReadOnlyDictionary<string, (Device Device, DateTimeOffset? BouncedAt)>> GetPushTargetsAsync(IReadOnlyCollection<string> tokens, CancellationToken ct = default) =>
        PushTargetsAsync(tokens, ct);

    public async Task<IReadOnlyList<OutboxEntry>> GetOutboxAsync(int limit, CancellationToken ct = default)
    {
        if (limit <= 0)
        {
            return [];
        }

        // The sandbox's outbox spans people: one cross-partition query (the sandbox is for trying Nudge, not for volume).
        var q = new QueryDefinition("SELECT TOP @n * FROM c WHERE c.type = @t ORDER BY c.recordedAt DESC, c.key ASC")
            .WithParameter("@n", limit).WithParameter("@t", DocType.Outbox);
        return [.. (await People.QueryAllAsync<PersonDoc<OutboxEntry>>(q, null, ct)).Select(d => d.Doc)];
    }

    public async Task<IReadOnlyList<DeliveryEvent>> GetDeliveryEventsAsync(DeliveryEventQuery query, CancellationToken ct = default)
    {
        if (query.Limit <= 0)
        {
            return [];
        }

        // Spans the days of the range (one partition per UTC day): a cross-partition query in (time, id) order.
        var column = query.ByRecordedAt ? "recordedAt" : "at";
        var after = query.After ?? new DeliveryEventCursor(query.From, "");
        var q = new QueryDefinition($"SELECT TOP @n * FROM c WHERE c.{column} >= @from AND c.{column} < @to "
                + $"AND (c.{column} > @t OR (c.{column} = @t AND c.id > @id)) ORDER BY c.{column}, c.id")
            .WithParameter("@n", query.Limit).WithParameter("@from", query.From.ToUnixTimeMilliseconds())
            .WithParameter("@to", query.To.ToUnixTimeMilliseconds()).WithParameter("@t", after.Time.ToUnixTimeMilliseconds())
            .WithParameter("@id", after.Id);
        return [.. (await DeliveryEvents.QueryAllAsync<DeliveryEventDoc>(q, null, ct)).Select(d => d.Doc)];
    }

    internal async Task AppendDeliveryEventCoreAsync(DeliveryEvent e)
    {
        // Create: an event stored before (same derived id) stays as it was.
        var pk = e.At.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        await DeliveryEvents.CreateAsync(new DeliveryEventDoc
        {
            Id = e.Id,
            Pk = pk,
            At = e.At.ToUnixTimeMilliseconds(),
            RecordedAt = e.RecordedAt.ToUnixTimeMilliseconds(),
            Doc = e,
        }, pk);
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _client.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Now on the store's clock, in Unix milliseconds.</summary>
    internal long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>True when an index entry written at <paramref name="writtenAtMs"/> is past its grace period: its writer is gone.</summary>
    internal bool Abandoned(long writtenAtMs) => NowMs() - writtenAtMs > _graceMs;

    /// <summary>
    /// A number that grows with every call (microseconds on the store's clock, kept strictly increasing): the order of
    /// appended events, which breaks ties between equal timestamps as the SQLite store's row order does. Microseconds,
    /// not ticks, so the number stays exact as a JSON double.
    /// </summary>
    internal long NextSeq()
    {
        var now = (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / (TimeSpan.TicksPerMillisecond / 1000);
        while (true)
        {
            var last = Volatile.Read(ref _lastSeq);
            var next = Math.Max(last + 1, now);
            if (Interlocked.CompareExchange(ref _lastSeq, next, last) == last)
            {
                return next;
            }
        }
    }
}
