using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Nudge.Delivery.Twilio;

/// <summary>
/// Sends SMS through Twilio's Messages API (POST {BaseUrl}/2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded,
/// Basic auth). Every failure comes back as a <see cref="SendOutcome"/>; the only exception <see cref="SendAsync"/> throws is
/// <see cref="OperationCanceledException"/> when the caller's token is cancelled. Thread-safe; keep one instance per
/// configuration and dispose it with the host.
/// </summary>
/// <remarks>
/// Twilio's Messages API has no idempotency key: a call that timed out may still have sent the SMS, so a retry after
/// <see cref="DeliveryReason.Timeout"/> can deliver twice.
/// </remarks>
public sealed class TwilioProvider : ISmsProvider, IDisposable
{
    private readonly HttpClient http;
    private readonly TimeProvider time;
    private readonly Uri messagesUri;
    private readonly AuthenticationHeaderValue authorization;
    private readonly KeyValuePair<string, string> sender;
    private readonly decimal pricePerSegment;
    private readonly TimeSpan requestTimeout;

    /// <summary>Creates the provider from a snapshot of <paramref name="options"/>; later changes to the options are not seen.</summary>
    /// <param name="options">Settings; must pass <see cref="TwilioOptions.Validate"/>.</param>
    /// <param name="time">Clock for the per-request timeout and Retry-After dates.</param>
    /// <param name="handler">HTTP handler to use (not disposed by the provider); null creates a pooled one the provider owns.</param>
    /// <exception cref="ArgumentException">The options are not valid; the message lists the problems (never the auth token).</exception>
    public TwilioProvider(TwilioOptions options, TimeProvider time, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Twilio options are not valid: " + string.Join("; ", problems), nameof(options));
        }

        this.time = time;
        http = handler is null
            ? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);
        // Our own linked timeout governs each call, so HttpClient's must never fire first.
        http.Timeout = Timeout.InfiniteTimeSpan;

        messagesUri = new Uri($"{options.BaseUrl.TrimEnd('/')}/2010-04-01/Accounts/{options.AccountSid}/Messages.json");
        authorization = new AuthenticationHeaderValue(
            "Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.AccountSid}:{options.AuthToken}")));
        sender = string.IsNullOrWhiteSpace(options.MessagingServiceSid)
            ? new("From", options.From!)
            : new("MessagingServiceSid", options.MessagingServiceSid);
        pricePerSegment = options.PricePerSegmentUsd;
        requestTimeout = TimeSpan.FromSeconds(options.RequestTimeoutSeconds);
    }

    /// <inheritdoc/>
    public string Name => "twilio";

    /// <summary>
    /// True when each SMS carries a status callback (<see cref="SmsRequest.StatusCallback"/>, set by the sender when Nudge
    /// has a public address): Twilio then posts delivered and undelivered to it. Default false.
    /// </summary>
    public bool ReportsDelivery { get; init; }

    /// <summary>
    /// Sends one SMS. <see cref="OutcomeKind.Sent"/> carries the message SID, the segment count and the estimated cost
    /// (segments x <see cref="TwilioOptions.PricePerSegmentUsd"/>) from <see cref="SmsSegments"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
    public async Task<SendOutcome> SendAsync(SmsRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var count = SmsSegments.Count(request.Body);

        var fields = new List<KeyValuePair<string, string>>(4) { new("To", request.To), sender, new("Body", request.Body) };
        if (request.StatusCallback is { } callback)
        {
            fields.Add(new("StatusCallback", callback.AbsoluteUri));
        }

        using var timeout = new CancellationTokenSource(requestTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            using var message = new HttpRequestMessage(HttpMethod.Post, messagesUri) { Content = new FormUrlEncodedContent(fields) };
            message.Headers.Authorization = authorization;
            message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            var body = await response.Content.ReadAsStringAsync(linked.Token);
            return Map(response, body, count);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return SendOutcome.Transient(DeliveryReason.Timeout, $"no answer in {requestTimeout.TotalSeconds:0}s");
        }
        catch (HttpRequestException ex)
        {
            return SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "http_" + ex.HttpRequestError.ToString().ToLowerInvariant());
        }
        catch (IOException)
        {
            return SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "io_error");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => http.Dispose();

    private SendOutcome Map(HttpResponseMessage response, string body, SmsSegmentCount count)
    {
        var status = (int)response.StatusCode;
        var (sid, code) = ReadBody(body);
        if (response.IsSuccessStatusCode)
        {
            // Twilio took the message; a body we cannot read still means it was accepted, and a retry would send it twice.
            return SendOutcome.Sent(sid) with { Segments = count.Segments, EstimatedCost = count.Segments * pricePerSegment };
        }

        var detail = code?.ToString(CultureInfo.InvariantCulture) ?? $"http_{status}";
        if (response.StatusCode == HttpStatusCode.TooManyRequests || code == TwilioErrors.TooManyRequests)
        {
            return SendOutcome.RateLimited(RetryAfter.Read(response.Headers, time.GetUtcNow()), detail);
        }

        if (status >= 500)
        {
            return SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail, RetryAfter.Read(response.Headers, time.GetUtcNow()));
        }

        if (code is { } c)
        {
            return SendOutcome.Permanent(TwilioErrors.Reason(c), detail);
        }

        return response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
            ? SendOutcome.Permanent(DeliveryReason.ProviderAuth, detail)
            : SendOutcome.Permanent(DeliveryReason.ProviderRejected, detail);
    }

    /// <summary>The message SID of a success body, or the error code of an error body; nulls when absent or not JSON.</summary>
    private static (string? Sid, int? Code) ReadBody(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return (null, null);
            }

            var root = doc.RootElement;
            var sid = root.TryGetProperty("sid", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            int? code = root.TryGetProperty("code", out var c) switch
            {
                true when c.ValueKind == JsonValueKind.Number && c.TryGetInt32(out var n) => n,
                true when c.ValueKind == JsonValueKind.String && int.TryParse(c.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) => n,
                _ => null,
            };
            return (sid, code);
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }
}
