using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Nudge.Delivery.Email;
using Nudge.Delivery.Tests.Fcm;
using Nudge.Delivery.Tests.Twilio;
using Xunit.Abstractions;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>
/// Durability proven from the system calls, not assumed: kill -9 keeps the page cache, so a store that never syncs
/// passes every crash test. Nudge.Host runs under strace (<see cref="StracedRun"/>), and the trace must show, for every
/// 2xx of an ingest path, the request's bytes read, then the queue's write of them, then a sync of that write, then the
/// answer; and for every message sent, the provider call, then the store's write of the outcome, then its sync, then
/// the first answer that reports the message sent.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class FsyncBeforeAnswerTests(StracedRun run, ITestOutputHelper output) : IClassFixture<StracedRun>
{
    [StraceFact]
    public void EveryIngest2xx_FollowsAnFsyncOfTheQueueWriteThatHoldsItsInput()
    {
        Assert.All(run.Requests, r => Assert.True(r.Status is >= 200 and < 300 || (r.Status == 302 && r.What == StracedRun.Click), $"{r.What} {r.Marker}: answered {r.Status}"));
        var log = run.Log;
        var problems = new List<string>();
        var shown = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in run.Requests)
        {
            // The read that brought the request's input in (its body; the signed link, for links without a body).
            var read = log.Calls.FirstOrDefault(c => c.IsRead && c.Result > 0 && c.Ports?.Local == run.HostPort && c.Carries(r.Sent));
            if (read is null)
            {
                problems.Add($"{r.What} {r.Marker}: no read of its input on a connection to port {run.HostPort}");
                continue;
            }

            // HTTP/1.1 without pipelining: the next bytes Nudge sends on that connection are this request's answer.
            var answer = log.Calls.FirstOrDefault(c => c.IsSend && c.Fd == read.Fd && c.Entry > read.Exit);
            if (answer is null || !answer.Carries($"HTTP/1.1 {r.Status} "))
            {
                problems.Add($"{r.What} {r.Marker}: no {r.Status} answer after {read}: {answer?.Text[..Math.Min(80, answer.Text.Length)] ?? "none"}");
                continue;
            }

            var write = log.Calls.FirstOrDefault(c => c.Name == "pwrite64" && IsFile(c, "queue.db") && c.Entry > read.Exit && c.Carries(r.Marker));
            if (write is null || write.Exit > answer.Entry)
            {
                problems.Add($"{r.What} {r.Marker}: answered by {answer}, but the queue wrote its input {(write is null ? "never" : $"only after it ({write})")}");
                continue;
            }

            // Group commit: one sync serves every append of its group, so it may come after other requests' writes.
            var sync = log.Calls.FirstOrDefault(c => c.IsSync && c.Pid == write.Pid && c.Fd == write.Fd && c.Entry > write.Exit);
            if (sync is null || sync.Exit > answer.Entry)
            {
                problems.Add($"{r.What} {r.Marker}: its input was written ({write}) and answered ({answer}) "
                    + $"before a sync of that file returned: {(sync is null ? "none followed" : $"the next was {sync}")}");
            }
            else if (shown.Add(r.What))
            {
                output.WriteLine($"{r.What}: input {read}; queued {write}; synced {sync}; answered {answer}");
            }
        }

        output.WriteLine($"{run.Requests.Count - problems.Count} of {run.Requests.Count} ingest answers came after the sync of their input "
            + $"({string.Join(", ", run.Requests.GroupBy(r => r.What).Select(g => $"{g.Key} {g.Count()}"))})");
        Assert.True(problems.Count == 0, string.Join('\n', problems.Take(20)));
    }

    /// <remarks>
    /// Nothing marks a message done but its outcome's commit: SendStage.ApplyAsync records the outcome (and clears the
    /// message's ready flag) in one store transaction, and a message whose commit is lost is claimed again when its claim
    /// runs out and sent twice. So the outcome's write must be synced before anyone is told the message is sent; the
    /// first such answer is the admin API's (the test asks it until it says "sent"). Same thread and descriptor: the sync
    /// is the one SQLite issues for that commit, not another stage's.
    /// </remarks>
    [StraceFact]
    public void EverySendOutcome_IsSyncedBeforeTheMessageIsReportedSent()
    {
        Assert.Equal(StracedRun.People, run.Sends.Count);
        var log = run.Log;
        var problems = new List<string>();
        foreach (var (messageId, providerId) in run.Sends)
        {
            var call = log.Calls.FirstOrDefault(c => c.IsSend && c.Ports?.Remote == run.FcmPort && c.Carries($"\\\"{messageId}\\\""));
            if (call is null)
            {
                problems.Add($"{messageId}: no call to the FCM peer (port {run.FcmPort}) carried it");
                continue;
            }

            // The provider's id for the message exists only once the provider answered, so the first write of it into
            // the store's log is the outcome being recorded.
            var write = log.Calls.FirstOrDefault(c => c.Name == "pwrite64" && IsFile(c, "nudge.db") && c.Entry > call.Exit && c.Carries(providerId + "\\\""));
            var reported = log.Calls.FirstOrDefault(c => c.IsSend && c.Ports?.Local == run.HostPort && c.Carries(providerId));
            if (reported is null || !reported.Carries("\\\"status\\\":\\\"sent\\\""))
            {
                problems.Add($"{messageId}: no admin answer reported it sent with {providerId}");
                continue;
            }

            if (write is null || write.Exit > reported.Entry)
            {
                problems.Add($"{messageId}: reported sent ({reported}) before its outcome was written to the store ({write?.ToString() ?? "never"})");
                continue;
            }

            var sync = log.Calls.FirstOrDefault(c => c.IsSync && c.Pid == write.Pid && c.Fd == write.Fd && c.Entry > write.Exit);
            if (sync is null || sync.Exit > reported.Entry)
            {
                problems.Add($"{messageId}: the outcome was written ({write}) and reported sent ({reported}) before a sync of that file returned: "
                    + (sync is null ? "none followed" : $"the next was {sync}"));
            }
            else if (problems.Count == 0 && messageId == run.Sends[0].MessageId)
            {
                output.WriteLine($"{messageId}: provider call {call}; outcome {write}; synced {sync}; reported sent {reported}");
            }
        }

        output.WriteLine($"{run.Sends.Count - problems.Count} of {run.Sends.Count} send outcomes were synced before the message was reported sent");
        Assert.True(problems.Count == 0, string.Join('\n', problems.Take(20)));
    }

    /// <summary>A write or sync of the SQLite file <paramref name="db"/> or its write-ahead log.</summary>
    private static bool IsFile(Syscall c, string db) =>
        c.Path is { } p && (p.EndsWith("/" + db, StringComparison.Ordinal) || p.EndsWith("/" + db + "-wal", StringComparison.Ordinal));
}

/// <summary>
/// One run of Nudge.Host under <c>strace -f</c>, shared by <see cref="FsyncBeforeAnswerTests"/>: signed and authenticated calls
/// to every ingest path, each with a unique marker in its body, and pushes to people with Android devices through a
/// loopback FCM peer; then the host is stopped and its trace parsed.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class StracedRun : IAsyncLifetime, IDisposable
{
    /// <summary>People who identify, register a device and trigger a push: 10.</summary>
    public const int People = 10;

    private const string PublicBase = "https://nudge.example.com";
    private const string SendGridTimestamp = "1780322400";
    private const string LinkKey = "link-key-test-0123456789abcdef0123456789";

    private static readonly string Journey = """
        # Written by FsyncBeforeAnswerTests: one push at once on "probe".
        id: probe_push
        version: 1
        name: Probe push
        transactional: true
        trigger:
          event: probe
        steps:
          - id: send
            send:
              channels: [push]
              devices: all
              push: { title: "Probe", body: "probe" }
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("nudge-strace-").FullName;
    private readonly ServiceAccountKey _fcmKey = new();
    private readonly ECDsa _sendGridKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly List<Request> _requests = [];
    private FcmPeer? _fcm;
    private NudgeProcess? _nudge;

    /// <summary>What the click link's requests are called (the one ingest path that answers 302, the redirect).</summary>
    public const string Click = "Email click link";

    /// <summary>
    /// An ingest call: which path; its marker, which the queued op holds; what the request carried that only it carries (the
    /// marker, or the signed link that holds it); and the status it was answered with.
    /// </summary>
    public sealed record Request(string What, string Marker, string Sent, int Status);

    public IReadOnlyList<Request> Requests => _requests;

    /// <summary>Each pushed message's id and the id FCM gave it.</summary>
    public List<(string MessageId, string ProviderId)> Sends { get; } = [];

    public StraceLog Log { get; private set; } = null!;

    public int HostPort { get; private set; }

    public int FcmPort { get; private set; }

    public async Task InitializeAsync()
    {
        if (!File.Exists(StraceFactAttribute.StracePath))
        {
            if (StraceFactAttribute.InCi)
            {
                throw new InvalidOperationException($"{StraceFactAttribute.StracePath} is missing: the durability tests need strace (apt-get install -y strace).");
            }

            return;
        }

        var journeys = Directory.CreateDirectory(Path.Combine(_root, "journeys")).FullName;
        var data = Directory.CreateDirectory(Path.Combine(_root, "data")).FullName;
        var trace = Path.Combine(_root, "strace.log");
        await File.WriteAllTextAsync(Path.Combine(journeys, "probe_push.yaml"), Journey);
        _fcm = await FcmPeer.StartAsync(_fcmKey, TimeProvider.System);
        FcmPort = _fcm.BaseUrl.Port;

        // -yy names the file or the TCP endpoints behind each descriptor; -s 8192 keeps a whole SQLite page (4 KiB) of
        // each log write; --seccomp-bpf stops the host only at the traced calls, so the run stays within a minute.
        string[] strace =
        [
            StraceFactAttribute.StracePath, "-f", "-tt", "-yy", "-s", "8192", "--seccomp-bpf", "-o", trace,
            "-e", "trace=fsync,fdatasync,pwrite64,read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg",
        ];
        _nudge = await NudgeProcess.StartAsync(data,
        [
            .. ProcessTests.Keys, $"--Nudge:Auth:LinkKey={LinkKey}", $"--Nudge:Journeys:Dir={journeys}", "--Logging:LogLevel:Default=Warning", $"--Nudge:PublicBaseUrl={PublicBase}",
            $"--Nudge:Providers:Fcm:ServiceAccountJson={_fcmKey.Json(_fcm.TokenUri)}", $"--Nudge:Providers:Fcm:BaseUrl={_fcm.BaseUrl}",
            $"--Nudge:Providers:Twilio:AccountSid={TwilioPeer.AccountSid}", $"--Nudge:Providers:Twilio:AuthToken={TwilioPeer.AuthToken}",
            $"--Nudge:Providers:Twilio:MessagingServiceSid={TwilioPeer.ServiceSid}", "--Nudge:Providers:Twilio:BaseUrl=http://127.0.0.1:9/",
            "--Nudge:Providers:Email:Provider=sendgrid", "--Nudge:Providers:Email:From=shop@example.com",
            "--Nudge:Providers:Email:SendGrid:ApiKey=SG.unused", "--Nudge:Providers:Email:SendGrid:BaseUrl=http://127.0.0.1:9/",
            $"--Nudge:Providers:Email:SendGrid:WebhookPublicKey={Convert.ToBase64String(_sendGridKey.ExportSubjectPublicKeyInfo())}",
        ], TimeSpan.FromMinutes(3), strace);
        HostPort = _nudge.BaseAddress.Port;
        var host = TracedChild(_nudge.Pid);

        using var track = Client(new AuthenticationHeaderValue("Basic", Basic(SiteId, ApiKey)));
        using var segment = Client(new AuthenticationHeaderValue("Basic", Basic(WriteKey, "")));
        using var admin = Client(new AuthenticationHeaderValue("Bearer", AdminKey));
        using var anonymous = Client(null);
        var tracking = new EmailTracking(Encoding.UTF8.GetBytes(LinkKey));
        var unsubscribe = new UnsubscribeLinks(Encoding.UTF8.GetBytes(LinkKey));

        // People first (profile and device), so their probe events find a device to push to.
        await RunAsync(Enumerable.Range(0, People).SelectMany(i => new Func<string, Task<(string, HttpResponseMessage, string?)>>[]
        {
            async m => ("Track API identify", await track.PutAsync($"/api/v1/customers/fs{i}", Json($$"""{"email":"fs{{i}}@example.com","marker":"{{m}}"}""")), null),
            async m => ("Track API device", await track.PutAsync($"/api/v1/customers/fs{i}/devices", Json($$$"""{"device":{"id":"tok{{{m}}}","platform":"android"}}""")), null),
        }));
        await RunAsync(Enumerable.Range(0, 6).SelectMany(i => new Func<string, Task<(string, HttpResponseMessage, string?)>>[]
        {
            async m => ("Segment track", await segment.PostAsync("/v1/track", Json($$"""{"userId":"sg{{i}}","event":"viewed","messageId":"{{m}}"}""")), null),
            async m => ("Segment batch", await segment.PostAsync("/v1/batch", Json($$$"""
                {"batch":[{"type":"track","userId":"sg{{{i}}}","event":"viewed","messageId":"{{{m}}}"},{"type":"identify","userId":"sg{{{i}}}","traits":{"plan":"pro"}}]}
                """)), null),
            async m => ("Twilio inbound SMS", await TwilioAsync(anonymous, "/webhooks/twilio/sms",
                new() { ["From"] = $"+1415555{1000 + i}", ["Body"] = "STOP", ["MessageSid"] = "SM" + m }), null),
            async m => ("Twilio status callback", await TwilioAsync(anonymous, $"/webhooks/twilio/status?message_id=msg{i}",
                new() { ["MessageSid"] = "SM" + m, ["MessageStatus"] = "delivered", ["To"] = $"+1415555{1000 + i}" }), null),
            async m => ("SendGrid events", await SendGridAsync(anonymous,
                $$"""[{"event":"delivered","sg_event_id":"{{m}}","delivery_id":"msg{{i}}","email":"fs{{i}}@example.com","timestamp":{{SendGridTimestamp}}}]"""), null),
            async m => ("SDK push event", await track.PostAsync("/api/v1/push/events", Json($$"""{"delivery_id":"{{m}}","event":"opened","device_id":"tok{{i}}"}""")), null),
            async m => ("SDK metric", await track.PostAsync("/api/v1/metrics", Json($$"""{"delivery_id":"{{m}}","metric":"clicked"}""")), null),
            async m =>
            {
                var token = tracking.OpenToken(m);
                return ("Email open pixel", await anonymous.GetAsync("/" + EmailTracking.OpenPath + token), token);
            },
            async m =>
            {
                var token = tracking.ClickToken(m, "https://shop.example.com/cart");
                return (Click, await anonymous.GetAsync("/" + EmailTracking.ClickPath + token), token);
            },
            async m =>
            {
                var token = unsubscribe.Create($"fs{i}", m);
                return ("Email unsubscribe", await anonymous.PostAsync("/u/" + token, new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")])), token);
            },
        }));
        await RunAsync(Enumerable.Range(0, People).Select(i => new Func<string, Task<(string, HttpResponseMessage, string?)>>(
            async m => ("Track API event", await track.PostAsync($"/api/v1/customers/fs{i}/events", Json($$"""{"name":"probe","id":"{{m}}"}""")), null))));

        // Every push reaches the peer, and the admin API then reports each one sent (strace slows the host: a wide bound).
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        while (_fcm.AcceptedBodies.Count < People)
        {
            await Task.Delay(100, deadline.Token);
        }

        foreach (var body in _fcm.AcceptedBodies)
        {
            var id = JsonNode.Parse(body)!["message"]!["data"]!["delivery_id"]!.GetValue<string>();
            while (true)
            {
                var m = JsonNode.Parse(await admin.GetStringAsync($"/admin/v1/messages/{Uri.EscapeDataString(id)}", deadline.Token))!;
                if (m["status"]!.GetValue<string>() == "sent")
                {
                    Sends.Add((id, m["deliveries"]![0]!["provider_id"]!.GetValue<string>()));
                    break;
                }

                await Task.Delay(50, deadline.Token);
            }
        }

        // strace writes its log out when its tracee is gone.
        using (var p = System.Diagnostics.Process.GetProcessById(host))
        {
            p.Kill();
        }

        await _nudge.WaitForExitAsync(deadline.Token);
        Log = StraceLog.Parse(File.ReadLines(trace));
    }

    public async Task DisposeAsync()
    {
        if (_nudge is not null)
        {
            await _nudge.DisposeAsync();
        }

        if (_fcm is not null)
        {
            await _fcm.DisposeAsync();
        }

        Directory.Delete(_root, recursive: true);
    }

    public void Dispose()
    {
        _fcmKey.Dispose();
        _sendGridKey.Dispose();
    }

    /// <summary>The process strace started (its one child), read from /proc.</summary>
    private static int TracedChild(int stracePid) =>
        int.Parse(File.ReadAllText($"/proc/{stracePid}/task/{stracePid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries).Single(),
            System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Sends the calls, four at a time so that appends share group commits, each with a fresh marker.</summary>
    private async Task RunAsync(IEnumerable<Func<string, Task<(string What, HttpResponseMessage Response, string? Sent)>>> calls)
    {
        await Parallel.ForEachAsync(calls.ToList(), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (call, _) =>
        {
            var marker = "mk" + Guid.NewGuid().ToString("N");
            var (what, response, sent) = await call(marker);
            using (response)
            {
                lock (_requests)
                {
                    _requests.Add(new Request(what, marker, sent ?? marker, (int)response.StatusCode));
                }
            }
        });
    }

    /// <summary>A client of the host that does not follow redirects (the click link answers 302 to a shop outside the test).</summary>
    private HttpClient Client(AuthenticationHeaderValue? auth) =>
        new(new HttpClientHandler { AllowAutoRedirect = false })
        {
            BaseAddress = _nudge!.BaseAddress,
            Timeout = TimeSpan.FromMinutes(1),
            DefaultRequestHeaders = { Authorization = auth },
        };

    private static async Task<HttpResponseMessage> TwilioAsync(HttpClient c, string pathAndQuery, Dictionary<string, string> form)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, pathAndQuery) { Content = new FormUrlEncodedContent(form) };
        request.Headers.Add("X-Twilio-Signature", WebhookSigning.Twilio(TwilioPeer.AuthToken, PublicBase + pathAndQuery, form));
        return await c.SendAsync(request);
    }

    private async Task<HttpResponseMessage> SendGridAsync(HttpClient c, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/sendgrid") { Content = Json(body) };
        request.Headers.Add("X-Twilio-Email-Event-Webhook-Timestamp", SendGridTimestamp);
        request.Headers.Add("X-Twilio-Email-Event-Webhook-Signature", WebhookSigning.SendGrid(_sendGridKey, SendGridTimestamp, Encoding.UTF8.GetBytes(body)));
        return await c.SendAsync(request);
    }
}

/// <summary>
/// A test that reads a strace log: skipped when strace is missing on a developer machine, but never in CI (CI=true),
/// where <see cref="StracedRun"/> fails with the install command instead, so a CI image without strace cannot pass.
/// </summary>
public sealed class StraceFactAttribute : FactAttribute
{
    public const string StracePath = "/usr/bin/strace";

    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public StraceFactAttribute()
    {
        if (!File.Exists(StracePath) && !InCi)
        {
            Skip = $"{StracePath} is missing: apt-get install -y strace";
        }
    }
}
