using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Nudge.Delivery.Email;

/// <summary>
/// Sends email through SendGrid's v3 Mail Send API (POST {BaseUrl}/v3/mail/send), one personalization per message, with
/// Nudge's message id as the custom arg <c>delivery_id</c> so Event Webhook events carry it back. Every failure becomes a
/// <see cref="SendOutcome"/>: only the caller's cancellation token may end a send with <see cref="OperationCanceledException"/>.
/// </summary>
public sealed class SendGridEmailProvider : IEmailProvider, IDisposable
{
    // SendGrid's error bodies are small; anything longer is not an error body worth reading.
    private const int MaxErrorBody = 64 * 1024;

    // Longest provider text kept in SendOutcome.Detail.
    private const int MaxDetail = 160;

    // SendGrid takes any valid JSON; the relaxed encoder keeps HTML and non-ASCII text readable in the body instead
    // of \u-escaping every angle bracket (the body is never embedded in a page).
    private static readonly JsonWriterOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly EmailOptions _options;
    private readonly TimeProvider _time;
    private readonly HttpClient _http;
    private readonly Uri _sendUrl;
    private readonly AuthenticationHeaderValue _auth;
    private readonly MimeKit.MailboxAddress _from;
    private readonly MimeKit.MailboxAddress? _replyTo;

    /// <summary>
    /// Creates the provider. <paramref name="handler"/> replaces the default connection pool (tests, proxies); it is
    /// not disposed with the provider. Throws <see cref="ArgumentException"/> when From, ReplyTo, SendGrid or
    /// RequestTimeoutSeconds are not usable.
    /// </summary>
    public SendGridEmailProvider(EmailOptions options, TimeProvider timeProvider, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var problems = options.ValidateCommon();
        problems.AddRange(options.ValidateSendGrid());
        EmailOptions.ThrowIfInvalid(problems, nameof(options));

        _options = options;
        _time = timeProvider;
        _http = handler is null
            ? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);
        _http.Timeout = Timeout.InfiniteTimeSpan; // the per-send budget below, on the injected clock, is the timeout
        _sendUrl = new Uri(options.SendGrid.BaseUrl.TrimEnd('/') + "/v3/mail/send", UriKind.Absolute);
        _auth = new AuthenticationHeaderValue("Bearer", options.SendGrid.ApiKey!.Trim());
        var from = EmailAddresses.Parse(options.From)!;
        _from = new MimeKit.MailboxAddress(string.IsNullOrWhiteSpace(options.FromName) ? from.Name : options.FromName, from.Address);
        _replyTo = string.IsNullOrWhiteSpace(options.ReplyTo) ? null : EmailAddresses.Parse(options.ReplyTo);
    }

    public string Name => "sendgrid";

    /// <summary>
    /// True when the signed Event Webhook is set up (<see cref="SendGridEmailOptions.WebhookPublicKey"/>): SendGrid then
    /// posts delivered, bounce and dropped to POST /webhooks/sendgrid.
    /// </summary>
    public bool ReportsDelivery => !string.IsNullOrWhiteSpace(_options.SendGrid.WebhookPublicKey);

    /// <summary>
    /// Sends one message. Sent carries SendGrid's X-Message-Id. Throws <see cref="OperationCanceledException"/> only
    /// when <paramref name="ct"/> is cancelled and <see cref="ArgumentException"/> when the request has no MessageId.
    /// </summary>
    public async Task<SendOutcome> SendAsync(EmailRequest request, CancellationToken ct)
    {
        var content = EmailContent.From(request, out var refused);
        if (content is null)
        {
            return refused!;
        }

        using var budget = new CancellationTokenSource(_options.RequestTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, budget.Token);
        try
        {
            using var post = new HttpRequestMessage(HttpMethod.Post, _sendUrl)
            {
                Content = new ByteArrayContent(Body(content, request.MessageId)),
            };
            post.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
            post.Headers.Authorization = _auth;
            using var response = await _http.SendAsync(post, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            return await OutcomeAsync(response, linked.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return SendOutcome.Transient(DeliveryReason.Timeout, "timeout");
        }
        catch (HttpRequestException ex)
        {
            return SendOutcome.Transient(DeliveryReason.ProviderUnavailable, ex.HttpRequestError switch
            {
                HttpRequestError.ConnectionError => "connection_error",
                HttpRequestError.NameResolutionError => "host_not_found",
                HttpRequestError.SecureConnectionError => "tls_error",
                HttpRequestError.ResponseEnded => "connection_lost",
                _ => "http_error",
            });
        }
        catch (IOException)
        {
            return SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "connection_lost");
        }
    }

    /// <summary>The Mail Send JSON: text/plain before text/html, as SendGrid requires.</summary>
    internal byte[] Body(EmailContent content, string deliveryId)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Json))
        {
            w.WriteStartObject();
            w.WriteStartArray("personalizations");
            w.WriteStartObject();
            w.WriteStartArray("to");
            WriteAddress(w, null, content.To);
            w.WriteEndArray();
            w.WriteStartObject("custom_args");
            w.WriteString("delivery_id", deliveryId);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            WriteAddress(w, "from", _from);
            if (_replyTo is not null)
            {
                WriteAddress(w, "reply_to", _replyTo);
            }

            w.WriteString("subject", content.Subject);
            w.WriteStartArray("content");
            WriteContent(w, "text/plain", content.Text);
            if (content.Html is not null)
            {
                WriteContent(w, "text/html", content.Html);
            }

            w.WriteEndArray();
            w.WriteStartObject("headers");
            w.WriteString(EmailContent.DeliveryIdHeader, deliveryId);
            foreach (var (name, value) in content.Headers)
            {
                w.WriteString(name, value);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static void WriteAddress(Utf8JsonWriter w, string? property, MimeKit.MailboxAddress address)
    {
        if (property is null)
        {
            w.WriteStartObject();
        }
        else
        {
            w.WriteStartObject(property);
        }

        w.WriteString("email", address.Address);
        if (!string.IsNullOrWhiteSpace(address.Name))
        {
            w.WriteString("name", address.Name);
        }

        w.WriteEndObject();
    }

    private static void WriteContent(Utf8JsonWriter w, string type, string value)
    {
        w.WriteStartObject();
        w.WriteString("type", type);
        w.WriteString("value", value);
        w.WriteEndObject();
    }

    private async Task<SendOutcome> OutcomeAsync(HttpResponseMessage response, CancellationToken token)
    {
        var status = (int)response.StatusCode;
        if (response.IsSuccessStatusCode)
        {
            return SendOutcome.Sent(response.Headers.TryGetValues("X-Message-Id", out var ids) ? ids.FirstOrDefault() : null);
        }

        var code = status.ToString(CultureInfo.InvariantCulture);
        switch (response.StatusCode)
        {
            case HttpStatusCode.TooManyRequests:
                return SendOutcome.RateLimited(RetryAfter.Read(response.Headers, _time.GetUtcNow()) ?? RateLimitReset(response.Headers), code);
            case HttpStatusCode.RequestEntityTooLarge:
                return SendOutcome.Permanent(DeliveryReason.PayloadTooLarge, code);
            case HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden:
                return SendOutcome.Permanent(DeliveryReason.ProviderAuth, Join(code, await FirstErrorAsync(response, token)));
            case HttpStatusCode.BadRequest:
                return SendOutcome.Permanent(DeliveryReason.ProviderRejected, await FirstErrorAsync(response, token) ?? code);
            case HttpStatusCode.RequestTimeout:
                return SendOutcome.Transient(DeliveryReason.ProviderUnavailable, code, RetryAfter.Read(response.Headers, _time.GetUtcNow()));
            default:
                return status >= 500
                    ? SendOutcome.Transient(DeliveryReason.ProviderUnavailable, code, RetryAfter.Read(response.Headers, _time.GetUtcNow()))
                    : SendOutcome.Permanent(DeliveryReason.ProviderRejected, Join(code, await FirstErrorAsync(response, token)));
        }
    }

    // SendGrid's rate-limit reset is a Unix time in seconds.
    private TimeSpan? RateLimitReset(HttpResponseHeaders headers)
    {
        if (!headers.TryGetValues("X-RateLimit-Reset", out var values)
            || !long.TryParse(values.FirstOrDefault(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var unix)
            || unix is < 0 or > 253402300799)
        {
            return null;
        }

        var wait = DateTimeOffset.FromUnixTimeSeconds(unix) - _time.GetUtcNow();
        return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
    }

    /// <summary>"field: message" from the first entry of {"errors":[{"message","field","help"}]}, shortened; null if there is none.</summary>
    private static async Task<string?> FirstErrorAsync(HttpResponseMessage response, CancellationToken token)
    {
        if (response.Content.Headers.ContentLength is > MaxErrorBody)
        {
            return null;
        }

        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(token);
            var buffer = new byte[MaxErrorBody];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(read), token)) > 0)
            {
                read += n;
            }

            using var doc = JsonDocument.Parse(buffer.AsMemory(0, read));
            if (!doc.RootElement.TryGetProperty("errors", out var errors) || errors.ValueKind != JsonValueKind.Array || errors.GetArrayLength() == 0)
            {
                return null;
            }

            var first = errors[0];
            var field = first.TryGetProperty("field", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            var message = first.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            var text = string.IsNullOrWhiteSpace(field) ? message : string.IsNullOrWhiteSpace(message) ? field : field + ": " + message;
            return string.IsNullOrWhiteSpace(text) ? null : Shorten(text);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Join(string code, string? error) => error is null ? code : Shorten(code + " " + error);

    private static string Shorten(string text)
    {
        var oneLine = text.ReplaceLineEndings(" ").Trim();
        return oneLine.Length <= MaxDetail ? oneLine : string.Concat(oneLine.AsSpan(0, MaxDetail - 1), "…");
    }

    public void Dispose() => _http.Dispose();
}
