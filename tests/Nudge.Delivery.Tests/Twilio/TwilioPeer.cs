using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Nudge.Delivery.Tests.Support;
using Nudge.Delivery.Twilio;

namespace Nudge.Delivery.Tests.Twilio;

/// <summary>What the peer does for one To number instead of accepting the message.</summary>
/// <param name="Status">HTTP status to answer.</param>
/// <param name="Code">Twilio error code for the JSON error body; null answers <paramref name="RawBody"/> (or nothing).</param>
/// <param name="RetryAfter">Raw Retry-After header value.</param>
/// <param name="Abort">Drop the connection without an answer.</param>
/// <param name="Hang">Never answer (until the client gives up).</param>
/// <param name="RawBody">A body to send verbatim when <paramref name="Code"/> is null.</param>
internal sealed record PeerScript(
    int Status = 400, int? Code = null, string? RetryAfter = null, bool Abort = false, bool Hang = false, string? RawBody = null);

/// <summary>One request the peer received, as it saw it on the wire.</summary>
internal sealed record PeerRequest(
    string Path, string? Authorization, string? ContentType, string RawBody, IReadOnlyList<KeyValuePair<string, string>> Form);

/// <summary>
/// A loopback stand-in for api.twilio.com's Messages API: Kestrel on 127.0.0.1 and a free port. It checks what Twilio
/// checks (Basic auth, the account in the path, a form body, To / Body / sender) and answers with Twilio-shaped JSON:
/// 201 with a message resource, or {"code","message","more_info","status"} errors. <see cref="Scripts"/> makes a given
/// To number fail in a chosen way.
/// </summary>
internal sealed partial class TwilioPeer : IAsyncDisposable
{
    public const string AccountSid = "AC0123456789abcdef0123456789abcdef";
    public const string AuthToken = "f00dfacef00dfacef00dfacef00dface";
    public const string ServiceSid = "MG0123456789abcdef0123456789abcdef";

    private readonly WebApplication app;

    private TwilioPeer(WebApplication app, Uri baseUrl)
    {
        this.app = app;
        BaseUrl = baseUrl;
    }

    public Uri BaseUrl { get; }

    public ConcurrentQueue<PeerRequest> Requests { get; } = new();

    public ConcurrentDictionary<string, PeerScript> Scripts { get; } = new();

    /// <summary>
    /// Called with each message the peer accepts, before the 201 is written, so a test can timestamp the send at the
    /// moment the provider has it (a crash harness tells sends in flight at a kill from completed ones).
    /// </summary>
    public Action<PeerRequest>? OnAccepted { get; set; }

    /// <summary>Completes when a <see cref="PeerScript.Hang"/> request has arrived.</summary>
    public TaskCompletionSource Hanging { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<TwilioPeer> StartAsync(bool https = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (https)
            {
                listen.UseHttps(TestCertificate.Instance);
            }
        }));
        var app = builder.Build();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!;
        TwilioPeer? peer = null;
        app.MapPost("/2010-04-01/Accounts/{account}/Messages.json", (HttpContext http, string account) => peer!.HandleAsync(http, account));
        app.Map("/{**rest}", (HttpContext http) => Error(http, 404, 20404, "The requested resource was not found"));
        await app.StartAsync();
        peer = new TwilioPeer(app, new Uri(address.Addresses.Single()));
        return peer;
    }

    public TwilioOptions Options(Action<TwilioOptions>? change = null)
    {
        var o = new TwilioOptions
        {
            AccountSid = AccountSid,
            AuthToken = AuthToken,
            MessagingServiceSid = ServiceSid,
            BaseUrl = BaseUrl.AbsoluteUri,
        };
        change?.Invoke(o);
        return o;
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext http, string account)
    {
        var auth = http.Request.Headers.Authorization.ToString();
        var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{AccountSid}:{AuthToken}"));
        if (auth != expected)
        {
            await Error(http, 401, 20003, "Authenticate");
            return;
        }

        if (account != AccountSid)
        {
            await Error(http, 404, 20404, "The requested resource was not found");
            return;
        }

        http.Request.EnableBuffering();
        var raw = await new StreamReader(http.Request.Body, Encoding.UTF8).ReadToEndAsync();
        http.Request.Body.Position = 0;
        var form = new List<KeyValuePair<string, string>>();
        if (http.Request.HasFormContentType)
        {
            foreach (var (key, values) in await http.Request.ReadFormAsync())
            {
                form.AddRange(values.Select(v => new KeyValuePair<string, string>(key, v ?? "")));
            }
        }

        Requests.Enqueue(new PeerRequest(http.Request.Path, auth, http.Request.ContentType, raw, form));
        if (!http.Request.HasFormContentType)
        {
            // Twilio reads parameters only from a form body; anything else arrives as "no To".
            await Error(http, 400, 21604, "A 'To' phone number is required.");
            return;
        }

        string? One(string name) => form.Where(p => p.Key == name).Select(p => p.Value).SingleOrDefault();
        if (form.GroupBy(p => p.Key).Any(g => g.Count() > 1))
        {
            await Error(http, 400, 21211, "peer: a field was sent more than once");
            return;
        }

        var to = One("To");
        var body = One("Body");
        var from = One("From");
        var service = One("MessagingServiceSid");
        var problem = (to, body, from, service) switch
        {
            (null or "", _, _, _) => (21604, "A 'To' phone number is required."),
            _ when !E164().IsMatch(to) => (21211, $"The 'To' number {to} is not a valid phone number."),
            (_, null or "", _, _) => (21602, "Message body is required."),
            (_, _, null, null) => (21603, "A 'From' phone number is required."),
            // Twilio itself accepts both (From must then belong to the service); the peer insists on exactly one.
            (_, _, not null, not null) => (21603, "peer: send From or MessagingServiceSid, not both"),
            (_, _, not null, _) when !E164().IsMatch(from) => (21212, $"The 'From' number {from} is not a valid phone number."),
            _ => (0, ""),
        };
        if (problem.Item1 != 0)
        {
            await Error(http, 400, problem.Item1, problem.Item2);
            return;
        }

        if (Scripts.TryGetValue(to!, out var script))
        {
            await Play(http, script);
            return;
        }

        OnAccepted?.Invoke(new PeerRequest(http.Request.Path, auth, http.Request.ContentType, raw, form));
        var sid = "SM" + Guid.NewGuid().ToString("N");
        var now = DateTimeOffset.UtcNow.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture);
        var resource = new Dictionary<string, object?>
        {
            ["account_sid"] = AccountSid,
            ["api_version"] = "2010-04-01",
            ["body"] = body,
            ["date_created"] = now,
            ["date_sent"] = null,
            ["date_updated"] = now,
            ["direction"] = "outbound-api",
            ["error_code"] = null,
            ["error_message"] = null,
            ["from"] = from,
            ["messaging_service_sid"] = service,
            ["num_media"] = "0",
            ["num_segments"] = "1",
            ["price"] = null,
            ["price_unit"] = "USD",
            ["sid"] = sid,
            ["status"] = service is null ? "queued" : "accepted",
            ["to"] = to,
            ["uri"] = $"/2010-04-01/Accounts/{AccountSid}/Messages/{sid}.json",
        };
        await Results.Json(resource, statusCode: 201).ExecuteAsync(http);
    }

    private async Task Play(HttpContext http, PeerScript script)
    {
        if (script.Abort)
        {
            http.Abort();
            return;
        }

        if (script.Hang)
        {
            Hanging.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, http.RequestAborted);
            }
            catch (OperationCanceledException)
            {
            }

            return;
        }

        if (script.RetryAfter is { } ra)
        {
            http.Response.Headers.RetryAfter = ra;
        }

        if (script.Code is { } code)
        {
            await Error(http, script.Status, code, $"scripted error {code}");
            return;
        }

        http.Response.StatusCode = script.Status;
        if (script.RawBody is { } raw)
        {
            await http.Response.WriteAsync(raw);
        }
    }

    private static Task Error(HttpContext http, int status, int code, string message) =>
        Results.Json(
            new Dictionary<string, object> { ["code"] = code, ["message"] = message, ["more_info"] = $"https://www.twilio.com/docs/errors/{code}", ["status"] = status },
            statusCode: status).ExecuteAsync(http);

    [GeneratedRegex(@"^\+[1-9][0-9]{1,14}$")]
    private static partial Regex E164();
}
