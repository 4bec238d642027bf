using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;
using Nudge.Host.Workers;
using Nudge.Pipeline;
using Nudge.TestSupport;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// An embedded server running the repository's journeys on a virtual clock. Tests move the clock; timers and sends
/// are fired at each wake-up on the way, exactly as the workers would at that moment.
/// </summary>
public sealed class JourneyServer : IAsyncDisposable
{
    public static readonly DateTimeOffset Monday14h = new(2026, 6, 1, 14, 0, 0, TimeSpan.Zero);

    private JourneyServer(WebApplication app, FakeTimeProvider clock, string dataDir)
    {
        App = app;
        Clock = clock;
        DataDir = dataDir;
        var b = NudgeServer.BaseAddress(app);
        Track = new HttpClient { BaseAddress = b, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Basic", Basic(SiteId, ApiKey)) } };
        Admin = new HttpClient { BaseAddress = b, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", AdminKey) } };
    }

    public WebApplication App { get; }

    public FakeTimeProvider Clock { get; }

    public string DataDir { get; }

    public HttpClient Track { get; }

    public HttpClient Admin { get; }

    public IStore Store => App.Services.GetRequiredService<IStore>();

    public JourneyRuntime Runtime => App.Services.GetRequiredService<JourneyRuntime>();

    public static Task<JourneyServer> StartAsync(string? dataDir = null, DateTimeOffset? now = null, string? journeysDir = null, params string[] extra) =>
        StartAsync(null, new FakeTimeProvider(now ?? Monday14h), dataDir, journeysDir, extra);

    /// <summary>Starts on <paramref name="clock"/> with HTTP handlers per provider (loopback peers with a test certificate).</summary>
    public static async Task<JourneyServer> StartAsync(Func<string, HttpMessageHandler?>? handlers, FakeTimeProvider clock, string? dataDir, string? journeysDir, params string[] extra)
    {
        dataDir ??= Directory.CreateTempSubdirectory("nudge-journeys-").FullName;
        var app = await NudgeServer.BuildAsync(
        [
            "--urls=http://127.0.0.1:0", $"--Nudge:DataDir={dataDir}", $"--Nudge:Auth:SiteId={SiteId}", $"--Nudge:Auth:ApiKey={ApiKey}",
            $"--Nudge:Auth:SegmentWriteKey={WriteKey}", $"--Nudge:Auth:AdminKey={AdminKey}", "--Logging:LogLevel:Default=Warning",
            $"--Nudge:Journeys:Dir={journeysDir ?? Path.Combine(TestEnvironment.RepositoryRoot(), "journeys")}", .. extra,
        ], clock, handlers);
        await app.StartAsync();

        // Sends run when the test moves the clock (RunOnceAsync), not also in the background: a provider call still in
        // flight on the background worker would leave a message "drafted" when the test looks.
        await app.Services.GetRequiredService<SendWorker>().StopAsync(CancellationToken.None);
        return new JourneyServer(app, clock, dataDir);
    }

    /// <summary>Moves the clock forward, firing every timer at its due time on the way, then sends what is ready.</summary>
    public async Task AdvanceAsync(TimeSpan by)
    {
        await Drain(Admin);
        var target = Clock.GetUtcNow() + by;
        var timers = App.Services.GetRequiredService<TimerWorker>();
        var sends = App.Services.GetRequiredService<SendWorker>();
        while (await Store.NextWakeAsync() is { } next && next <= target)
        {
            if (next > Clock.GetUtcNow())
            {
                Clock.SetUtcNow(next);
            }

            await timers.RunDueOnceAsync();
            await sends.RunOnceAsync();
        }

        Clock.SetUtcNow(target);
        await timers.RunDueOnceAsync();
        await sends.RunOnceAsync();
    }

    public async Task SendAsync(HttpMethod method, string path, string? json)
    {
        var r = await Track.SendAsync(new HttpRequestMessage(method, path) { Content = json is null ? null : Json(json) });
        Assert.True(r.IsSuccessStatusCode, $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        await Drain(Admin);
        await App.Services.GetRequiredService<SendWorker>().RunOnceAsync();
    }

    public async Task<JsonArray> GetAsync(string path) => JsonNode.Parse(await Admin.GetStringAsync(path))!.AsArray();

    /// <summary>A customer id whose profile is (or is not) in the journey's holdout, so tests control who gets messages.</summary>
    public string IdFor(string journeyId, bool heldOut, string prefix)
    {
        var j = Runtime.Find(journeyId)!;
        for (var n = 0; ; n++)
        {
            var id = $"{prefix}-{n}";
            if (Nudge.Core.Journeys.JourneyEngine.InHoldout(j, ProfileRules.NewKey(new Identifier(IdentifierKind.Id, id))) == heldOut)
            {
                return id;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
