using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Nudge.Host.Hosting;

namespace Nudge.Host.Tests;

/// <summary>An embedded Nudge server on a real loopback port with its own data folder, shared by one test class.</summary>
public sealed class NudgeServerFixture : IAsyncLifetime
{
    public const string SiteId = "site-test";
    public const string ApiKey = "api-key-test";
    public const string WriteKey = "write-key-test";
    public const string AdminKey = "admin-key-test";

    public string DataDir { get; } = Directory.CreateTempSubdirectory("nudge-host-").FullName;

    public WebApplication App { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    public HttpClient Track { get; private set; } = null!;

    public HttpClient Segment { get; private set; } = null!;

    public HttpClient Admin { get; private set; } = null!;

    public HttpClient NoAuth { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        App = await NudgeServer.BuildAsync(
        [
            "--urls=http://127.0.0.1:0", $"--Nudge:DataDir={DataDir}", $"--Nudge:Auth:SiteId={SiteId}",
            $"--Nudge:Auth:ApiKey={ApiKey}", $"--Nudge:Auth:SegmentWriteKey={WriteKey}", $"--Nudge:Auth:AdminKey={AdminKey}",
            "--Logging:LogLevel:Default=Warning",
        ]);
        await App.StartAsync();
        BaseAddress = NudgeServer.BaseAddress(App);
        Track = Client(new AuthenticationHeaderValue("Basic", Basic(SiteId, ApiKey)));
        Segment = Client(new AuthenticationHeaderValue("Basic", Basic(WriteKey, "")));
        Admin = Client(new AuthenticationHeaderValue("Bearer", AdminKey));
        NoAuth = Client(null);
    }

    public async Task DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        Directory.Delete(DataDir, recursive: true);
    }

    public static string Basic(string user, string password) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));

    public HttpClient Client(AuthenticationHeaderValue? auth)
    {
        var c = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        c.DefaultRequestHeaders.Authorization = auth;
        return c;
    }

    /// <summary>Waits until the events queue is empty, i.e. every accepted op has been applied.</summary>
    public Task DrainAsync() => Drain(Admin);

    public static async Task Drain(HttpClient admin, int timeoutSeconds = 120)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var stats = await Stats(admin);
            if (stats["queued_events"]!.GetValue<long>() == 0)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"events queue not drained: {stats.ToJsonString()}");
            }

            await Task.Delay(20);
        }
    }

    public Task<JsonObject> StatsAsync() => Stats(Admin);

    public static async Task<JsonObject> Stats(HttpClient admin) =>
        JsonNode.Parse(await admin.GetStringAsync("/admin/v1/stats"))!.AsObject();

    /// <summary>The admin view of a person, or null on 404.</summary>
    public Task<JsonObject?> ProfileAsync(string identifier) => Profile(Admin, identifier);

    public static async Task<JsonObject?> Profile(HttpClient admin, string identifier)
    {
        var r = await admin.GetAsync($"/admin/v1/profiles/{Uri.EscapeDataString(identifier)}?events=500");
        if (r.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }

        r.EnsureSuccessStatusCode();
        return JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}

public static class JsonTestExtensions
{
    public static IEnumerable<JsonObject> Events(this JsonObject profile, string? name = null) =>
        profile["recent_events"]!.AsArray().Select(e => e!.AsObject()).Where(e => name is null || e["name"]!.GetValue<string>() == name);

    public static IEnumerable<JsonObject> Devices(this JsonObject profile) =>
        profile["devices"]!.AsArray().Select(d => d!.AsObject());

    public static string Str(this JsonNode? n) => n!.GetValue<string>();
}
