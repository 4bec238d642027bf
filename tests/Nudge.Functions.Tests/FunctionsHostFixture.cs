using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;

namespace Nudge.Functions.Tests;

/// <summary>
/// Nudge.Host in Functions mode (FUNCTIONS_CUSTOMHANDLER_PORT) on a real loopback port, on a virtual clock, with the
/// test journeys and a store whose faults tests can switch on. Tests talk to it as the Functions host does: POST
/// /{function} with the host's payloads.
/// </summary>
public class FunctionsHostFixture : IAsyncLifetime
{
    public const string SiteId = "site-fn";
    public const string ApiKey = "api-key-fn";
    public const string WriteKey = "write-key-fn";
    public const string AdminKey = "admin-key-fn";
    public const string LinkKey = "link-key-fn-0123456789abcdef0123456789";

    /// <summary>Nudge:Functions:MaxDeliveryCount in these tests (not the default 10, to prove the setting is read).</summary>
    public const int MaxDeliveryCount = 5;

    /// <summary>Monday 14:00 UTC: outside quiet hours.</summary>
    public static readonly DateTimeOffset Start = new(2026, 6, 1, 14, 0, 0, TimeSpan.Zero);

    public string DataDir { get; } = Directory.CreateTempSubdirectory("nudge-fn-").FullName;

    public FakeTimeProvider Clock { get; } = new(Start);

    public WebApplication App { get; private set; } = null!;

    public FaultyStore Faults { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    public HttpClient Host { get; private set; } = null!;

    public IStore Store => App.Services.GetRequiredService<IStore>();

    public static string[] Args(string dataDir, params string[] extra) =>
    [
        "--FUNCTIONS_CUSTOMHANDLER_PORT=0", $"--Nudge:DataDir={dataDir}",
        $"--Nudge:Auth:SiteId={SiteId}", $"--Nudge:Auth:ApiKey={ApiKey}", $"--Nudge:Auth:SegmentWriteKey={WriteKey}",
        $"--Nudge:Auth:AdminKey={AdminKey}", $"--Nudge:Auth:LinkKey={LinkKey}", "--Nudge:PublicBaseUrl=https://nudge-test.azurewebsites.net",
        $"--Nudge:Functions:MaxDeliveryCount={MaxDeliveryCount}", $"--Nudge:Journeys:Dir={Path.Combine(AppContext.BaseDirectory, "testdata", "journeys")}",
        "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Nudge=Critical", .. extra,
    ];

    public async Task InitializeAsync()
    {
        App = await NudgeServer.BuildAsync(Args(DataDir, await StoreArgsAsync()), Clock, wrapStore: s => Faults = new FaultyStore(s));
        await App.StartAsync();
        BaseAddress = NudgeServer.BaseAddress(App);
        Host = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        Host.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        await DisposeStoreAsync();
        Directory.Delete(DataDir, recursive: true);
    }

    /// <summary>Settings that choose the store: none here (SQLite in <see cref="DataDir"/>, the default).</summary>
    protected virtual Task<string[]> StoreArgsAsync() => Task.FromResult(Array.Empty<string>());

    /// <summary>Releases what <see cref="StoreArgsAsync"/> started.</summary>
    protected virtual Task DisposeStoreAsync() => Task.CompletedTask;

    /// <summary>Posts an invocation as the Functions host does (POST /{function}, its headers) and reads the answer.</summary>
    public async Task<HostResponse> InvokeAsync(string function, string payload)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/" + function)
        {
            Content = new StringContent(payload, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Azure-Functions-InvocationId", Guid.NewGuid().ToString());
        request.Headers.Add("X-Azure-Functions-HostVersion", "4.1040.300.0");
        request.Headers.UserAgent.ParseAdd("azure-functions-host/4.1040.300.0");
        using var response = await Host.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return new HostResponse((int)response.StatusCode, text);
    }

    /// <summary>Basic credentials of the Track API.</summary>
    public static string TrackAuth => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{SiteId}:{ApiKey}"));

    /// <summary>Ingests one Track API call through the ingest function and returns the op it put on the events output.</summary>
    public async Task<JsonObject> IngestAsync(string method, string path, string? body)
    {
        var r = await InvokeAsync("ingest", HostPayloads.Http("ingest", method, path, body, new Dictionary<string, string> { ["Authorization"] = TrackAuth }));
        Assert.Equal(200, r.Status);
        Assert.Equal(200, r.Res!["statusCode"]!.GetValue<int>());
        return Assert.Single(r.Messages("events"));
    }

    /// <summary>Ingests a call and runs process-event on its op; returns process-event's answer.</summary>
    public async Task<HostResponse> IngestAndProcessAsync(string method, string path, string? body)
    {
        var op = await IngestAsync(method, path, body);
        var r = await InvokeAsync("process-event", HostPayloads.ServiceBus("process-event", "event", op));
        Assert.Equal(200, r.Status);
        return r;
    }
}

/// <summary>A custom handler's answer to one invocation.</summary>
public sealed class HostResponse
{
    public HostResponse(int status, string text)
    {
        Status = status;
        Text = text;
        Body = JsonNode.Parse(text)!.AsObject();
        Outputs = Body[nameof(Outputs)]?.AsObject() ?? [];
        AssertOutputsAreObjects(Outputs);
    }

    public int Status { get; }

    public string Text { get; }

    public JsonObject Body { get; }

    public JsonObject Outputs { get; }

    /// <summary>The HTTP output of an HTTP function.</summary>
    public JsonObject? Res => Outputs["res"]?.AsObject();

    /// <summary>The messages of a queue output (none when the output is absent).</summary>
    public IReadOnlyList<JsonObject> Messages(string binding) =>
        Outputs[binding] is JsonArray a ? [.. a.Select(m => m!.AsObject())] : [];

    /// <summary>
    /// The host base64-decodes string outputs (unless dataType is binary): every output value must be a JSON object, or an
    /// array of objects, never a bare string.
    /// </summary>
    public static void AssertOutputsAreObjects(JsonObject outputs)
    {
        foreach (var (name, value) in outputs)
        {
            switch (value)
            {
                case JsonObject:
                    break;
                case JsonArray a:
                    Assert.All(a, m => Assert.IsType<JsonObject>(m));
                    break;
                default:
                    Assert.Fail($"output '{name}' is not a JSON object or an array of objects: {value?.ToJsonString()}");
                    break;
            }
        }
    }
}
