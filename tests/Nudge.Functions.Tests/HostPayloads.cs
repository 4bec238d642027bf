using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nudge.Functions.Tests;

/// <summary>How the host encodes a queue message body in Data (docs/architecture.md, Azure Functions).</summary>
public enum BodyEncoding
{
    /// <summary>What the host sends: JsonConvert.SerializeObject of the body string, i.e. a JSON string holding a quoted string.</summary>
    Quoted,

    /// <summary>The documentation's examples: the body text as a plain JSON string.</summary>
    Unquoted,

    /// <summary>A JSON object (what the host sends for values it can turn into a JObject).</summary>
    Object,

    /// <summary>Base64 of the body bytes (a binding bound as byte[]).</summary>
    Base64,
}

/// <summary>
/// The invocation payloads the Azure Functions host posts to a custom handler, built the way the host builds them
/// (ScriptInvocationContextExtensions.ToHttpScriptInvocationContext, HttpRequestExtensions.GetRequestAsJObject):
/// trigger values in Data, trigger metadata in Metadata, every plain string value JSON-quoted once more.
/// </summary>
public static class HostPayloads
{
    public static readonly DateTimeOffset Enqueued = new(2026, 6, 1, 13, 59, 0, TimeSpan.Zero);

    /// <summary>JsonConvert.SerializeObject(string): the value in quotes, as the host puts it in Data and Metadata.</summary>
    public static string Quote(string s) => JsonSerializer.Serialize(s);

    /// <summary>A Service Bus trigger invocation (extension 5.x metadata).</summary>
    public static string ServiceBus(string function, string binding, JsonObject body, int deliveryCount = 1, BodyEncoding encoding = BodyEncoding.Quoted, string? messageId = null)
    {
        var text = body.ToJsonString();
        JsonNode data = encoding switch
        {
            BodyEncoding.Quoted => JsonValue.Create(Quote(text)),
            BodyEncoding.Unquoted => JsonValue.Create(text),
            BodyEncoding.Object => body.DeepClone(),
            _ => JsonValue.Create(Convert.ToBase64String(Encoding.UTF8.GetBytes(text))),
        };
        messageId ??= Guid.NewGuid().ToString("N");
        var payload = new JsonObject
        {
            ["Data"] = new JsonObject { [binding] = data },
            ["Metadata"] = new JsonObject
            {
                ["MessageReceiver"] = new JsonObject(),
                ["MessageActions"] = new JsonObject(),
                ["Client"] = new JsonObject(),
                ["DeliveryCount"] = deliveryCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["LockToken"] = Quote(Guid.NewGuid().ToString()),
                ["ExpiresAtUtc"] = Enqueued.AddDays(14).UtcDateTime.ToString("O"),
                ["ExpiresAt"] = Enqueued.AddDays(14).ToString("O"),
                ["EnqueuedTimeUtc"] = Enqueued.UtcDateTime.ToString("O"),
                ["EnqueuedTime"] = Enqueued.ToString("O"),
                ["MessageId"] = Quote(messageId),
                ["SequenceNumber"] = "42",
                ["ApplicationProperties"] = new JsonObject(),
                ["UserProperties"] = new JsonObject(),
                ["sys"] = Sys(function),
            },
        };
        return payload.ToJsonString();
    }

    /// <summary>A timer trigger invocation (BAL timer.json).</summary>
    public static string Timer(string binding = "timer", bool pastDue = false) => new JsonObject
    {
        ["Data"] = new JsonObject
        {
            [binding] = new JsonObject
            {
                ["Schedule"] = new JsonObject { ["AdjustForDST"] = true },
                ["ScheduleStatus"] = null,
                ["IsPastDue"] = pastDue,
            },
        },
        ["Metadata"] = new JsonObject { ["sys"] = Sys("journey-timers") },
    }.ToJsonString();

    /// <summary>
    /// An HTTP trigger invocation in the default (non-forwarding) shape: Data.req {Url, Method, Query, Headers{name:[values]},
    /// Params, Identities, Body}; the Url's host is the public one, the path has no /api prefix (routePrefix "").
    /// </summary>
    public static string Http(string function, string method, string pathAndQuery, string? body = null, IDictionary<string, string>? headers = null,
        string contentType = "application/json", JsonObject? routeParams = null, bool queryAsString = false)
    {
        var h = new JsonObject
        {
            ["Accept"] = new JsonArray("*/*"),
            ["Host"] = new JsonArray("nudge-test.azurewebsites.net"),
            ["User-Agent"] = new JsonArray("customerio-node/4.1.0"),
            ["X-Forwarded-For"] = new JsonArray("203.0.113.7:52100"),
        };
        if (body is not null)
        {
            h["Content-Type"] = new JsonArray(contentType);
            h["Content-Length"] = new JsonArray(Encoding.UTF8.GetByteCount(body).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        foreach (var (k, v) in headers ?? new Dictionary<string, string>())
        {
            h[k] = new JsonArray(v);
        }

        var q = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
        var query = new JsonObject();
        if (q >= 0)
        {
            foreach (var pair in pathAndQuery[(q + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = pair.Split('=', 2);
                query[Uri.UnescapeDataString(kv[0])] = kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "";
            }
        }

        var req = new JsonObject
        {
            ["Url"] = "https://nudge-test.azurewebsites.net" + pathAndQuery,
            ["Method"] = method,
            // Host versions differ: a JSON object, or the same as a JSON string (GetQueryCollectionAsString).
            ["Query"] = queryAsString ? JsonValue.Create(query.ToJsonString()) : query,
            ["Headers"] = h,
            ["Params"] = routeParams ?? new JsonObject(),
            ["Identities"] = "[{\"AuthenticationType\":null,\"IsAuthenticated\":false,\"Actor\":null,\"BootstrapContext\":null,\"Claims\":[],\"Label\":null,\"Name\":null,\"NameClaimType\":\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name\",\"RoleClaimType\":\"http://schemas.microsoft.com/ws/2008/06/identity/claims/role\"}]",
        };
        if (body is not null)
        {
            req["Body"] = body;
        }

        var metadata = new JsonObject
        {
            ["Query"] = query.DeepClone(),
            ["Headers"] = h.DeepClone(),
            ["sys"] = Sys(function),
        };
        foreach (var (k, v) in routeParams ?? [])
        {
            metadata[k] = Quote(v?.GetValue<string>() ?? "");
        }

        return new JsonObject { ["Data"] = new JsonObject { ["req"] = req }, ["Metadata"] = metadata }.ToJsonString();
    }

    private static JsonObject Sys(string function) => new()
    {
        ["MethodName"] = function,
        ["UtcNow"] = Enqueued.UtcDateTime.ToString("O"),
        ["RandGuid"] = Guid.NewGuid().ToString(),
    };
}
