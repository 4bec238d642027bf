using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Nudge.Pipeline;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// Serves the HTTP-triggered functions (ingest, webhooks, admin) with the embedded server's own endpoints. The request
/// the Functions host describes in <c>Data.req</c> ({Url, Method, Query, Headers, Params, Body}) runs through this app's
/// request pipeline (routing, auth filters, the same endpoint code) in a service scope of its own; its response becomes
/// <c>Outputs.res</c>, and what its endpoint enqueued in that scope becomes the function's Service Bus output.
/// </summary>
public sealed class HttpDispatch(IServiceScopeFactory scopes, ILogger<HttpDispatch> log)
{
    /// <summary>Marks a dispatched request, so it can never re-enter a function endpoint.</summary>
    public const string InnerRequestItem = "nudge.functions.dispatched";

    /// <summary>The queue outputs each HTTP function declares in its function.json (queue name = binding name).</summary>
    private static readonly Dictionary<string, string[]> QueueOutputs = new(StringComparer.Ordinal)
    {
        [FunctionsHost.Ingest] = [QueueNames.Events],
        [FunctionsHost.Webhooks] = [QueueNames.Events],
        [FunctionsHost.Admin] = [QueueNames.Events], // DELETE /profiles/{id} queues the erase
    };

    /// <summary>The app's pipeline after the point where it was captured (routing and endpoints); set once at start-up.</summary>
    public RequestDelegate? Pipeline { get; set; }

    /// <summary>Runs the described request and answers with res (and the queue outputs when the response is 2xx).</summary>
    /// <exception cref="InvalidInvocationException">Data.req is missing, or has no Method or Url.</exception>
    public async Task<IResult> InvokeAsync(string function, Invocation invocation, CancellationToken ct)
    {
        var pipeline = Pipeline ?? throw new InvalidOperationException("the request pipeline was not captured (UseFunctionsDispatch)");
        var req = invocation.Object("req");
        var method = HostValues.Text(req["Method"]) is { Length: > 0 } m ? m.ToUpperInvariant() : throw new InvalidInvocationException("Data.req.Method is missing");
        var url = HostValues.Text(req["Url"]) is { Length: > 0 } u ? u : throw new InvalidInvocationException("Data.req.Url is missing");
        var (path, query) = SplitUrl(url);
        if (query.Length == 0)
        {
            query = QueryFrom(req["Query"]);
        }

        if (function == FunctionsHost.Admin && path.StartsWith(FunctionsHost.AdminPublicPrefix + "/", StringComparison.OrdinalIgnoreCase))
        {
            path = "/admin" + path[FunctionsHost.AdminPublicPrefix.Length..];
        }

        IHeaderDictionary headers = new HeaderDictionary();
        if (HostValues.Object(req["Headers"]) is { } given)
        {
            foreach (var (name, value) in given)
            {
                // Lengths describe the client's encoding of the body; the body is re-encoded below.
                if (!name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && !name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                {
                    headers[name] = HeaderValues(value);
                }
            }
        }

        var body = BodyBytes(req["Body"], headers.ContentType);
        if (body.Length > 0 || method is "POST" or "PUT" or "PATCH")
        {
            headers.ContentLength = body.Length;
        }

        var requestFeature = new HttpRequestFeature
        {
            Method = method,
            Scheme = url.StartsWith("https:", StringComparison.OrdinalIgnoreCase) ? "https" : "http",
            Protocol = "HTTP/1.1",
            PathBase = "",
            Path = PathString.FromUriComponent(path).Value ?? "/",
            QueryString = query,
            RawTarget = path + query,
            Headers = headers,
            Body = new MemoryStream(body, writable: false),
        };
        var responseBody = new MemoryStream();
        var bodyFeature = new StreamResponseBodyFeature(responseBody);
        var features = new FeatureCollection();
        features.Set<IHttpRequestFeature>(requestFeature);
        features.Set<IHttpResponseFeature>(new HttpResponseFeature());
        features.Set<IHttpResponseBodyFeature>(bodyFeature);
        features.Set<IHttpRequestLifetimeFeature>(new HttpRequestLifetimeFeature { RequestAborted = ct });

        await using var scope = scopes.CreateAsyncScope();
        var context = new DefaultHttpContext(features) { RequestServices = scope.ServiceProvider };
        context.Items[InnerRequestItem] = true;
        int status;
        try
        {
            await pipeline(context);
            await bodyFeature.CompleteAsync();
            status = context.Response.StatusCode;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // As Kestrel would: the client gets a 500, and nothing the endpoint enqueued goes out.
            log.LogError(e, "{Function}: {Method} {Path} failed", function, method, path);
            return new FunctionResult().Output("res", Response(500, new HeaderDictionary(), [])).Log($"{method} {path} -> 500 ({e.GetType().Name})").ToResult();
        }

        var result = new FunctionResult().Output("res", Response(status, context.Response.Headers, responseBody.ToArray()));
        result.Log($"{method} {path} -> {status}");
        var outputs = scope.ServiceProvider.GetRequiredService<FunctionOutputQueue>();
        foreach (var queue in outputs.Queues())
        {
            if (!QueueOutputs[function].Contains(queue))
            {
                // A function.json without this output would drop the messages silently: fail loudly instead.
                log.LogError("{Function}: an endpoint enqueued on '{Queue}', which this function has no output binding for", function, queue);
                return FunctionResult.Failure(500, $"{function} has no output binding for queue '{queue}'");
            }

            // A client that got no 2xx may send the call again: what the endpoint queued must not also go out.
            if (status is >= 200 and < 300)
            {
                result.Messages(queue, outputs.Messages(queue));
            }
        }

        return result.ToResult();
    }

    /// <summary>The HTTP output: the host requires statusCode, status, headers and body (HttpOutputBindingResponse).</summary>
    private static JsonObject Response(int status, IHeaderDictionary headers, byte[] body)
    {
        var h = new JsonObject();
        foreach (var (name, values) in headers)
        {
            if (!name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && !name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                h[name] = values.ToString();
            }
        }

        // Every Nudge endpoint answers text (JSON, HTML), which the host writes out as the body string.
        return new JsonObject { ["statusCode"] = status, ["status"] = status, ["headers"] = h, ["body"] = Encoding.UTF8.GetString(body) };
    }

    /// <summary>Path and query of the original URL, kept escaped as the client sent them (the Url's authority is the public host).</summary>
    private static (string Path, string Query) SplitUrl(string url)
    {
        var rest = url;
        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            rest = url[(scheme + 3)..];
            var start = rest.IndexOfAny(['/', '?']);
            rest = start < 0 ? "/" : rest[start..];
        }

        var q = rest.IndexOf('?', StringComparison.Ordinal);
        var path = q < 0 ? rest : rest[..q];
        return (path.StartsWith('/') ? path : "/" + path, q < 0 || q == rest.Length - 1 ? "" : rest[q..]);
    }

    /// <summary>Query from Data.req.Query (an object, or a JSON string holding one, by host version) when the Url has none.</summary>
    private static string QueryFrom(JsonNode? query)
    {
        if (HostValues.Object(query) is not { Count: > 0 } q)
        {
            return "";
        }

        var parts = q.Select(kv => Uri.EscapeDataString(kv.Key) + "=" + Uri.EscapeDataString(HostValues.Text(kv.Value) ?? ""));
        return "?" + string.Join("&", parts);
    }

    private static StringValues HeaderValues(JsonNode? value) => value switch
    {
        JsonArray a => new StringValues([.. a.Select(HostValues.Text).Where(v => v is not null).Select(v => v!)]),
        _ => new StringValues(HostValues.Text(value)),
    };

    /// <summary>The body: text as is; base64 for application/octet-stream and multipart (how the host sends bytes).</summary>
    private static byte[] BodyBytes(JsonNode? body, string? contentType)
    {
        switch (body)
        {
            case null:
                return [];
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                var text = v.GetValue<string>();
                if (MediaTypeHeaderValue.TryParse(contentType, out var media) && media.MediaType is { } type
                    && (type.Equals("application/octet-stream", StringComparison.OrdinalIgnoreCase) || type.StartsWith("multipart/", StringComparison.OrdinalIgnoreCase)))
                {
                    try
                    {
                        return Convert.FromBase64String(text);
                    }
                    catch (FormatException)
                    {
                        // Not base64 after all: pass the text on.
                    }
                }

                return Encoding.UTF8.GetBytes(text);
            default:
                // A host that parsed a JSON body: pass the JSON on.
                return Encoding.UTF8.GetBytes(body.ToJsonString());
        }
    }
}
