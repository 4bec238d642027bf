using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Nudge.Delivery.Apns;

/// <summary>
/// Sends iOS pushes through the APNs HTTP/2 API with token (.p8) authentication: POST {host}/3/device/{token}.
/// Every APNs answer becomes a <see cref="SendOutcome"/>; only cancellation of the caller's token throws.
/// </summary>
/// <remarks>
/// <para>Connections are long-lived HTTP/2 connections carrying concurrent streams; one instance should live as long as
/// the process. The provider owns (and disposes) the handler it is given.</para>
/// <para>Retries inside one <see cref="SendAsync"/>: BadDeviceToken is retried once against the other environment's host
/// (a sandbox token sent to production, or the reverse), and ExpiredProviderToken once with a re-signed JWT when the
/// rejected one is at least 20 minutes old. A stream the server refused (HTTP/2 REFUSED_STREAM, never processed) is resent
/// up to 3 times. Every other retry is the caller's, guided by the outcome.</para>
/// <para>Until the first answer from a host, requests to it go one at a time: APNs allows a single stream per connection
/// until a valid provider token was posted.</para>
/// </remarks>
public sealed class ApnsProvider : IPushProvider, IDisposable
{
    /// <summary>Namespace of the name-based apns-id (UUIDv5 of MessageId and token), fixed so a retry carries the same id.</summary>
    private static readonly Guid ApnsIdNamespace = new("5d3c1f9a-7e2b-4c61-9f0e-3b8a6d2e4c17");

    /// <summary>Longest device token accepted (hex characters); Apple's are 64 today and documented as variable.</summary>
    private const int MaxTokenLength = 200;

    /// <summary>
    /// A stream refused by the server (HTTP/2 REFUSED_STREAM) was not processed and is safe to resend. APNs allows one stream
    /// on a new connection until a valid token was posted, and the client may open more before it reads that setting.
    /// </summary>
    private const int MaxRefusedStreamRetries = 3;

    /// <summary>The HTTP/2 REFUSED_STREAM error code (RFC 9113 section 7).</summary>
    private const long RefusedStream = 0x7;

    private readonly HttpClient _http;
    private readonly ApnsTokenSigner _signer;
    private readonly TimeProvider _time;
    private readonly string _topic;
    private readonly string _defaultEnvironment;
    private readonly Host _production;
    private readonly Host _sandbox;
    private readonly TimeSpan _timeout;

    /// <summary>Creates the provider; nothing is sent until the first <see cref="SendAsync"/>.</summary>
    /// <param name="options">Validated settings.</param>
    /// <param name="time">Clock for the JWT age, apns-expiration, Retry-After and the request timeout.</param>
    /// <param name="handler">HTTP handler (owned by the provider from now on); null uses <see cref="CreateHandler"/>.</param>
    /// <exception cref="ArgumentException">The options are not valid (the message lists the problems, never the key).</exception>
    public ApnsProvider(ApnsOptions options, TimeProvider time, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        _signer = new ApnsTokenSigner(options, time);
        _time = time;
        _topic = options.BundleId!;
        _defaultEnvironment = ApnsOptions.NormalizeEnvironment(options.DefaultEnvironment, allowDevelopment: false)!;
        _production = new Host(new Uri(options.ProductionUrl.TrimEnd('/') + "/"));
        var sandbox = new Uri(options.SandboxUrl.TrimEnd('/') + "/");
        _sandbox = sandbox == _production.BaseUri ? _production : new Host(sandbox);
        _timeout = TimeSpan.FromSeconds(options.RequestTimeoutSeconds);
        _http = new HttpClient(handler ?? CreateHandler(options), disposeHandler: true)
        {
            // The per-request timeout runs on the injected TimeProvider instead.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public string Name => "apns";

    /// <summary>False: APNs gives no delivery receipt (the app's SDK may report delivered, see POST /api/v1/push/events).</summary>
    public bool ReportsDelivery => false;

    /// <summary>
    /// The default handler: long-lived HTTP/2 connections (no lifetime limit, 1 h idle timeout, a PING every 60 s so dead
    /// connections are noticed), and up to <see cref="ApnsOptions.MaxConnectionsPerHost"/> connections per host when the
    /// streams of one are all busy. APNs treats rapid connect/disconnect as a denial-of-service attempt, hence the cap.
    /// </summary>
    public static SocketsHttpHandler CreateHandler(ApnsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            MaxConnectionsPerServer = Math.Max(1, options.MaxConnectionsPerHost),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromHours(1),
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            ConnectTimeout = TimeSpan.FromSeconds(Math.Max(1, options.RequestTimeoutSeconds)),
        };
    }

    /// <summary>Sends one push. Never throws for an APNs or network failure.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
    public async Task<SendOutcome> SendAsync(PushRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        ct.ThrowIfCancellationRequested();
        var content = request.Content;
        var token = request.Token?.Trim() ?? "";
        if (token.Length == 0)
        {
            return SendOutcome.InvalidToken("MissingDeviceToken");
        }

        if (token.Length > MaxTokenLength || !token.All(char.IsAsciiHexDigit))
        {
            // Not a token APNs could ever accept, in either environment (and unsafe to put in a URL path).
            return SendOutcome.InvalidToken("BadDeviceToken (not a hex device token)");
        }

        var environment = request.ApnsEnvironment is null
            ? _defaultEnvironment
            : ApnsOptions.NormalizeEnvironment(request.ApnsEnvironment, allowDevelopment: true);
        if (environment is null)
        {
            return SendOutcome.Permanent(DeliveryReason.ProviderRejected, "ApnsEnvironment must be \"production\" or \"sandbox\".");
        }

        if (!string.IsNullOrEmpty(content.CollapseId) && Encoding.UTF8.GetByteCount(content.CollapseId) > ApnsOptions.MaxCollapseIdBytes)
        {
            return SendOutcome.Permanent(
                DeliveryReason.ProviderRejected,
                $"BadCollapseId: apns-collapse-id is {Encoding.UTF8.GetByteCount(content.CollapseId)} bytes; APNs allows {ApnsOptions.MaxCollapseIdBytes}.");
        }

        if (ApnsPayload.ReservedDataKey(content) is { } reserved)
        {
            return SendOutcome.Permanent(DeliveryReason.ProviderRejected, $"Data key \"{reserved}\" is reserved by APNs.");
        }

        var payload = ApnsPayload.Build(request.MessageId, content);
        if (payload.Length > ApnsOptions.MaxPayloadBytes)
        {
            return SendOutcome.Permanent(
                DeliveryReason.PayloadTooLarge, $"Payload is {payload.Length} bytes; APNs allows {ApnsOptions.MaxPayloadBytes}.");
        }

        var apnsId = DeriveApnsId(request.MessageId, token);
        var switchedEnvironment = false;
        var refreshedJwt = false;
        var refusedStreams = 0;
        while (true)
        {
            var jwt = _signer.GetToken();
            var (reply, failure, refused) = await PostAsync(environment, token, content, payload, apnsId, jwt, ct);
            if (refused && ++refusedStreams <= MaxRefusedStreamRetries)
            {
                continue;
            }

            if (failure is not null)
            {
                return failure;
            }

            var (status, reason, retryAfter, echoedId) = reply;
            if (status is >= 200 and < 300)
            {
                var sent = SendOutcome.Sent(echoedId ?? apnsId);
                return switchedEnvironment
                    ? sent with { Detail = $"Sent via {environment}: the token is not valid in {Other(environment)}.", ApnsEnvironment = environment }
                    : sent;
            }

            if (status == 400 && reason == "BadDeviceToken" && !switchedEnvironment && HostOf(Other(environment)) != HostOf(environment))
            {
                switchedEnvironment = true;
                environment = Other(environment);
                continue;
            }

            if (status == 403 && reason == "ExpiredProviderToken" && !refreshedJwt)
            {
                refreshedJwt = true;
                if (_signer.TryRefreshAfterRejection(jwt))
                {
                    continue;
                }
            }

            return Map(status, reason, retryAfter);
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _signer.Dispose();
        _production.Dispose();
        _sandbox.Dispose();
    }

    /// <summary>Maps a final APNs answer (status and its "reason") to an outcome; retries were handled before this.</summary>
    internal static SendOutcome Map(int status, string? reason, TimeSpan? retryAfter)
    {
        var detail = reason ?? $"HTTP {status}";
        return (status, reason) switch
        {
            (400, "BadDeviceToken") => SendOutcome.InvalidToken("BadDeviceToken"),

            // Apple lists IdleTimeout among the 400s, but it describes the connection, not this notification.
            (400, "IdleTimeout") => SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail),
            (400, "BadTopic" or "MissingTopic" or "TopicDisallowed") => SendOutcome.Permanent(DeliveryReason.ProviderAuth, detail),
            (403, "ExpiredProviderToken") => SendOutcome.Transient(DeliveryReason.ProviderAuth, detail, retryAfter),
            (403, _) => SendOutcome.Permanent(DeliveryReason.ProviderAuth, detail),
            (410, _) => SendOutcome.InvalidToken(reason ?? "Unregistered"),
            (413, _) => SendOutcome.Permanent(DeliveryReason.PayloadTooLarge, reason ?? "PayloadTooLarge"),

            // TooManyRequests (this device gets too many pushes) and TooManyProviderTokenUpdates both mean "later".
            (429, _) => SendOutcome.RateLimited(retryAfter, reason ?? "TooManyRequests"),
            _ when status >= 500 => SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail, retryAfter),

            // Other 400s (DeviceTokenNotForTopic, BadCollapseId, ...), 404 BadPath, 405, and anything unknown: retrying will not help.
            _ => SendOutcome.Permanent(DeliveryReason.ProviderRejected, detail),
        };
    }

    /// <summary>A name-based UUID (RFC 9562 version 5) of message id and token: stable across retries, distinct per device.</summary>
    internal static string DeriveApnsId(string messageId, string token)
    {
        var name = Encoding.UTF8.GetBytes(messageId + "\n" + token);
        var input = new byte[16 + name.Length];
        ApnsIdNamespace.TryWriteBytes(input, bigEndian: true, out _);
        name.CopyTo(input, 16);
#pragma warning disable CA5350 // Version 5 UUIDs are defined over SHA-1; this is an identifier, not a security control.
        var hash = SHA1.HashData(input);
#pragma warning restore CA5350
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString("D");
    }

    private static string Other(string environment) => environment == ApnsOptions.Production ? ApnsOptions.Sandbox : ApnsOptions.Production;

    private Host HostOf(string environment) => environment == ApnsOptions.Sandbox ? _sandbox : _production;

    private async Task<(Reply Reply, SendOutcome? Failure, bool Refused)> PostAsync(
        string environment, string token, PushContent content, byte[] payload, string apnsId, string jwt, CancellationToken ct)
    {
        var host = HostOf(environment);
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(host.BaseUri, "3/device/" + token))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(payload),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        message.Headers.Authorization = new AuthenticationHeaderValue("bearer", jwt);
        var alert = ApnsPayload.IsAlert(content);
        message.Headers.TryAddWithoutValidation("apns-topic", _topic);
        message.Headers.TryAddWithoutValidation("apns-push-type", alert ? "alert" : "background");

        // APNs refuses priority 10 for background pushes.
        message.Headers.TryAddWithoutValidation("apns-priority", alert && content.HighPriority ? "10" : "5");
        message.Headers.TryAddWithoutValidation("apns-id", apnsId);
        if (content.TimeToLive is { } ttl)
        {
            var expiration = ttl <= TimeSpan.Zero ? 0 : (_time.GetUtcNow() + ttl).ToUnixTimeSeconds();
            message.Headers.TryAddWithoutValidation("apns-expiration", expiration.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (!string.IsNullOrEmpty(content.CollapseId))
        {
            message.Headers.TryAddWithoutValidation("apns-collapse-id", content.CollapseId);
        }

        using var timeout = new CancellationTokenSource(_timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        var gated = false;
        try
        {
            if (!host.Warm)
            {
                // APNs allows one stream on a new connection until a valid token was posted; the client would assume 100.
                // So until a first answer arrives, requests go one at a time (the wait counts against the timeout).
                await host.FirstRequest.WaitAsync(linked.Token);
                gated = true;
            }

            using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            host.Warm = true;
            var status = (int)response.StatusCode;
            var echoedId = response.Headers.TryGetValues("apns-id", out var ids) ? ids.FirstOrDefault() : null;
            if (status is >= 200 and < 300)
            {
                return (new Reply(status, null, null, echoedId), null, false);
            }

            var body = await response.Content.ReadAsStringAsync(linked.Token);
            return (new Reply(status, ReadReason(body), RetryAfter.Read(response.Headers, _time.GetUtcNow()), echoedId), null, false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            ct.ThrowIfCancellationRequested();
            throw;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return (default, SendOutcome.Transient(DeliveryReason.Timeout, $"No answer from APNs ({environment}) within {_timeout.TotalSeconds:0} s."), false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            var refused = (e as HttpProtocolException ?? e.InnerException as HttpProtocolException)?.ErrorCode == RefusedStream;
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError })
            {
                // The next connection starts again with a single stream.
                host.Warm = false;
            }

            return (default, SendOutcome.Transient(DeliveryReason.ProviderUnavailable, Describe(e, environment, token)), refused);
        }
        finally
        {
            if (gated)
            {
                host.FirstRequest.Release();
            }
        }
    }

    /// <summary>The "reason" of an APNs error body, if it looks like one of Apple's reason codes.</summary>
    private static string? ReadReason(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("reason", out var r)
                && r.ValueKind == JsonValueKind.String
                && r.GetString() is { Length: > 0 and <= 64 } reason
                && reason.All(char.IsAsciiLetterOrDigit)
                ? reason
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A short description of a network failure, with the device token cut to its first 8 characters.</summary>
    private static string Describe(Exception e, string environment, string token)
    {
        var text = e.InnerException is { } inner && inner.Message != e.Message ? $"{e.Message} ({inner.Message})" : e.Message;
        if (e is HttpRequestException { HttpRequestError: var error } && error != HttpRequestError.Unknown)
        {
            text = $"{error}: {text}";
        }

        text = text.Replace(token, token[..Math.Min(8, token.Length)] + "...", StringComparison.OrdinalIgnoreCase);
        text = $"APNs ({environment}) unreachable: {text}";
        return text.Length <= 300 ? text : text[..300];
    }

    /// <summary>One APNs host and whether a request to it has been answered yet (see <see cref="PostAsync"/>).</summary>
    private sealed class Host(Uri baseUri) : IDisposable
    {
        private volatile bool _warm;

        public Uri BaseUri { get; } = baseUri;

        public SemaphoreSlim FirstRequest { get; } = new(1, 1);

        public bool Warm
        {
            get => _warm;
            set => _warm = value;
        }

        public void Dispose() => FirstRequest.Dispose();
    }

    private readonly record struct Reply(int Status, string? Reason, TimeSpan? RetryAfter, string? ApnsId);
}
