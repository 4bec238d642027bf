using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using Nudge.Core.Ingest;
using Nudge.Core.Journeys;
using Nudge.Core.Queues;
using Nudge.Core.Storage;
using Nudge.Core.Text;
using Nudge.Delivery.Email;
using Nudge.Host.Admin;
using Nudge.Host.Auth;
using Nudge.Host.CustomHandler;
using Nudge.Host.Dashboard;
using Nudge.Host.Ingest;
using Nudge.Host.Reports;
using Nudge.Host.Telemetry;
using Nudge.Host.Webhooks;
using Nudge.Host.Workers;
using Nudge.Pipeline;
using Nudge.Sqlite.Queue;

namespace Nudge.Host.Hosting;

/// <summary>
/// Builds Nudge.Host. Embedded (the default): HTTP APIs, SQLite store and queues, and the pipeline workers in one
/// process. Functions mode (FUNCTIONS_CUSTOMHANDLER_PORT set by the Azure Functions host): the same APIs and pipeline
/// as the host's custom handler, on 127.0.0.1 only, with no workers: the host's triggers drive the stages.
/// </summary>
public static class NudgeServer
{
    /// <summary>Where the embedded server listens unless --urls or ASPNETCORE_URLS says otherwise.</summary>
    public const string DefaultUrl = "http://127.0.0.1:7071";

    /// <summary>Largest request Kestrel accepts at all; each API enforces its own lower limit: 2 MiB.</summary>
    private const int MaxRequestBytes = 2 * 1024 * 1024;

    /// <summary>
    /// Largest invocation the Functions host may post: 8 MiB. It carries the client's body as an escaped JSON string
    /// (up to twice as long) next to the headers; each API still enforces its own limit on the body itself.
    /// </summary>
    private const int MaxInvocationBytes = 8 * 1024 * 1024;

    /// <param name="args">Command-line arguments (configuration overrides).</param>
    /// <param name="time">The clock; tests pass a virtual one.</param>
    /// <param name="providerHandlers">HTTP handlers per provider name, for embedders that need their own (see <see cref="DeliverySetup.Load"/>).</param>
    /// <param name="wrapStore">Wraps the store that Nudge:Store:Kind opened (instrumentation, fault injection in tests); null uses it as is.</param>
    /// <param name="simulation">
    /// For `simulate`: embedded whatever the environment says, every channel in the sandbox (configured providers are
    /// ignored, so a simulation never sends), and no start-up banner.
    /// </param>
    /// <exception cref="NudgeConfigurationException">Settings are missing or invalid; every problem is listed, each naming its setting.</exception>
    /// <exception cref="NudgeSetupException">
    /// The data folder is held by another Nudge process, or cannot be created or written; the store cannot be opened
    /// (a SQLite file that is not a database, Cosmos DB refusing the store or lacking a container).
    /// </exception>
    public static async Task<WebApplication> BuildAsync(string[] args, TimeProvider? time = null, Func<string, HttpMessageHandler?>? providerHandlers = null,
        Func<IStore, IStore>? wrapStore = null, bool simulation = false)
    {
        // appsettings.json ships beside the executable; relative paths in settings (data, journeys) stay relative to
        // the working directory, which `dotnet run` sets to the repository root.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        var functionsPort = simulation ? null : FunctionsHost.Port(builder.Configuration);
        var functions = functionsPort is not null;
        if (functionsPort is { } port)
        {
            // The Functions host calls http://127.0.0.1:{port}; nothing else may reach the handler, whatever --urls says.
            builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        }
        else if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = functions ? MaxInvocationBytes : MaxRequestBytes;
        });

        // Every setting is checked before anything is created (data folder, credentials, store), and every problem is
        // reported at once, each by its full key. The options binding below is then known to succeed.
        var problems = new List<string>();
        if (!functions)
        {
            problems.AddRange(UrlProblems(builder.Configuration["urls"]));
        }

        problems.AddRange(SettingsCatalog.UnknownKeys(builder.Configuration));
        problems.AddRange(SettingsCatalog.UnresolvedKeyVaultReferences(builder.Configuration));
        var options = NudgeSettings.Read(builder.Configuration, problems);
        builder.Services.AddOptions<NudgeOptions>().Bind(builder.Configuration.GetSection(NudgeOptions.Section));
        var (journeys, engineOptions) = NudgeConfigurationException.Collect(problems, () => JourneySetup.Load(options.Journeys));
        var fromSettings = functions ? NudgeConfigurationException.Collect(problems, () => Credentials.FromSettings(options.Auth)) : null;
        if (functions)
        {
            problems.AddRange(FunctionsSettingsProblems(options));
        }

        problems.AddRange(StoreSetup.Problems(options));
        problems.AddRange(DeliverySetup.Validate(builder.Configuration, options));
        problems.AddRange(WebhookSettings.Validate(builder.Configuration));
        problems.AddRange(TelemetrySetup.Validate(builder.Configuration, options.Telemetry));
        NudgeConfigurationException.ThrowIfAny(problems);

        builder.AddNudgeTelemetry(options.Telemetry);
        Credentials credentials;
        var generated = false;
        string? dataDir = null;
        FileStream? dataLock = null;
        if (functions)
        {
            credentials = fromSettings!;
            if (StoreSetup.UsesDataDir(options.Store))
            {
                (dataDir, dataLock) = UsableDataDir(options.DataDir);
            }
        }
        else
        {
            (dataDir, dataLock) = UsableDataDir(options.DataDir);
            credentials = Credentials.LoadOrCreate(options.Auth, dataDir, out generated);
        }

        time ??= TimeProvider.System;
        IStore opened;
        SqliteWorkQueue? queue;
        try
        {
            opened = await StoreSetup.OpenAsync(options, dataDir ?? "", time);
            queue = functions ? null : await SqliteWorkQueue.OpenAsync(Path.Combine(dataDir!, "queue.db"), time);
        }
        catch (Exception e)
        {
            // A program that embeds Nudge may build again on the same folder once the problem is fixed.
            dataLock?.Dispose();
            if (StoreFailure(e, options, dataDir) is { } problem)
            {
                throw new NudgeSetupException(problem, e);
            }

            throw;
        }

        var store = wrapStore?.Invoke(opened) ?? opened;
        var queueMeter = queue is not null && options.Telemetry.Otlp ? HostTelemetry.QueueDepth(queue) : null;

        var limits = new IngestLimits();
        var validator = new IngestValidator(limits, new PhoneNormalizer(options.DefaultPhoneRegion));
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(credentials);
        builder.Services.AddSingleton(new RateLimits(options.RateLimits));
        builder.Services.AddSingleton(limits);
        builder.Services.AddSingleton(new TrackApiParser(validator));
        builder.Services.AddSingleton(new SegmentParser(validator));
        builder.Services.AddSingleton<IStore>(store);
        if (queue is not null)
        {
            builder.Services.AddSingleton<IWorkQueue>(queue);
            builder.Services.AddSingleton(queue);
            builder.Services.AddSingleton<IngestWriter>();
        }
        else
        {
            builder.Services.AddFunctionsMode();
        }

        // Embedded: one writer applies events and timers, so every stored event already reached its instances.
        // Functions: process-event and run-step run concurrently, so timers re-read the events since an instance started.
        var runtime = new JourneyRuntime(journeys, new JourneyEngine(engineOptions, new Templates()), limits, eventsAlwaysDelivered: !functions)
        {
            Attribution = options.Reports.Rule(),
        };
        builder.Services.AddSingleton(runtime);
        builder.Services.AddSingleton(new EventProcessor(limits, time, runtime));
        var links = new UnsubscribeLinks(System.Text.Encoding.UTF8.GetBytes(credentials.LinkKey));
        builder.Services.AddSingleton(links);
        var tracking = new EmailTracking(System.Text.Encoding.UTF8.GetBytes(credentials.LinkKey));
        builder.Services.AddSingleton(tracking);
        builder.Services.AddSingleton(new DeliveryMetricsParser(limits));
        Uri? listening = null;
        var (channels, sendOptions) = DeliverySetup.Load(builder.Configuration, options, time, links, () => listening ?? new Uri(DefaultUrl), providerHandlers, sandboxOnly: simulation);
        builder.Services.AddSingleton(new SendStage(store, channels, sendOptions with
        {
            ClaimFor = TimeSpan.FromSeconds(options.Workers.SendClaimSeconds),
            QuietHours = engineOptions.Schedule,
            Caps = engineOptions.Caps,
            JourneyCaps = id => runtime.Find(id)?.Caps ?? [],

            // Open pixel and signed click links point where unsubscribe links do: the public address, else the listening one.
            EmailHtml = (m, html) => tracking.Rewrite(html, m.Id, sendOptions.PublicBaseUrl ?? listening ?? new Uri(DefaultUrl)),
        }));
        builder.Services.AddSingleton(WebhookSettings.Load(builder.Configuration, options, sendOptions.PublicBaseUrl));
        builder.Services.AddSingleton(new DeliveryReports(store, options.Reports.Rule()));
        builder.Services.AddSingleton<ReportingWebhookSender>();
        builder.Services.AddSingleton<DeliveryAlerter>();
        builder.Services.AddSingleton<RetentionPurger>();
        if (!functions)
        {
            builder.Services.AddSingleton<WorkSignal>();
            builder.Services.AddSingleton<EventWorker>();
            builder.Services.AddSingleton<TimerWorker>();
            builder.Services.AddSingleton<SendWorker>();
            builder.Services.AddSingleton<ReportingWorker>();
            if (options.Workers.Enabled)
            {
                builder.Services.AddHostedService<RetentionWorker>();
                builder.Services.AddHostedService(sp => sp.GetRequiredService<EventWorker>());
                builder.Services.AddHostedService(sp => sp.GetRequiredService<TimerWorker>());
                builder.Services.AddHostedService(sp => sp.GetRequiredService<SendWorker>());
                builder.Services.AddHostedService(sp => sp.GetRequiredService<ReportingWorker>());
            }
        }

        var app = builder.Build();
        if (functions)
        {
            app.UseFunctionsDispatch();
        }

        app.MapHealth();
        app.MapTrackApi();
        app.MapSegmentApi();
        app.MapAdminApi();
        app.MapJourneysAdmin();
        app.MapMessagesAdmin();
        app.MapReportsAdmin();
        app.MapDashboard(functions ? FunctionsHost.AdminPublicPrefix + "/v1" : "/admin/v1");

        app.MapUnsubscribe();
        app.MapEmailTracking();
        app.MapTwilioWebhooks();
        app.MapSendGridWebhook();
        if (functions)
        {
            app.MapFunctions();
        }

        app.Lifetime.ApplicationStarted.Register(() =>
        {
            listening = BaseAddress(app);
            if (functions)
            {
                AnnounceFunctions(app, dataDir);
            }
            else if (!simulation)
            {
                Announce(app, dataDir!, credentials, generated);
            }
        });
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            queueMeter?.Dispose();
            queue?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            if (opened is IAsyncDisposable disposable)
            {
                disposable.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }

            dataLock?.Dispose();
        });
        return app;
    }

    /// <summary>Files Nudge keeps in its data folder (with SQLite's companions); a folder holding only these is Nudge's own.</summary>
    private static readonly string[] DataFiles = ["nudge.db", "queue.db", "nudge.lock", Credentials.FileName];

    private static (string DataDir, FileStream Lock) OpenDataDir(string configured)
    {
        var dataDir = Path.GetFullPath(configured);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(dataDir);
        }
        else
        {
            // Owner only (0700), like every file in it (0600): profiles, consent and credentials are nobody else's business.
            // A folder made by an older version is tightened too, when it holds nothing but Nudge's files.
            var owner = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            var dir = Directory.CreateDirectory(dataDir, owner);
            if ((dir.UnixFileMode & ~owner) != 0 && dir.EnumerateFileSystemInfos().All(f => DataFiles.Any(d => f.Name.StartsWith(d, StringComparison.Ordinal))))
            {
                dir.UnixFileMode = owner;
            }

            // Files an older version left readable (the databases are tightened as they are opened).
            foreach (var f in new[] { "nudge.lock", Credentials.FileName }.Select(n => new FileInfo(Path.Combine(dataDir, n))).Where(f => f.Exists))
            {
                if ((f.UnixFileMode & ~Sqlite.SqliteDb.OwnerOnly) != 0)
                {
                    f.UnixFileMode = Sqlite.SqliteDb.OwnerOnly;
                }
            }
        }

        return (dataDir, LockDataDir(dataDir));
    }

    /// <summary>
    /// <see cref="OpenDataDir"/>, with what stops it (another process holds the folder, it cannot be created or
    /// written) said in one line that names the setting.
    /// </summary>
    /// <exception cref="NudgeSetupException">The folder cannot be used.</exception>
    private static (string DataDir, FileStream Lock) UsableDataDir(string configured)
    {
        try
        {
            return OpenDataDir(configured);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NudgeSetupException($"Nudge:DataDir: cannot use the data folder {Path.GetFullPath(configured)} ({e.Message}); "
                + "choose a folder this user can create and write, with --Nudge:DataDir or Nudge__DataDir", e);
        }
    }

    /// <summary>Addresses in --urls (or ASPNETCORE_URLS) that Kestrel could not parse; it would only say so when starting, with a stack trace.</summary>
    private static IEnumerable<string> UrlProblems(string? urls)
    {
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string? problem = null;
            try
            {
                Microsoft.AspNetCore.Http.BindingAddress.Parse(url);
            }
            catch (FormatException)
            {
                problem = $"urls: '{url}' is not an address to listen on such as http://127.0.0.1:7071 (--urls or ASPNETCORE_URLS, several separated by ;)";
            }

            if (problem is not null)
            {
                yield return problem;
            }
        }
    }

    /// <summary>
    /// What stops the store or the queue from opening, in one line, when it is the machine's setup rather than a bug: a
    /// SQLite file that is not a database or cannot be written, a Cosmos DB account that refuses the store or lacks a
    /// container. Null for anything else (which keeps its stack trace).
    /// </summary>
    private static string? StoreFailure(Exception e, NudgeOptions o, string? dataDir) => e switch
    {
        Microsoft.Data.Sqlite.SqliteException s => $"Nudge:DataDir: the SQLite files in {dataDir} cannot be opened ({s.Message}); move them away or choose another folder",
        Microsoft.Azure.Cosmos.CosmosException c => $"Nudge:Cosmos: Cosmos DB at {o.Cosmos.Endpoint} refused to open the store ({(int)c.StatusCode} {c.StatusCode}); "
            + "check Nudge:Cosmos:Endpoint and Nudge:Cosmos:Key, or the app's managed identity and its data role",
        InvalidOperationException { InnerException: Microsoft.Azure.Cosmos.CosmosException } => e.Message,
        _ => null,
    };

    /// <summary>Settings only Functions mode needs, each problem named.</summary>
    private static List<string> FunctionsSettingsProblems(NudgeOptions o)
    {
        var problems = new List<string>();
        if (string.IsNullOrEmpty(o.PublicBaseUrl))
        {
            // Unsubscribe links and Twilio callbacks would otherwise point at the handler's loopback port.
            problems.Add("Nudge:PublicBaseUrl is required in Functions mode (app setting Nudge__PublicBaseUrl: the Function App's public https address)");
        }

        // Nudge:Functions:MaxDeliveryCount and SweepLimit carry [Range], checked with the other annotations.
        return problems;
    }

    /// <summary>
    /// One process owns a data folder: the embedded queue releases a dead process's leases at start-up, which is only
    /// safe when no other live process holds them. The OS drops the lock when the process dies, even by kill -9.
    /// </summary>
    private static FileStream LockDataDir(string dataDir)
    {
        var path = Path.Combine(dataDir, "nudge.lock");
        try
        {
            return new FileStream(path, Sqlite.SqliteDb.OwnerOnlyFile(FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e)
        {
            // The exception's own text ("being used by another process") says no more than this.
            throw new NudgeSetupException($"Another Nudge process is using the data folder {dataDir}; stop it, or set Nudge:DataDir to another folder", e);
        }
    }

    /// <summary>
    /// Runs <paramref name="app"/> until it is stopped, then disposes it. An address Kestrel cannot bind (in use, or
    /// not allowed) stops start-up with one line naming it.
    /// </summary>
    /// <exception cref="NudgeSetupException">The address cannot be bound.</exception>
    public static async Task RunAsync(WebApplication app)
    {
        try
        {
            // Probed first: once Kestrel fails to bind, the host has already logged the failure with a stack trace.
            if (AddressInUse(app.Configuration["urls"]) is { } taken)
            {
                throw new NudgeSetupException($"Failed to bind to address {taken}: address already in use; stop what listens there, or choose another address with --urls or ASPNETCORE_URLS");
            }

            try
            {
                await app.StartAsync();
            }
            catch (IOException e)
            {
                // Kestrel's own message names the address: "Failed to bind to address http://127.0.0.1:7071: address already in use."
                throw new NudgeSetupException($"{e.Message.TrimEnd('.')}; stop what listens there, or choose another address with --urls or ASPNETCORE_URLS", e);
            }

            await app.WaitForShutdownAsync();
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    /// <summary>The first address in <paramref name="urls"/> with a fixed port that something on this machine already listens on; null when none.</summary>
    private static string? AddressInUse(string? urls)
    {
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            Microsoft.AspNetCore.Http.BindingAddress address;
            try
            {
                address = Microsoft.AspNetCore.Http.BindingAddress.Parse(url);
            }
            catch (FormatException)
            {
                continue;
            }

            // Host names other than localhost bind every interface in Kestrel; those and port 0 are left to it.
            var ip = address.Host is "localhost" ? IPAddress.Loopback
                : address.Host is "*" or "+" ? IPAddress.Any
                : IPAddress.TryParse(address.Host.Trim('[', ']'), out var parsed) ? parsed : null;
            if (address.IsUnixPipe || address.Port == 0 || ip is null)
            {
                continue;
            }

            try
            {
                using var probe = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                probe.Bind(new IPEndPoint(ip, address.Port));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                return url;
            }
        }

        return null;
    }

    /// <summary>The banner's Channels line: each channel's provider, and the inbound webhooks on beside a sandbox.</summary>
    private static string Channels(WebApplication app)
    {
        var webhooks = app.Services.GetRequiredService<WebhookSettings>();
        return DeliverySetup.Describe(app.Services.GetRequiredService<SendStage>().Channels, webhooks.TwilioAuthToken is not null, webhooks.SendGridKey is not null);
    }

    /// <summary>The address the server bound (useful with port 0).</summary>
    public static Uri BaseAddress(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    /// <summary>"1 journey", "7 journeys": a count with its noun, for the banners and the simulation's timeline.</summary>
    internal static string Count(int n, string one, string many) => n == 1 ? $"1 {one}" : $"{n} {many}";

    private static string Journeys(WebApplication app) => Count(app.Services.GetRequiredService<JourneyRuntime>().Journeys.Count, "journey", "journeys");

    private static void AnnounceFunctions(WebApplication app, string? dataDir)
    {
        var url = BaseAddress(app).ToString().TrimEnd('/');
        var o = app.Services.GetRequiredService<IOptions<NudgeOptions>>().Value;
        var store = dataDir is null ? o.Store.Kind : $"{o.Store.Kind} in {dataDir}";
        var lines = new[]
        {
            $"Nudge is listening on {url} (Azure Functions custom handler; store {store}; workers off; {Journeys(app)} from {Path.GetFullPath(o.Journeys.Dir)})",
            $"  Functions: {string.Join(", ", FunctionsHost.Functions)} (POST {url}/<function>)",
            $"  Channels: {Channels(app)}",
        };
        Console.Out.WriteLine(string.Join(Environment.NewLine, lines));
        Console.Out.Flush();
    }

    private static void Announce(WebApplication app, string dataDir, Credentials c, bool generated)
    {
        var url = BaseAddress(app).ToString().TrimEnd('/');
        var o = app.Services.GetRequiredService<IOptions<NudgeOptions>>().Value;
        var lines = new List<string>
        {
            $"Nudge is listening on {url} (data in {dataDir}; workers {(o.Workers.Enabled ? "on" : "off")}; {Journeys(app)} from {Path.GetFullPath(o.Journeys.Dir)})",
            $"  Track API (Customer.io):  {url}/api/v1/...   HTTP Basic  site id : API key",
            $"  Segment API:              {url}/v1/...       HTTP Basic  write key as user name (or writeKey in the body)",
            $"  Admin API:                {url}/admin/v1/... Authorization: Bearer <admin key>",
            $"  Dashboard:                {url}/dashboard    (asks for the admin key)",
            $"  Channels: {Channels(app)}",
        };
        if (generated)
        {
            lines.Add($"  New credentials were generated and saved to {Path.Combine(dataDir, Credentials.FileName)} (shown only this once):");
            lines.Add($"    site id          {c.SiteId}");
            lines.Add($"    API key          {c.ApiKey}");
            lines.Add($"    Segment writeKey {c.SegmentWriteKey}");
            lines.Add($"    admin key        {c.AdminKey}");
        }
        else
        {
            lines.Add($"  Credentials: from configuration (Nudge:Auth:*) or {Path.Combine(dataDir, Credentials.FileName)}; site id {c.SiteId}");
        }

        // Written to the console, not the log: the one-time secrets must not reach log sinks.
        Console.Out.WriteLine(string.Join(Environment.NewLine, lines));
        Console.Out.Flush();
    }
}
