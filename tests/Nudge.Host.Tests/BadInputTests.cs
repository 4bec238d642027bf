using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Delivery.Tests.Twilio;
using Xunit.Abstractions;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// The bad input harness: thousands of generated malformed, oversize, wrongly typed and hostile requests (see
/// <see cref="BadInputGenerator"/>) against every public endpoint of Nudge.Host running as a child process, so a crash
/// (a stack overflow kills the process) is seen as one. Seed and count come from NUDGE_FUZZ_SEED and NUDGE_FUZZ_COUNT.
/// </summary>
public sealed class BadInputTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const int DefaultSeed = 20260601;
    private const int DefaultCount = 10_000;
    private const string PublicBase = "https://nudge.example.com";

    /// <summary>The 4xx answers README.md documents; anything else is a failure.</summary>
    private static readonly HashSet<int> Documented4xx = [400, 401, 403, 404, 405, 413, 415];

    private readonly string _dataDir = Directory.CreateTempSubdirectory("nudge-badinput-").FullName;
    private readonly ECDsa _sendGridKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false, MaxConnectionsPerServer = 16 }) { Timeout = TimeSpan.FromSeconds(60) };
    private NudgeProcess _server = null!;
    private HttpClient _admin = null!;

    public async Task InitializeAsync()
    {
        _server = await NudgeProcess.StartAsync(_dataDir,
        [
            $"--Nudge:Auth:SiteId={SiteId}", $"--Nudge:Auth:ApiKey={ApiKey}", $"--Nudge:Auth:SegmentWriteKey={WriteKey}", $"--Nudge:Auth:AdminKey={AdminKey}",
            $"--Nudge:Providers:Twilio:AccountSid={TwilioPeer.AccountSid}", $"--Nudge:Providers:Twilio:AuthToken={TwilioPeer.AuthToken}",
            $"--Nudge:Providers:Twilio:MessagingServiceSid={TwilioPeer.ServiceSid}", "--Nudge:Providers:Twilio:BaseUrl=http://127.0.0.1:9/",
            "--Nudge:Providers:Email:Provider=sendgrid", "--Nudge:Providers:Email:From=shop@example.com",
            "--Nudge:Providers:Email:SendGrid:ApiKey=SG.unused", "--Nudge:Providers:Email:SendGrid:BaseUrl=http://127.0.0.1:9/",
            $"--Nudge:Providers:Email:SendGrid:WebhookPublicKey={Convert.ToBase64String(_sendGridKey.ExportSubjectPublicKeyInfo())}",
            $"--Nudge:PublicBaseUrl={PublicBase}",

            // Thousands of bad credentials and admin reads from one address would spend the failed-authentication and
            // admin budgets and turn the rest of the run into 429s: the harness is about parsers; SecurityTests proves the limits.
            "--Nudge:RateLimits:Enabled=false",
        ]);
        _admin = new HttpClient { BaseAddress = _server.BaseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", AdminKey) } };
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dataDir, recursive: true);
    }

    public void Dispose()
    {
        _sendGridKey.Dispose();
        _http.Dispose();
        _admin?.Dispose();
    }

    [Fact]
    public async Task GeneratedBadInput_NeverAnswers5xxOrCrashes_AndRejectedInputChangesNothing()
    {
        var seed = Setting("NUDGE_FUZZ_SEED", DefaultSeed);
        var count = Setting("NUDGE_FUZZ_COUNT", DefaultCount);
        var replay = $"seed {seed} (replay: NUDGE_FUZZ_SEED={seed} NUDGE_FUZZ_COUNT={count} dotnet test tests/Nudge.Host.Tests --filter BadInputTests)";
        output.WriteLine($"bad input harness: {count} cases, {replay}");
        var generator = new BadInputGenerator(_sendGridKey, PublicBase);
        var failures = new ConcurrentQueue<string>();
        var tally = new ConcurrentDictionary<string, int>();
        var statuses = new ConcurrentDictionary<int, int>();
        var clock = Stopwatch.StartNew();

        // Phase 1: only input that must change nothing (rejected calls, reads, ignored webhooks), then compare the store.
        await Drain(_admin);
        var before = await Stats(_admin);
        var mayChange = new ConcurrentBag<int>();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            var c = generator.Generate(seed, i);
            if (c.Expect == Expect.Any)
            {
                mayChange.Add(i);
                return;
            }

            await SendAndCheckAsync(c, failures, tally, statuses);
        });
        var after = await Stats(_admin);
        if (after.ToJsonString() != before.ToJsonString())
        {
            failures.Enqueue($"rejected input changed the store or queue: before {before.ToJsonString()}, after {after.ToJsonString()}");
        }

        // Phase 2: odd but valid input, which may be accepted; everything accepted must then be processed without poison.
        await Parallel.ForEachAsync(mayChange.Order(), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (i, ct) => await SendAndCheckAsync(generator.Generate(seed, i), failures, tally, statuses));
        if (!_server.HasExited)
        {
            await Drain(_admin, timeoutSeconds: 120);
            var end = await Stats(_admin);
            if (end["poisoned_events"]!.GetValue<long>() != 0)
            {
                failures.Enqueue($"accepted input poisoned the events queue: {end.ToJsonString()}");
            }
        }

        output.WriteLine($"{tally.Values.Sum()} requests in {clock.Elapsed.TotalSeconds:F1} s; {count - mayChange.Count} must change nothing, {mayChange.Count} may be accepted");
        output.WriteLine("answers: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}")));
        foreach (var (endpoint, n) in tally.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"  {n,6}  {endpoint}");
        }

        Assert.False(_server.HasExited, $"Nudge.Host exited ({replay}):\n{Tail(_server.Output)}");
        Assert.Equal("ok", JsonNode.Parse(await _http.GetStringAsync(new Uri(_server.BaseAddress, "/health")))!["status"]!.GetValue<string>());
        Assert.True(failures.IsEmpty, $"{failures.Count} failures, {replay}:\n{string.Join("\n", failures.Take(25))}");
        var logged = _server.Output.Split('\n').Where(l => l.StartsWith("fail:", StringComparison.Ordinal) || l.StartsWith("crit:", StringComparison.Ordinal)
            || l.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase)).ToList();
        var exceptions = _server.Output.Split('\n').Select(l => l.Trim()).Where(l => l.Contains("Exception: ", StringComparison.Ordinal)).Distinct();
        Assert.True(logged.Count == 0, $"the server logged {logged.Count} errors ({replay}):\n{string.Join("\n", exceptions)}\n{Tail(_server.Output)}");
        Assert.True(tally.Values.Sum() >= count);
        Assert.Equal(generator.Endpoints.Count, tally.Count);
    }

    [Fact]
    public async Task HostileStrings_AreStoredAndReturnedAsLiteralText_NeverInterpreted()
    {
        var track = Client("Basic", Basic(SiteId, ApiKey));
        var segment = Client("Basic", Basic(WriteKey, ""));
        var hostile = BadInputGenerator.Hostile;
        var attrs = new JsonObject();
        for (var k = 0; k < hostile.Length; k++)
        {
            attrs[$"h{k}"] = hostile[k];
        }

        // Hostile attribute names too (all under the 150-byte limit).
        foreach (var name in new[] { "$where", "'; DROP TABLE profiles; --", "{{ customer.email }}", "..%2F..%2F", "\u202Eeman", "a\u0000b" })
        {
            attrs[name] = name;
        }

        var id = "'; DROP TABLE profiles; -- {{ 7 | times: 7 }}";
        var path = $"/api/v1/customers/{Uri.EscapeDataString(id)}";
        Assert.Equal(HttpStatusCode.OK, (await track.PutAsync(path, Json(attrs.ToJsonString()))).StatusCode);
        var data = new JsonObject(hostile.Select((h, k) => KeyValuePair.Create<string, JsonNode?>($"d{k}", h)));
        Assert.Equal(HttpStatusCode.OK, (await track.PostAsync(path + "/events", Json(new JsonObject { ["name"] = "{{ 7 | times: 7 }}", ["id"] = "ev-1", ["data"] = data }.ToJsonString()))).StatusCode);
        var traits = new JsonObject(hostile.Select((h, k) => KeyValuePair.Create<string, JsonNode?>($"t{k}", h)));
        Assert.Equal(HttpStatusCode.OK, (await segment.PostAsync("/v1/identify", Json(new JsonObject { ["userId"] = "{% raw %}seg{% endraw %}", ["traits"] = traits }.ToJsonString()))).StatusCode);
        await Drain(_admin);

        var person = (await Profile(_admin, id))!;
        Assert.Equal(id, person["id"].Str());
        var stored = person["attributes"]!.AsObject();
        foreach (var (name, value) in attrs)
        {
            Assert.True(stored[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String, $"attribute '{Escape(name)}' is missing or not a string");
            Assert.True(stored[name]!.GetValue<string>() == value!.GetValue<string>(),
                $"attribute '{Escape(name)}' came back as '{Escape(stored[name]!.GetValue<string>())}', sent '{Escape(value.GetValue<string>())}'");
        }

        var ev = Assert.Single(person.Events("{{ 7 | times: 7 }}"));
        for (var k = 0; k < hostile.Length; k++)
        {
            Assert.True(ev["data"]![$"d{k}"].Str() == hostile[k], $"event data d{k} came back as '{Escape(ev["data"]![$"d{k}"].Str())}'");
        }

        var seg = (await Profile(_admin, "{% raw %}seg{% endraw %}"))!;
        for (var k = 0; k < hostile.Length; k++)
        {
            Assert.True(seg["attributes"]![$"t{k}"].Str() == hostile[k], $"trait t{k} came back as '{Escape(seg["attributes"]![$"t{k}"].Str())}'");
        }

        Assert.DoesNotContain("49", stored["h8"].Str(), StringComparison.Ordinal);
        Assert.Equal(2, (await Stats(_admin))["profiles"]!.GetValue<long>());
    }

    private async Task SendAndCheckAsync(FuzzCase c, ConcurrentQueue<string> failures, ConcurrentDictionary<string, int> tally, ConcurrentDictionary<int, int> statuses)
    {
        tally.AddOrUpdate(c.Endpoint, 1, (_, n) => n + 1);
        HttpResponseMessage response;
        string body;
        try
        {
            using var request = c.ToRequest(_server.BaseAddress);
            if (c.Body is { Length: > 1024 * 1024 })
            {
                // An over-limit body is answered (413) and its connection closed before it is all sent: the client waits for
                // 100-continue, and the connection is not shared, so the answer can be read and no other request loses its connection.
                request.Headers.ExpectContinue = true;
                request.Headers.ConnectionClose = true;
                using var own = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
                response = await own.SendAsync(request);
            }
            else
            {
                response = await _http.SendAsync(request);
            }

            body = await response.Content.ReadAsStringAsync();
        }
        catch (HttpRequestException e)
        {
            failures.Enqueue($"{c}\n    -> no answer ({e.Message} {e.InnerException?.Message}){(_server.HasExited ? "; the server process is gone" : "")}");
            return;
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
            var problem = status switch
            {
                >= 500 => "a server error",
                >= 400 when !Documented4xx.Contains(status) => "an undocumented 4xx",
                < 400 when c.Expect == Expect.Reject => "accepted, but it must be rejected",
                400 when c.Expect == Expect.Reject && !NamesField(c, body) => $"a 400 that does not name '{c.Field}' in the documented error shape",
                _ => null,
            };
            if (problem is not null)
            {
                failures.Enqueue($"{c}\n    -> {status} ({problem}): {(body.Length > 400 ? body[..400] : body)}");
            }
        }
    }

    /// <summary>A Track API 400 is <c>{"meta":{"errors":["field: why"]}}</c>, a Segment 400 <c>{"success":false,"errors":[{field,problem}]}</c>.</summary>
    private static bool NamesField(FuzzCase c, string body)
    {
        if (c.Field is not null && !body.Contains(c.Field, StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            if (c.PathAndQuery.StartsWith("/api/v1/", StringComparison.Ordinal))
            {
                return JsonNode.Parse(body)?["meta"]?["errors"] is JsonArray { Count: > 0 } errors && errors.All(e => e is JsonValue v && v.GetValue<string>().Length > 0);
            }

            if (c.PathAndQuery.StartsWith("/v1/", StringComparison.Ordinal))
            {
                return JsonNode.Parse(body)?["errors"] is JsonArray { Count: > 0 } errors && errors.All(e => e?["problem"] is JsonValue v && v.GetValue<string>().Length > 0);
            }
        }
        catch (JsonException)
        {
            return false;
        }

        // Webhooks answer text; Kestrel's own 400 (e.g. %00 in a path) has no body.
        return true;
    }

    private HttpClient Client(string scheme, string value) =>
        new() { BaseAddress = _server.BaseAddress, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue(scheme, value) } };

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;

    private static string Tail(string s) => s.Length > 6000 ? s[^6000..] : s;

    private static string Escape(string s) => string.Concat(s.Select(ch => ch is < ' ' or > '~' ? $"\\u{(int)ch:x4}" : ch.ToString()));
}
