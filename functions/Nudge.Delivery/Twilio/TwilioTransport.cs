using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Nudge.Delivery.Twilio;

/// <summary>
/// The HTTP transport under Twilio's REST client (<see cref="global::Twilio.Http.HttpClient"/>): sends each request the
/// library builds on our <see cref="HttpClient"/>, to <see cref="TwilioOptions.BaseUrl"/> instead of api.twilio.com (a
/// loopback peer in tests), under the current <see cref="Call"/>'s cancellation (the library's calls take no token), and
/// keeps what the library does not expose: the answer's status and headers (Retry-After) and the network failure.
/// </summary>
internal sealed class TwilioTransport : global::Twilio.Http.HttpClient, IDisposable
{
    private static readonly AsyncLocal<Call?> Current = new();

    private readonly HttpClient http;
    private readonly string baseUrl;

    /// <param name="baseUrl">Twilio's API root (https://api.twilio.com, or a test peer).</param>
    /// <param name="handler">HTTP handler to use (not disposed); null creates a pooled one this transport owns.</param>
    public TwilioTransport(Uri baseUrl, HttpMessageHandler? handler)
    {
        this.baseUrl = baseUrl.AbsoluteUri.TrimEnd('/');
        http = handler is null
            ? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);

        // The call's own token governs each request, so HttpClient's timeout must never fire first.
        http.Timeout = Timeout.InfiniteTimeSpan;
    }

    /// <summary>One provider call: its cancellation, and what the transport saw of it.</summary>
    public sealed class Call(CancellationToken token)
    {
        public CancellationToken Token => token;

        /// <summary>Twilio's answer, when one arrived.</summary>
        public Answer? Response { get; set; }

        /// <summary>Why no answer arrived (timeout, connection failure), when none did.</summary>
        public Exception? Failure { get; set; }
    }

    /// <summary>An answer as it came: status, headers and body.</summary>
    public sealed record Answer(HttpStatusCode Status, HttpResponseHeaders Headers, string Body)
    {
        public bool IsSuccess => (int)Status is >= 200 and < 300;
    }

    /// <summary>Makes <paramref name="call"/> the one the library's requests in this async flow belong to.</summary>
    public static IDisposable Begin(Call call)
    {
        Current.Value = call;
        return new End();
    }

    /// <summary>The message SID in an answer's body; null when absent or not JSON.</summary>
    public static string? SidOf(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("sid", out var s) && s.ValueKind == JsonValueKind.String
                ? s.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public override global::Twilio.Http.Response MakeRequest(global::Twilio.Http.Request request) =>
        MakeRequestAsync(request).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override async Task<global::Twilio.Http.Response> MakeRequestAsync(global::Twilio.Http.Request request)
    {
        var call = Current.Value ?? throw new InvalidOperationException("Twilio requests are made inside TwilioProvider.SendAsync");
        LastRequest = request;
        using var message = new HttpRequestMessage(new HttpMethod(request.Method.ToString()), baseUrl + request.ConstructUrl().PathAndQuery);
        if (request.Method == global::Twilio.Http.HttpMethod.Post)
        {
            message.Content = new FormUrlEncodedContent(request.PostParams);
        }

        message.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{request.Username}:{request.Password}")));
        message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        foreach (var (name, value) in request.HeaderParams)
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }

        try
        {
            var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, call.Token);
            using (response)
            {
                var body = await response.Content.ReadAsStringAsync(call.Token);
                call.Response = new Answer(response.StatusCode, response.Headers, body);
                LastResponse = new global::Twilio.Http.Response(response.StatusCode, body, response.Headers);
                return LastResponse;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException)
        {
            call.Failure = e;
            throw;
        }
    }

    public void Dispose() => http.Dispose();

    private sealed class End : IDisposable
    {
        public void Dispose() => Current.Value = null;
    }
}
