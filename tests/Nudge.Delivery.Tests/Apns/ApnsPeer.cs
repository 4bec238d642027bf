using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Nudge.Delivery.Tests.Support;

namespace Nudge.Delivery.Tests.Apns;

/// <summary>A notification the peer accepted (200), as it arrived on the wire.</summary>
public sealed record ReceivedNotification(
    string Token, string Path, string Protocol, string ConnectionId, IReadOnlyDictionary<string, string> Headers, string Payload);

/// <summary>A scripted misbehaviour for requests to one device token.</summary>
public sealed class PeerFault
{
    private int _remaining = int.MaxValue;
    private int _hits;

    /// <summary>Answer with this status (0: after any hold, validate and answer as usual).</summary>
    public int Status { get; init; }

    public string? Reason { get; init; }

    /// <summary>Retry-After header value to send with <see cref="Status"/>.</summary>
    public string? RetryAfter { get; init; }

    /// <summary>Reset the stream instead of answering.</summary>
    public bool Abort { get; init; }

    /// <summary>Hold the request until this completes (or the client goes away).</summary>
    public Task? HoldUntil { get; init; }

    /// <summary>Set when the first request for the token arrives.</summary>
    public TaskCompletionSource Arrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How many requests the fault applies to; later ones are handled normally.</summary>
    public int Times { init => _remaining = value; }

    public int Hits => Volatile.Read(ref _hits);

    public static PeerFault Reply(int status, string? reason, string? retryAfter = null, int times = int.MaxValue) =>
        new() { Status = status, Reason = reason, RetryAfter = retryAfter, Times = times };

    internal bool TryTake()
    {
        if (Interlocked.Decrement(ref _remaining) < 0)
        {
            return false;
        }

        Interlocked.Increment(ref _hits);
        Arrived.TrySetResult();
        return true;
    }
}

/// <summary>
/// An in-process APNs: Kestrel on 127.0.0.1 (HTTP/2 only, TLS with <see cref="TestCertificate"/>) answering
/// POST /3/device/{token} as Apple documents, with scripted faults per device token.
/// </summary>
public sealed class ApnsPeer : IAsyncDisposable
{
    private static readonly HashSet<string> PushTypes =
        ["alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity", "pushtotalk", "widgets"];

    private readonly WebApplication _app;
    private readonly ECDsa _publicKey;
    private readonly string _keyId;
    private readonly string _teamId;
    private readonly string _bundleId;
    private readonly ConcurrentDictionary<string, long> _validJwts = new();
    private readonly Lock _jwtGate = new();
    private int _requests;
    private long? _latestIat;

    private ApnsPeer(WebApplication app, ECDsa publicKey, string keyId, string teamId, string bundleId)
    {
        _app = app;
        _publicKey = publicKey;
        _keyId = keyId;
        _teamId = teamId;
        _bundleId = bundleId;
    }

    public string Url { get; private set; } = "";

    /// <summary>The peer's clock for JWT ages (APNs' clock, which may differ from the client's).</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>Answer 429 TooManyProviderTokenUpdates to a new JWT issued less than 20 min after the previous one.</summary>
    public bool EnforceTokenUpdateRate { get; set; }

    public ConcurrentQueue<ReceivedNotification> Accepted { get; } = new();

    /// <summary>Every request that reached the peer, with its answer status and reason.</summary>
    public ConcurrentQueue<(string Token, int Status, string? Reason)> Answers { get; } = new();

    public ConcurrentDictionary<string, byte> ConnectionIds { get; } = new();

    public ConcurrentDictionary<string, byte> Protocols { get; } = new();

    public ConcurrentDictionary<string, PeerFault> Faults { get; } = new();

    /// <summary>
    /// Faults drawn per request, keyed by the payload's delivery_id (checked once the request is valid, before
    /// <see cref="Unregistered"/>); null: none. Its log records every valid request that carried a delivery_id and its answer.
    /// </summary>
    public FaultPlan? Plan { get; set; }

    /// <summary>Tokens APNs no longer knows: 410 Unregistered.</summary>
    public ConcurrentDictionary<string, byte> Unregistered { get; } = new();

    /// <summary>Tokens of the other environment: 400 BadDeviceToken here.</summary>
    public ConcurrentDictionary<string, byte> ForeignTokens { get; } = new();

    /// <summary>Tokens of another app: 400 DeviceTokenNotForTopic.</summary>
    public ConcurrentDictionary<string, byte> OtherTopicTokens { get; } = new();

    public int RequestCount => Volatile.Read(ref _requests);

    /// <summary>Distinct JWTs the peer accepted.</summary>
    public ICollection<string> Jwts => _validJwts.Keys;

    public static async Task<ApnsPeer> StartAsync(ECDsa key, string keyId, string teamId, string bundleId, int maxStreamsPerConnection = 100)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.Http2.MaxStreamsPerConnection = maxStreamsPerConnection;
            k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                l.UseHttps(TestCertificate.Instance);
            });
        });
        var app = builder.Build();
        var publicKey = ECDsa.Create(key.ExportParameters(includePrivateParameters: false));
        var peer = new ApnsPeer(app, publicKey, keyId, teamId, bundleId);
        app.Run(peer.HandleAsync);
        await app.StartAsync();
        peer.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return peer;
    }

    /// <summary>Forgets everything recorded and scripted (tests in a class share one peer and run one at a time).</summary>
    public void Reset()
    {
        Accepted.Clear();
        Answers.Clear();
        ConnectionIds.Clear();
        Protocols.Clear();
        Faults.Clear();
        Unregistered.Clear();
        ForeignTokens.Clear();
        OtherTopicTokens.Clear();
        _validJwts.Clear();
        Clock = TimeProvider.System;
        EnforceTokenUpdateRate = false;
        lock (_jwtGate)
        {
            _latestIat = null;
        }

        Interlocked.Exchange(ref _requests, 0);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _publicKey.Dispose();
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        Interlocked.Increment(ref _requests);
        ConnectionIds.TryAdd(ctx.Connection.Id, 0);
        Protocols.TryAdd(ctx.Request.Protocol, 0);
        var path = ctx.Request.Path.Value ?? "";
        const string Prefix = "/3/device/";
        var token = path.StartsWith(Prefix, StringComparison.Ordinal) ? path[Prefix.Length..] : "";

        if (Faults.TryGetValue(token, out var fault) && fault.TryTake())
        {
            if (fault.HoldUntil is { } hold)
            {
                try
                {
                    await hold.WaitAsync(ctx.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            if (fault.Abort)
            {
                Answers.Enqueue((token, 0, "abort"));
                ctx.Abort();
                return;
            }

            if (fault.Status != 0)
            {
                await ErrorAsync(ctx, token, fault.Status, fault.Reason, fault.RetryAfter);
                return;
            }
        }

        if (!path.StartsWith(Prefix, StringComparison.Ordinal))
        {
            await ErrorAsync(ctx, token, 404, "BadPath");
            return;
        }

        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ErrorAsync(ctx, token, 405, "MethodNotAllowed");
            return;
        }

        if (CheckJwt(ctx.Request.Headers.Authorization.ToString()) is { } authError)
        {
            await ErrorAsync(ctx, token, authError.Status, authError.Reason);
            return;
        }

        var headers = ctx.Request.Headers;
        string? reason = null;
        var topic = headers["apns-topic"].ToString();
        var pushType = headers["apns-push-type"].ToString();
        var priority = headers["apns-priority"].ToString();
        var apnsId = headers["apns-id"].ToString();
        var expiration = headers["apns-expiration"].ToString();
        var collapseId = headers["apns-collapse-id"].ToString();
        if (headers.Any(h => h.Key.StartsWith("apns-", StringComparison.OrdinalIgnoreCase) && h.Value.Count > 1))
        {
            reason = "DuplicateHeaders";
        }
        else if (topic.Length == 0)
        {
            reason = "MissingTopic";
        }
        else if (topic != _bundleId)
        {
            reason = "BadTopic";
        }
        else if (pushType.Length > 0 && !PushTypes.Contains(pushType))
        {
            reason = "InvalidPushType";
        }
        else if (priority.Length > 0 && priority is not ("10" or "5" or "1"))
        {
            reason = "BadPriority";
        }
        else if (pushType == "background" && priority == "10")
        {
            // Apple: a priority of 10 for a background notification is an error.
            reason = "BadPriority";
        }
        else if (apnsId.Length > 0 && !(apnsId.Length == 36 && Guid.TryParseExact(apnsId, "D", out _)))
        {
            reason = "BadMessageId";
        }
        else if (expiration.Length > 0 && !long.TryParse(expiration, out _))
        {
            reason = "BadExpirationDate";
        }
        else if (Encoding.UTF8.GetByteCount(collapseId) > 64)
        {
            reason = "BadCollapseId";
        }
        else if (token.Length == 0)
        {
            reason = "MissingDeviceToken";
        }
        else if (token.Length != 64 || !token.All(char.IsAsciiHexDigit) || ForeignTokens.ContainsKey(token))
        {
            reason = "BadDeviceToken";
        }
        else if (OtherTopicTokens.ContainsKey(token))
        {
            reason = "DeviceTokenNotForTopic";
        }

        if (reason is not null)
        {
            await ErrorAsync(ctx, token, 400, reason);
            return;
        }

        using var body = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(body);
        if (body.Length > 4096)
        {
            await ErrorAsync(ctx, token, 413, "PayloadTooLarge");
            return;
        }

        var payload = Encoding.UTF8.GetString(body.ToArray());
        if (!IsJsonObject(payload))
        {
            await ErrorAsync(ctx, token, 400, "PayloadEmpty");
            return;
        }

        var planned = Plan is { } plan && DeliveryId(payload) is { } key ? plan.Next(key) : null;
        if (planned is { Fault: not PlannedFault.None })
        {
            await AnswerPlannedAsync(ctx, token, planned);
            return;
        }

        if (Unregistered.ContainsKey(token))
        {
            planned?.Answer = "410 Unregistered";
            await ErrorAsync(ctx, token, 410, "Unregistered");
            return;
        }

        planned?.Answer = "accepted";

        var recorded = headers
            .Where(h => h.Key.StartsWith("apns-", StringComparison.OrdinalIgnoreCase) || h.Key.Equals("authorization", StringComparison.OrdinalIgnoreCase)
                || h.Key.Equals("content-type", StringComparison.OrdinalIgnoreCase))
            .ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
        Accepted.Enqueue(new ReceivedNotification(token, path, ctx.Request.Protocol, ctx.Connection.Id, recorded, payload));
        Answers.Enqueue((token, 200, null));
        ctx.Response.StatusCode = 200;
        ctx.Response.Headers["apns-id"] = apnsId.Length > 0 ? apnsId : Guid.NewGuid().ToString("D").ToUpperInvariant();
    }

    private (int Status, string Reason)? CheckJwt(string authorization)
    {
        if (!authorization.StartsWith("bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return (403, "MissingProviderToken");
        }

        var jwt = authorization["bearer ".Length..].Trim();
        var now = Clock.GetUtcNow().ToUnixTimeSeconds();
        if (!_validJwts.TryGetValue(jwt, out var iat))
        {
            if (Verify(jwt) is not { } verifiedIat)
            {
                return (403, "InvalidProviderToken");
            }

            iat = verifiedIat;
        }

        if (now - iat > 3600)
        {
            return (403, "ExpiredProviderToken");
        }

        if (iat - now > 300)
        {
            return (403, "InvalidProviderToken");
        }

        lock (_jwtGate)
        {
            if (!_validJwts.ContainsKey(jwt))
            {
                if (EnforceTokenUpdateRate && _latestIat is { } latest && iat - latest < 20 * 60)
                {
                    return (429, "TooManyProviderTokenUpdates");
                }

                _latestIat = iat;
                _validJwts[jwt] = iat;
            }
        }

        return null;
    }

    /// <summary>The iat of a JWT that is well-formed, ES256, ours (kid, iss) and signed by the key; otherwise null.</summary>
    private long? Verify(string jwt)
    {
        var parts = jwt.Split('.');
        if (parts.Length != 3)
        {
            return null;
        }

        try
        {
            using var header = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[0]));
            using var claims = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
            if (header.RootElement.GetProperty("alg").GetString() != "ES256" || header.RootElement.GetProperty("kid").GetString() != _keyId
                || claims.RootElement.GetProperty("iss").GetString() != _teamId)
            {
                return null;
            }

            var signature = Base64Url.DecodeFromChars(parts[2]);
            var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
            return signature.Length == 64
                && _publicKey.VerifyData(signed, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
                ? claims.RootElement.GetProperty("iat").GetInt64()
                : null;
        }
        catch (Exception e) when (e is FormatException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    private static string? DeliveryId(string payload)
    {
        using var doc = JsonDocument.Parse(payload);
        return doc.RootElement.TryGetProperty("delivery_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
    }

    /// <summary>
    /// A fault of the <see cref="Plan"/>, as APNs answers it. A reset is RST_STREAM on this stream only: a GOAWAY would also
    /// cut off other streams whose notifications the peer may already have accepted, so their answers would be lost and a
    /// retry would be a legitimate duplicate, and the harness could no longer check that none is sent twice.
    /// </summary>
    private async Task AnswerPlannedAsync(HttpContext ctx, string token, PlannedRequest planned)
    {
        var retryAfter = planned.RetryAfterSeconds?.ToString(System.Globalization.CultureInfo.InvariantCulture);
        switch (planned.Fault)
        {
            case PlannedFault.InternalError:
                await ErrorAsync(ctx, token, 500, "InternalServerError");
                break;
            case PlannedFault.Unavailable:
                await ErrorAsync(ctx, token, 503, "ServiceUnavailable", retryAfter);
                break;
            case PlannedFault.TooManyRequests:
                await ErrorAsync(ctx, token, 429, "TooManyRequests", retryAfter);
                break;
            case PlannedFault.Hang:
                if (!await Plan!.HangAsync(ctx.RequestAborted))
                {
                    await ErrorAsync(ctx, token, 503, "ServiceUnavailable");
                }

                break;
            default:
                Answers.Enqueue((token, 0, "abort"));
                ctx.Abort();
                break;
        }
    }

    private static bool IsJsonObject(string payload)
    {
        try
        {
            using var doc = JsonDocument.Parse(payload);
            return doc.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private async Task ErrorAsync(HttpContext ctx, string token, int status, string? reason, string? retryAfter = null)
    {
        Answers.Enqueue((token, status, reason));
        ctx.Response.StatusCode = status;
        var apnsId = ctx.Request.Headers["apns-id"].ToString();
        if (apnsId.Length > 0)
        {
            ctx.Response.Headers["apns-id"] = apnsId;
        }

        if (retryAfter is not null)
        {
            ctx.Response.Headers.RetryAfter = retryAfter;
        }

        if (reason is null)
        {
            return;
        }

        ctx.Response.ContentType = "application/json";
        var body = status == 410
            ? JsonSerializer.Serialize(new Dictionary<string, object> { ["reason"] = reason, ["timestamp"] = Clock.GetUtcNow().ToUnixTimeMilliseconds() })
            : JsonSerializer.Serialize(new Dictionary<string, string> { ["reason"] = reason });
        await ctx.Response.WriteAsync(body);
    }
}
