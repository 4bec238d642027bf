using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Google.Apis.Auth.OAuth2;
using Google.Apis.Auth.OAuth2.Responses;
using Google.Apis.Http;

namespace Nudge.Delivery.Fcm;

/// <summary>
/// Sends pushes through the FCM HTTP v1 API (<c>POST {BaseUrl}/v1/projects/{project}/messages:send</c>), one request per
/// message, authorised with a service-account OAuth2 access token that Google.Apis.Auth caches and refreshes ahead of expiry
/// (the key's <c>token_uri</c> is honoured). Every failure comes back as a <see cref="SendOutcome"/>; only cancellation
/// of the caller's token throws (<see cref="OperationCanceledException"/>). Thread-safe; meant to be a singleton.
/// </summary>
public sealed class FcmProvider : IPushProvider, IDisposable
{
    /// <summary>The OAuth2 scope FCM sends need.</summary>
    public const string Scope = "https://www.googleapis.com/auth/firebase.messaging";

    // FCM answers are small JSON objects; a larger body is not FCM.
    private const long MaxResponseBytes = 1024 * 1024;

    private readonly HttpClient _http;
    private readonly ServiceAccountCredential _credential;
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private readonly Uri _sendUri;
    private readonly Lock _invalidateLock = new();

    /// <summary>Creates the provider; no network call is made until the first send.</summary>
    /// <param name="options">Validated here (see <see cref="FcmOptions.Validate"/>).</param>
    /// <param name="timeProvider">Time for token expiry, Retry-After dates and the per-attempt timeout.</param>
    /// <param name="handler">
    /// Optional handler for both the token endpoint and FCM (tests: loopback). Not disposed by the provider.
    /// Null: the provider owns a pooled <see cref="SocketsHttpHandler"/> for FCM, and Google.Apis.Auth its own for tokens.
    /// </param>
    /// <exception cref="ArgumentException">The options have problems; the message lists them and never holds key text.</exception>
    public FcmProvider(FcmOptions options, TimeProvider timeProvider, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);

        var problems = new List<string>();
        var account = options.Resolve(problems);
        if (account is null)
        {
            throw new ArgumentException("FCM options are not valid: " + string.Join(" ", problems), nameof(options));
        }

        _time = timeProvider;
        _timeout = TimeSpan.FromSeconds(options.RequestTimeoutSeconds);
        ProjectId = account.ProjectId;
        _sendUri = new Uri($"{options.BaseUrl.TrimEnd('/')}/v1/projects/{Uri.EscapeDataString(account.ProjectId)}/messages:send");

        var initializer = new ServiceAccountCredential.Initializer(account.ClientEmail, account.TokenUri)
        {
            ProjectId = account.ProjectId,
            KeyId = account.PrivateKeyId,
            Scopes = [Scope],
            Clock = new TimeProviderClock(timeProvider),
            HttpClientFactory = handler is null ? null : new FixedHandlerHttpClientFactory(handler),
            // Retrying is the pipeline's decision (it sees the outcome); a token failure must come back within one attempt.
            DefaultExponentialBackOffPolicy = ExponentialBackOffPolicy.None,
        }.FromPrivateKey(account.PrivateKeyPem);
        _credential = new ServiceAccountCredential(initializer);

        _http = handler is null
            ? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);
        // The per-attempt timeout is ours (driven by the TimeProvider); HttpClient's own would throw a different exception.
        _http.Timeout = Timeout.InfiniteTimeSpan;
        _http.MaxResponseContentBufferSize = MaxResponseBytes;
    }

    /// <inheritdoc/>
    public string Name => "fcm";

    /// <summary>False: FCM gives no delivery receipt (the app's SDK may report delivered, see POST /api/v1/push/events).</summary>
    public bool ReportsDelivery => false;

    /// <summary>The project messages are sent to (the override or the key's project_id).</summary>
    public string ProjectId { get; }

    /// <summary>
    /// Sends one push. Refused before the network: an empty token (InvalidToken), a reserved data key or an over-long
    /// collapse id (Permanent provider_rejected), a message over 4096 bytes (Permanent payload_too_large). A 401 without an
    /// FCM error code (a stale access token) drops the cached token and retries once.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
    public async Task<SendOutcome> SendAsync(PushRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Content);
        ct.ThrowIfCancellationRequested();

        if (string.IsNullOrWhiteSpace(request.Token))
        {
            return SendOutcome.InvalidToken("empty token");
        }

        var (body, refused) = FcmMessage.Build(request);
        if (refused is not null)
        {
            return refused;
        }

        for (var attempt = 1; ; attempt++)
        {
            var (outcome, staleToken) = await AttemptAsync(request.Token, body!, ct);
            if (staleToken is null || attempt > 1)
            {
                return outcome;
            }

            Invalidate(staleToken);
        }
    }

    /// <summary>Disposes the FCM client when the provider owns it, and the signing key.</summary>
    public void Dispose()
    {
        _http.Dispose();
        _credential.Key?.Dispose();
    }

    /// <summary>One token fetch plus one POST under one timeout. StaleToken is set when FCM refused the access token itself.</summary>
    private async Task<(SendOutcome Outcome, string? StaleToken)> AttemptAsync(string deviceToken, byte[] body, CancellationToken ct)
    {
        using var timeout = new CancellationTokenSource(_timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        var stage = "token endpoint";
        try
        {
            var accessToken = await _credential.GetAccessTokenForRequestAsync(_sendUri.AbsoluteUri, linked.Token);

            stage = "fcm";
            using var message = new HttpRequestMessage(HttpMethod.Post, _sendUri) { Content = new ByteArrayContent(body) };
            message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);

            using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseContentRead, linked.Token);
            var answer = await response.Content.ReadAsByteArrayAsync(linked.Token);
            if (response.IsSuccessStatusCode)
            {
                return (SendOutcome.Sent(ReadName(answer)), null);
            }

            var error = FcmErrorBody.Parse(answer);
            if (response.StatusCode == HttpStatusCode.Unauthorized && error.ErrorCode is null)
            {
                return (SendOutcome.Permanent(DeliveryReason.ProviderAuth, error.Status ?? "HTTP 401"), accessToken);
            }

            return (FcmErrors.Map(response.StatusCode, error, RetryAfter.Read(response.Headers, _time.GetUtcNow()), deviceToken), null);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException)
        {
            return (SendOutcome.Transient(DeliveryReason.Timeout, $"{stage}: no answer within {_timeout.TotalSeconds:0} s"), null);
        }
        catch (TokenResponseException ex)
        {
            return (TokenFailure(ex), null);
        }
        catch (HttpRequestException ex)
        {
            return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, $"{stage}: {ex.HttpRequestError}"), null);
        }
        catch (IOException ex)
        {
            return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, $"{stage}: {ex.GetType().Name}"), null);
        }
        catch (Exception ex)
        {
            // Typed outcomes only: e.g. Google.Apis.Auth gives up refreshing with InvalidOperationException. Type name only:
            // messages from the auth stack may quote server answers.
            return (SendOutcome.Transient(DeliveryReason.ProviderUnavailable, $"{stage}: {ex.GetType().Name}"), null);
        }
    }

    /// <summary>400/401 (invalid_grant, bad key, unknown account) will not fix itself; 5xx and throttling may.</summary>
    private static SendOutcome TokenFailure(TokenResponseException ex)
    {
        var status = ex.StatusCode is { } s ? (int)s : 0;
        var code = ex.Error?.Error is { Length: > 0 and <= 64 } e && e.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-') ? e : "error";
        var detail = $"token endpoint: {code} (HTTP {status})";
        return status is 0 or 408 or 429 or >= 500
            ? SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail)
            : SendOutcome.Permanent(DeliveryReason.ProviderAuth, detail);
    }

    /// <summary>Drops the cached access token if it is still the one FCM refused, so concurrent 401s cause one refresh.</summary>
    private void Invalidate(string staleToken)
    {
        lock (_invalidateLock)
        {
            if (_credential.Token?.AccessToken == staleToken)
            {
                _credential.Token = null;
            }
        }
    }

    private static string? ReadName(byte[] json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                ? name.GetString()
                : null;
        }
        catch (JsonException)
        {
            // FCM accepted the message; an unreadable id does not change that.
            return null;
        }
    }
}
