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
using Nudge.Host.Ingest;
using Nudge.Host.Webhooks;
using Nudge.Host.Workers;
using Nudge.Pipeline;
using Nudge.Sqlite.Queue;
using Nudge.Sqlite.Store;

namespace Nudge.Host.Hosting;

/// <summary>Builds the embedded server: HTTP APIs, SQLite store and queues, and the pipeline workers in one process.</summary>
public static class NudgeServer
{
    /// <summary>Where the embedded server listens unless --urls or ASPNETCORE_URLS says otherwise.</summary>
    public const string DefaultUrl = "http://127.0.0.1:7071";

    /// <summary>Largest request Kestrel accepts at all; each API enforces its own lower limit: 2 MiB.</summary>
    private const int MaxRequestBytes = 2 * 1024 * 1024;

    /// <param name="args">Command-line arguments (configuration overrides).</param>
    /// <param name="time">The clock; tests pass a virtual one.</param>
    /// <param name="providerHandlers">HTTP handlers per provider name, for embedders that need their own (see <see cref="DeliverySetup.Load"/>).</param>
    public static async Task<WebApplication> BuildAsync(string[] args, TimeProvider? time = null, Func<string, HttpMessageHandler?>? providerHandlers = null)
    {
        // appsettings.json ships beside the executable; relative paths in settings (data, journeys) stay relative to
        // the working directory, which `dotnet run` sets to the repository root.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = MaxRequestBytes;
        });

        builder.Services.AddOptions<NudgeOptions>().Bind(builder.Configuration.GetSection(NudgeOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        var options = builder.Configuration.GetSection(NudgeOptions.Section).Get<NudgeOptions>() ?? new NudgeOptions();
        var (journeys, engineOptions) = JourneySetup.Load(options.Journeys);
        var dataDir = Path.GetFullPath(options.DataDir);
        Directory.CreateDirectory(dataDir);
        var dataLock = LockDataDir(dataDir);

        var credentials = Credentials.LoadOrCreate(options.Auth, dataDir, out var generated);
        time ??= TimeProvider.System;
        var store = await SqliteStore.OpenAsync(Path.Combine(dataDir, "nudge.db"));
        var queue = await SqliteWorkQueue.OpenAsync(Path.Combine(dataDir, "queue.db"), time);

        var limits = new IngestLimits();
        var validator = new IngestValidator(limits, new PhoneNormalizer(options.DefaultPhoneRegion));
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(credentials);
        builder.Services.AddSingleton(limits);
        builder.Services.AddSingleton(new TrackApiParser(validator));
        builder.Services.AddSingleton(new SegmentParser(validator));
        builder.Services.AddSingleton<IStore>(store);
        builder.Services.AddSingleton<IWorkQueue>(queue);
        builder.Services.AddSingleton(queue);
        builder.Services.AddSingleton<IngestWriter>();
        // Embedded: one writer applies events and timers, so every stored event already reached its instances.
        var runtime = new JourneyRuntime(journeys, new JourneyEngine(engineOptions, new Templates()), limits, eventsAlwaysDelivered: true);
        builder.Services.AddSingleton(runtime);
        builder.Services.AddSingleton(new EventProcessor(limits, time, runtime));
        var links = new UnsubscribeLinks(System.Text.Encoding.UTF8.GetBytes(credentials.LinkKey));
        builder.Services.AddSingleton(links);
        Uri? listening = null;
        var (channels, sendOptions) = DeliverySetup.Load(builder.Configuration, options, time, links, () => listening ?? new Uri(DefaultUrl), providerHandlers);
        builder.Services.AddSingleton(new SendStage(store, channels, sendOptions with
        {
            QuietHours = engineOptions.Schedule,
            Caps = engineOptions.Caps,
            JourneyCaps = id => runtime.Find(id)?.Caps ?? [],
        }));
        builder.Services.AddSingleton<WorkSignal>();
        builder.Services.AddSingleton<TimerWorker>();
        builder.Services.AddSingleton<SendWorker>();
        if (options.Workers.Enabled)
        {
            builder.Services.AddHostedService<EventWorker>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<TimerWorker>());
            builder.Services.AddHostedService(sp => sp.GetRequiredService<SendWorker>());
        }

        var app = builder.Build();
        app.MapGet("/health", () => Results.Json(new { status = "ok" }));
        app.MapTrackApi();
        app.MapSegmentApi();
        app.MapAdminApi();
        app.MapJourneysAdmin();

        app.MapUnsubscribe();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            listening = BaseAddress(app);
            Announce(app, dataDir, credentials, generated);
        });
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            queue.DisposeAsync().AsTask().GetAwaiter().GetResult();
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
            dataLock.Dispose();
        });
        return app;
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
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new InvalidOperationException($"Another Nudge process is using the data folder {dataDir} ({e.Message}). Stop it or set Nudge:DataDir to another folder.", e);
        }
    }

    /// <summary>The address the server bound (useful with port 0).</summary>
    public static Uri BaseAddress(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    private static void Announce(WebApplication app, string dataDir, Credentials c, bool generated)
    {
        var url = BaseAddress(app).ToString().TrimEnd('/');
        var o = app.Services.GetRequiredService<IOptions<NudgeOptions>>().Value;
        var lines = new List<string>
        {
            $"Nudge is listening on {url} (data in {dataDir}; workers {(o.Workers.Enabled ? "on" : "off")}; {app.Services.GetRequiredService<JourneyRuntime>().Journeys.Count} journeys from {Path.GetFullPath(o.Journeys.Dir)})",
            $"  Track API (Customer.io):  {url}/api/v1/...   HTTP Basic  site id : API key",
            $"  Segment API:              {url}/v1/...       HTTP Basic  write key as user name (or writeKey in the body)",
            $"  Admin API:                {url}/admin/v1/... Authorization: Bearer <admin key>",
            $"  Channels: {DeliverySetup.Describe(app.Services.GetRequiredService<SendStage>().Channels)}",
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
