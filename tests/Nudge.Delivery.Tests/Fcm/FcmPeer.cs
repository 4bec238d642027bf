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
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Nudge.Delivery.Tests.Support;

namespace Nudge.Delivery.Tests.Fcm;

/// <summary>What the peer's FCM endpoint answers for a device token.</summary>
public enum FcmFault
{
    Unregistered,
    InvalidRegistrationToken,
    InvalidPayloadArgument,
    SenderIdMismatch,
    QuotaExceeded,
    Unavailable,
    Internal,
    ThirdPartyAuth,
    PermissionDeniedWithoutDetails,
    NotFoundWithoutDetails,
    BadGatewayHtml,
    Teapot,
    AbortConnection,
    Slow,
}

/// <summary>What the peer's token endpoint answers instead of a token.</summary>
public enum TokenFault
{
    InvalidGrant,
    ServerError,
    AbortConnection,
}

/// <summary>
/// A loopback stand-in for Google's OAuth2 token endpoint and the FCM v1 send endpoint (plain HTTP on 127.0.0.1, port 0).
/// The token endpoint verifies the jwt-bearer assertion (RS256 against the service account's public key, iss, aud, scope,
/// exp = iat + 3600); the send endpoint accepts only bearer tokens it issued that have not expired by <see cref="TimeProvider"/>,
/// checks the project and the body shape, and answers scripted faults per device token. Anything the client did wrong that
/// FCM would also reject is recorded in <see cref="Problems"/>.
/// </summary>
public sealed class FcmPeer : IAsyncDisposable
{
    public const string GoogleTokenAudience = "https://oauth2.googleapis.com/token";

    private readonly WebApplication _app;
    private readonly RSA _publicKey;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (DateTimeOffset Issued, long Lifetime)> _tokens = new();
    private readonly ConcurrentQueue<TokenFault> _tokenFaults = new();
    private int _tokensIssued;
    private int _tokenRequests;
    private int _sendRequests;
    private int _unauthorized;
    private long _messageCounter;

    private FcmPeer(WebApplication app, RSA publicKey, TimeProvider time, string projectId)
    {
        _app = app;
        _publicKey = publicKey;
        _time = time;
        ProjectId = projectId;
    }

    public string ProjectId { get; }

    public Uri BaseUrl { get; private set; } = null!;

    public Uri TokenUri => new(BaseUrl, "/token");

    /// <summary>expires_in for newly issued tokens, in seconds.</summary>
    public long TokenLifetimeSeconds { get; set; } = 3600;

    /// <summary>Retry-After the peer sends with 429/503 faults; null sends none.</summary>
    public int? RetryAfterSeconds { get; set; } = 120;

    /// <summary>Every bearer token is refused with a bare 401 (as FCM does for a revoked or foreign token).</summary>
    public bool RefuseAllBearers { get; set; }

    public ConcurrentDictionary<string, FcmFault> Faults { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Faults drawn per request, keyed by the message's data.delivery_id (checked after authentication and the body, before
    /// <see cref="Faults"/>); null: none. Its log records every send request that carried a delivery_id and its answer.
    /// </summary>
    public FaultPlan? Plan { get; set; }

    public ConcurrentQueue<string> Problems { get; } = new();

    /// <summary>Bodies of sends the peer accepted, as received.</summary>
    public ConcurrentQueue<string> AcceptedBodies { get; } = new();

    /// <summary>
    /// Called with each accepted body as it arrives, before the answer is written, so a test can timestamp the send at
    /// the moment the provider has it (a crash harness tells sends in flight at a kill from completed ones).
    /// </summary>
    public Action<string>? OnAccepted { get; set; }

    /// <summary>The bearer token of every send request, in arrival order.</summary>
    public ConcurrentQueue<string> BearersSeen { get; } = new();

    public ConcurrentQueue<string> ContentTypesSeen { get; } = new();

    public ConcurrentQueue<string> IssuedTokens { get; } = new();

    public TaskCompletionSource SlowRequestArrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int TokensIssued => Volatile.Read(ref _tokensIssued);

    public int TokenRequests => Volatile.Read(ref _tokenRequests);

    public int SendRequests => Volatile.Read(ref _sendRequests);

    public int Unauthorized => Volatile.Read(ref _unauthorized);

    public static async Task<FcmPeer> StartAsync(ServiceAccountKey key, TimeProvider time, string projectId = ServiceAccountKey.ProjectId)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var peer = new FcmPeer(app, key.PublicKey(), time, projectId);
        app.Run(peer.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        peer.BaseUrl = new Uri(address);
        return peer;
    }

    /// <summary>The next token requests answer these faults, one each, before tokens are issued again.</summary>
    public void FailNextTokenRequests(params TokenFault[] faults)
    {
        foreach (var f in faults)
        {
            _tokenFaults.Enqueue(f);
        }
    }

    /// <summary>Forgets every token issued so far: FCM answers 401 to them, as after a key rotation.</summary>
    public void RevokeIssuedTokens() => _tokens.Clear();

    public async ValueTask DisposeAsync()
    {
        SlowRequestArrived.TrySetCanceled();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
        _publicKey.Dispose();
    }

    private Task HandleAsync(HttpContext ctx)
    {
        var path = ctx.Request.Path.Value ?? "";
        if (ctx.Request.Method == "POST" && path == "/token")
        {
            return TokenAsync(ctx);
        }

        if (ctx.Request.Method == "POST" && path.StartsWith("/v1/projects/", StringComparison.Ordinal) && path.EndsWith("/messages:send", StringComparison.Ordinal))
        {
            return SendAsync(ctx, path["/v1/projects/".Length..^"/messages:send".Length]);
        }

        Problems.Enqueue($"unexpected request {ctx.Request.Method} {path}");
        ctx.Response.StatusCode = 404;
        return Task.CompletedTask;
    }

    private async Task TokenAsync(HttpContext ctx)
    {
        Interlocked.Increment(ref _tokenRequests);
        if (_tokenFaults.TryDequeue(out var fault))
        {
            switch (fault)
            {
                case TokenFault.InvalidGrant:
                    await OAuthError(ctx, "invalid_grant", "Invalid JWT Signature.");
                    return;
                case TokenFault.ServerError:
                    ctx.Response.StatusCode = 503;
                    ctx.Response.ContentType = "text/html";
                    await ctx.Response.WriteAsync("<html><body>backend unavailable</body></html>");
                    return;
                default:
                    ctx.Abort();
                    return;
            }
        }

        if (!ctx.Request.HasFormContentType)
        {
            await Reject("token request is not form-encoded");
            return;
        }

        var form = await ctx.Request.ReadFormAsync();
        if (form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer")
        {
            await Reject($"grant_type is '{form["grant_type"]}'");
            return;
        }

        var assertionProblem = VerifyAssertion(form["assertion"].ToString());
        if (assertionProblem is not null)
        {
            await Reject(assertionProblem);
            return;
        }

        var accessToken = "ya29.peer-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _tokens[accessToken] = (_time.GetUtcNow(), TokenLifetimeSeconds);
        IssuedTokens.Enqueue(accessToken);
        Interlocked.Increment(ref _tokensIssued);
        await ctx.Response.WriteAsJsonAsync(new Dictionary<string, object>
        {
            ["access_token"] = accessToken,
            ["expires_in"] = TokenLifetimeSeconds,
            ["token_type"] = "Bearer",
        });

        Task Reject(string why)
        {
            Problems.Enqueue("token endpoint: " + why);
            return OAuthError(ctx, "invalid_grant", why);
        }
    }

    private string? VerifyAssertion(string assertion)
    {
        var parts = assertion.Split('.');
        if (parts.Length != 3)
        {
            return "assertion is not a JWS compact serialisation";
        }

        try
        {
            using var header = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[0]));
            if (header.RootElement.GetProperty("alg").GetString() != "RS256")
            {
                return "assertion alg is not RS256";
            }

            var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
            if (!_publicKey.VerifyData(signed, Base64Url.DecodeFromChars(parts[2]), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
            {
                return "assertion signature does not verify against the service account key";
            }

            using var claims = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
            var c = claims.RootElement;
            if (c.GetProperty("iss").GetString() != ServiceAccountKey.ClientEmail)
            {
                return "iss is not the client_email";
            }

            // Google.Apis.Auth 1.78 posts to token_uri but always signs aud = Google's token endpoint (the token_uri of
            // every real key), so that is what a faithful peer checks.
            if (c.GetProperty("aud").GetString() != GoogleTokenAudience)
            {
                return $"aud is '{c.GetProperty("aud").GetString()}', not {GoogleTokenAudience}";
            }

            var scopes = (c.GetProperty("scope").GetString() ?? "").Split(' ');
            if (!scopes.Contains("https://www.googleapis.com/auth/firebase.messaging"))
            {
                return "scope lacks firebase.messaging";
            }

            var iat = c.GetProperty("iat").GetInt64();
            var exp = c.GetProperty("exp").GetInt64();
            if (exp != iat + 3600)
            {
                return $"exp - iat is {exp - iat}, not 3600";
            }

            // Google.Apis.Auth stamps iat from the credential's clock: with the TimeProvider injected it follows test time.
            if (Math.Abs(iat - _time.GetUtcNow().ToUnixTimeSeconds()) > 300)
            {
                return "iat is not the current (test) time";
            }

            return null;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            return $"assertion does not parse ({ex.GetType().Name})";
        }
    }

    private async Task SendAsync(HttpContext ctx, string projectId)
    {
        Interlocked.Increment(ref _sendRequests);
        ContentTypesSeen.Enqueue(ctx.Request.ContentType ?? "");
        var auth = ctx.Request.Headers.Authorization.ToString();
        var bearer = auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth["Bearer ".Length..] : "";
        BearersSeen.Enqueue(bearer);
        if (RefuseAllBearers || !_tokens.TryGetValue(bearer, out var issued) || _time.GetUtcNow() >= issued.Issued.AddSeconds(issued.Lifetime))
        {
            Interlocked.Increment(ref _unauthorized);
            await FcmError(ctx, 401, "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                errorCode: null);
            return;
        }

        if (projectId != ProjectId)
        {
            await FcmError(ctx, 404, "NOT_FOUND", "Requested entity was not found.", errorCode: null);
            return;
        }

        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer);
        var raw = Encoding.UTF8.GetString(buffer.ToArray());
        var (token, bodyProblem) = CheckBody(raw);
        if (bodyProblem is not null)
        {
            Problems.Enqueue("send: " + bodyProblem);
            await FcmError(ctx, 400, "INVALID_ARGUMENT", bodyProblem, "INVALID_ARGUMENT");
            return;
        }

        var planned = Plan is { } plan && DeliveryId(raw) is { } key ? plan.Next(key) : null;
        if (planned is { Fault: not PlannedFault.None })
        {
            await AnswerPlanned(ctx, planned);
            return;
        }

        if (Faults.TryGetValue(token!, out var fault))
        {
            planned?.Answer = fault.ToString();
            await AnswerFault(ctx, fault, token!);
            return;
        }

        planned?.Answer = "accepted";
        AcceptedBodies.Enqueue(raw);
        OnAccepted?.Invoke(raw);
        var id = Interlocked.Increment(ref _messageCounter);
        await ctx.Response.WriteAsJsonAsync(new Dictionary<string, string> { ["name"] = $"projects/{ProjectId}/messages/0:{id}" });
    }

    private static string? DeliveryId(string raw)
    {
        using var doc = JsonDocument.Parse(raw);
        return doc.RootElement.GetProperty("message").TryGetProperty("data", out var data)
            && data.TryGetProperty("delivery_id", out var id) && id.ValueKind == JsonValueKind.String
            ? id.GetString()
            : null;
    }

    /// <summary>A fault of the <see cref="Plan"/>, as FCM answers it (a reset aborts the HTTP/1.1 connection).</summary>
    private async Task AnswerPlanned(HttpContext ctx, PlannedRequest planned)
    {
        if (planned.RetryAfterSeconds is { } s)
        {
            ctx.Response.Headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        switch (planned.Fault)
        {
            case PlannedFault.InternalError:
                await FcmError(ctx, 500, "INTERNAL", "Internal error encountered.", "INTERNAL");
                break;
            case PlannedFault.Unavailable:
                await FcmError(ctx, 503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE");
                break;
            case PlannedFault.TooManyRequests:
                await FcmError(ctx, 429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests'.", "QUOTA_EXCEEDED");
                break;
            case PlannedFault.Hang:
                if (!await Plan!.HangAsync(ctx.RequestAborted))
                {
                    await FcmError(ctx, 503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE");
                }

                break;
            default:
                ctx.Abort();
                break;
        }
    }

    private static (string? Token, string? Problem) CheckBody(string raw)
    {
        try
        {
            using var doc = JsonDocument.Parse(raw);
            if (!doc.RootElement.TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.Object)
            {
                return (null, "body has no message object");
            }

            if (!message.TryGetProperty("token", out var token) || token.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(token.GetString()))
            {
                return (null, "message.token is missing");
            }

            if (message.TryGetProperty("data", out var data))
            {
                if (data.ValueKind != JsonValueKind.Object)
                {
                    return (null, "message.data is not an object");
                }

                foreach (var p in data.EnumerateObject())
                {
                    if (p.Value.ValueKind != JsonValueKind.String)
                    {
                        return (null, $"Invalid value at 'message.data[{p.Name}].value' (not a string)");
                    }
                }
            }

            var size = Encoding.UTF8.GetByteCount(message.GetRawText());
            return size > 4096 ? (null, $"message is {size} bytes, over 4096") : (token.GetString(), null);
        }
        catch (JsonException)
        {
            return (null, "body is not JSON");
        }
    }

    private async Task AnswerFault(HttpContext ctx, FcmFault fault, string token)
    {
        switch (fault)
        {
            case FcmFault.Unregistered:
                await FcmError(ctx, 404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED");
                break;
            case FcmFault.InvalidRegistrationToken:
                await FcmError(ctx, 400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT");
                break;
            case FcmFault.InvalidPayloadArgument:
                // Echoes the device token so the test can check the provider keeps it out of Detail.
                await FcmError(ctx, 400, "INVALID_ARGUMENT", $"Invalid value at 'message.android.ttl' (sent to {token})", "INVALID_ARGUMENT");
                break;
            case FcmFault.SenderIdMismatch:
                await FcmError(ctx, 403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH");
                break;
            case FcmFault.QuotaExceeded:
                SetRetryAfter(ctx);
                await FcmError(ctx, 429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests'.", "QUOTA_EXCEEDED");
                break;
            case FcmFault.Unavailable:
                SetRetryAfter(ctx);
                await FcmError(ctx, 503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE");
                break;
            case FcmFault.Internal:
                await FcmError(ctx, 500, "INTERNAL", "Internal error encountered.", "INTERNAL");
                break;
            case FcmFault.ThirdPartyAuth:
                await FcmError(ctx, 401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR");
                break;
            case FcmFault.PermissionDeniedWithoutDetails:
                await FcmError(ctx, 403, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied on resource.", errorCode: null);
                break;
            case FcmFault.NotFoundWithoutDetails:
                await FcmError(ctx, 404, "NOT_FOUND", "Requested entity was not found.", errorCode: null);
                break;
            case FcmFault.BadGatewayHtml:
                ctx.Response.StatusCode = 502;
                ctx.Response.ContentType = "text/html";
                await ctx.Response.WriteAsync("<html><body>502 Bad Gateway</body></html>");
                break;
            case FcmFault.Teapot:
                ctx.Response.StatusCode = 418;
                break;
            case FcmFault.AbortConnection:
                ctx.Abort();
                break;
            case FcmFault.Slow:
                SlowRequestArrived.TrySetResult();
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(30), ctx.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    // The client gave up, which is what the test wants.
                    return;
                }

                Problems.Enqueue("slow request was never abandoned by the client");
                break;
        }
    }

    private void SetRetryAfter(HttpContext ctx)
    {
        if (RetryAfterSeconds is { } s)
        {
            ctx.Response.Headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private static Task FcmError(HttpContext ctx, int http, string status, string message, string? errorCode)
    {
        ctx.Response.StatusCode = http;
        var error = new Dictionary<string, object> { ["code"] = http, ["message"] = message, ["status"] = status };
        if (errorCode is not null)
        {
            error["details"] = new[]
            {
                new Dictionary<string, string> { ["@type"] = "type.googleapis.com/google.firebase.fcm.v1.FcmError", ["errorCode"] = errorCode },
            };
        }

        return ctx.Response.WriteAsJsonAsync(new Dictionary<string, object> { ["error"] = error });
    }

    private static Task OAuthError(HttpContext ctx, string error, string description)
    {
        ctx.Response.StatusCode = (int)HttpStatusCode.BadRequest;
        return ctx.Response.WriteAsJsonAsync(new Dictionary<string, string> { ["error"] = error, ["error_description"] = description });
    }
}
