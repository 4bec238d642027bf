using System.Text.Json.Nodes;
using Nudge.Core.Profiles;

namespace Nudge.Core.Ingest;

/// <summary>
/// Validates Segment HTTP tracking API calls (identify, track, page, screen, group, alias, batch) and turns each
/// into <see cref="IngestOp"/>s. Throws <see cref="ValidationException"/> naming each bad field; a batch is
/// accepted or rejected whole.
/// </summary>
public sealed class SegmentParser(IngestValidator v)
{
    private const string Source = "segment";

    /// <summary>Customer.io's semantic event that registers a push device from context.device.</summary>
    public const string DeviceCreatedOrUpdated = "Device Created or Updated";

    /// <summary>Customer.io's semantic event that removes a push device.</summary>
    public const string DeviceDeleted = "Device Deleted";

    public static readonly IReadOnlySet<string> CallTypes =
        new HashSet<string>(StringComparer.Ordinal) { "identify", "track", "page", "screen", "group", "alias" };

    /// <summary>One call posted to /v1/{type}. The body's own "type", if any, must agree.</summary>
    public IngestOp Call(string type, JsonObject body, int rawBytes, DateTimeOffset now)
    {
        if (rawBytes > v.Limits.MaxSegmentCallBytes)
        {
            throw new ValidationException("", $"call is {rawBytes} bytes, the limit is {v.Limits.MaxSegmentCallBytes}");
        }

        var f = new JsonFields([]);
        var op = Parse(type, body, "", f, null, now);
        IngestValidator.ThrowIfAny(f);
        return op!;
    }

    /// <summary>POST /v1/batch, in either the <c>{"batch":[...],"writeKey","sentAt"}</c> or the <c>{"batch":[...]}</c> shape.</summary>
    public IReadOnlyList<IngestOp> Batch(JsonObject body, int rawBytes, DateTimeOffset now)
    {
        if (rawBytes > v.Limits.MaxSegmentBatchBytes)
        {
            throw new ValidationException("", $"batch is {rawBytes} bytes, the limit is {v.Limits.MaxSegmentBatchBytes}");
        }

        var f = new JsonFields([]);
        if (body["batch"] is not JsonArray items)
        {
            throw new ValidationException("batch", body["batch"] is null ? "is required" : $"must be an array, got {JsonFields.Kind(body["batch"])}");
        }

        if (items.Count == 0)
        {
            throw new ValidationException("batch", "must hold at least one call");
        }

        var sentAt = f.IsoTime(body, "sentAt", "sentAt");
        var ops = new List<IngestOp>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var path = $"batch[{i}]";
            if (items[i] is not JsonObject call)
            {
                f.Add(path, $"must be an object, got {JsonFields.Kind(items[i])}");
                continue;
            }

            var bytes = JsonFields.Bytes(call);
            if (bytes > v.Limits.MaxSegmentCallBytes)
            {
                f.Add(path, $"call is {bytes} bytes, the limit is {v.Limits.MaxSegmentCallBytes}");
                continue;
            }

            var type = f.String(call, "type", path + ".type", required: true);
            if (type is null)
            {
                continue;
            }

            if (!CallTypes.Contains(type))
            {
                f.Add(path + ".type", $"'{JsonFields.Truncate(type)}' is not one of identify, track, page, screen, group, alias");
                continue;
            }

            if (Parse(type, call, path + ".", f, sentAt, now) is { } op)
            {
                ops.Add(op);
            }
        }

        IngestValidator.ThrowIfAny(f);
        return ops;
    }

    private IngestOp? Parse(string type, JsonObject c, string p, JsonFields f, DateTimeOffset? batchSentAt, DateTimeOffset now)
    {
        var before = f.Errors.Count;
        if (c["type"] is not null && f.String(c, "type", p + "type", required: false) is { } declared && declared != type)
        {
            f.Add(p + "type", $"is '{JsonFields.Truncate(declared)}' but the call was posted to /v1/{type}");
        }

        var userId = f.IdString(c, "userId", p + "userId", v.Limits.MaxIdentifierBytes, required: false);
        var anonymousId = f.IdString(c, "anonymousId", p + "anonymousId", v.Limits.MaxIdentifierBytes, required: false);
        if (userId is null && anonymousId is null && c["userId"] is null && c["anonymousId"] is null && type != "alias")
        {
            f.Add(p + "userId", "userId or anonymousId is required");
        }

        var messageId = f.IdString(c, "messageId", p + "messageId", v.Limits.MaxIdentifierBytes, required: false);
        var timestamp = Timestamp(c, p, f, batchSentAt, now);
        var context = f.Object(c, "context", p + "context");
        var ip = context is null ? null : f.String(context, "ip", p + "context.ip", required: false);
        var touch = ContextDevice(context, p + "context.device", f, timestamp);

        Identifier? target = userId is not null ? new Identifier(IdentifierKind.Id, userId)
            : anonymousId is not null ? new Identifier(IdentifierKind.AnonymousId, anonymousId) : null;
        var op = new IngestOp
        {
            Kind = OpKind.Track,
            MessageId = messageId ?? IngestValidator.NewMessageId(),
            Source = Source,
            Timestamp = timestamp,
            ReceivedAt = now,
            Target = target,
            AnonymousId = userId is not null ? anonymousId : null,
            Ip = ip,
            TouchDevice = touch,
        };

        switch (type)
        {
            case "identify":
                op = Identify(op, c, p, f, context);
                break;
            case "track":
                op = Track(op, c, p, f, touch);
                break;
            case "page" or "screen":
                {
                    var name = v.EventName(f.String(c, "name", p + "name", required: false), p + "name", f) ?? type;
                    var props = v.EventData(f.Object(c, "properties", p + "properties"), p + "properties", f);
                    op = op with { Event = new EventData(name, type, props) };
                    break;
                }

            case "group":
                {
                    var groupId = f.IdString(c, "groupId", p + "groupId", v.Limits.MaxIdentifierBytes, required: true);
                    var traits = v.EventData(f.Object(c, "traits", p + "traits"), p + "traits", f);
                    traits["groupId"] = groupId;
                    op = op with { Event = new EventData("group", "group", traits) };
                    break;
                }

            case "alias":
                {
                    var previous = f.IdString(c, "previousId", p + "previousId", v.Limits.MaxIdentifierBytes, required: true);
                    if (userId is null && c["userId"] is null)
                    {
                        f.Add(p + "userId", "is required");
                    }

                    if (previous is not null && previous == userId)
                    {
                        f.Add(p + "previousId", "is the same as userId");
                    }

                    op = op with
                    {
                        Kind = OpKind.Merge,
                        AnonymousId = null,
                        Secondary = previous is null ? null : new Identifier(IdentifierKind.IdOrAnonymousId, previous),
                    };
                    break;
                }
        }

        return f.Errors.Count > before ? null : op;
    }

    private IngestOp Identify(IngestOp op, JsonObject c, string p, JsonFields f, JsonObject? context)
    {
        // Segment puts traits at the top level of identify; older libraries put them in context.traits.
        var traits = f.Object(c, "traits", p + "traits")
            ?? (context is null ? null : f.Object(context, "traits", p + "context.traits")) ?? [];
        var rawEmail = f.String(traits, "email", p + "traits.email", required: false);
        var email = string.IsNullOrEmpty(rawEmail) ? null : v.Email(rawEmail, p + "traits.email", f);

        var attrs = v.Attributes(traits.Where(t => t.Key is not ("email" or "id")), p + "traits", f);
        if (op.Ip is not null && attrs.ContainsKey(Consent.SmsConsentAttr) && !attrs.ContainsKey(Consent.SmsConsentIpAttr))
        {
            attrs[Consent.SmsConsentIpAttr] = op.Ip;
        }

        return op with { Kind = OpKind.Identify, Attributes = attrs, SetEmail = email };
    }

    private IngestOp Track(IngestOp op, JsonObject c, string p, JsonFields f, DeviceData? device)
    {
        var name = v.EventName(f.String(c, "event", p + "event", required: true), p + "event", f);
        var props = v.EventData(f.Object(c, "properties", p + "properties"), p + "properties", f);
        if (name is DeviceCreatedOrUpdated or DeviceDeleted)
        {
            if (device is null)
            {
                f.Add(p + "context.device.token", $"is required for '{name}'");
                return op;
            }

            if (name == DeviceCreatedOrUpdated && device.Platform is null)
            {
                if (c["context"]?["device"]?["type"] is null)
                {
                    IngestValidator.Platform(null, p + "context.device.type", f, required: true);
                }

                return op;
            }

            return op with
            {
                Kind = name == DeviceCreatedOrUpdated ? OpKind.UpsertDevice : OpKind.DeleteDevice,
                Device = device with { Attributes = Merge(device.Attributes, props) },
                TouchDevice = null,
            };
        }

        return name is null ? op : op with { Event = new EventData(name, "event", props) };
    }

    private static JsonObject Merge(JsonObject a, JsonObject b)
    {
        var r = (JsonObject)a.DeepClone();
        foreach (var (k, val) in b)
        {
            if (val is not JsonObject and not JsonArray)
            {
                r[k] = val?.DeepClone();
            }
        }

        return r;
    }

    private DeviceData? ContextDevice(JsonObject? context, string path, JsonFields f, DateTimeOffset ts)
    {
        if (context is null || f.Object(context, "device", path) is not { } device)
        {
            return null;
        }

        var token = device["token"] is null ? null : f.IdString(device, "token", path + ".token", v.Limits.MaxIdentifierBytes, required: false);
        if (token is null)
        {
            return null;
        }

        var rawType = device["type"] is null ? null : f.String(device, "type", path + ".type", required: false);
        var platform = IngestValidator.Platform(rawType, path + ".type", f, required: false);
        var physical = device["id"] is null ? null : f.IdString(device, "id", path + ".id", v.Limits.MaxIdentifierBytes, required: false);
        var attrs = new JsonObject();
        foreach (var key in new[] { "manufacturer", "model", "name" })
        {
            if (device[key] is JsonValue val && val.TryGetValue<string>(out var s))
            {
                attrs["device_" + key] = s;
            }
        }

        if (context["os"] is JsonObject os && os["version"] is JsonValue osv && osv.TryGetValue<string>(out var osVersion))
        {
            attrs["device_os"] = osVersion;
        }

        if (context["app"] is JsonObject app && app["version"] is JsonValue av && av.TryGetValue<string>(out var appVersion))
        {
            attrs["app_version"] = appVersion;
        }

        if (context["locale"] is JsonValue loc && loc.TryGetValue<string>(out var locale))
        {
            attrs["device_locale"] = locale;
        }

        return new DeviceData(token, platform, physical, ts, attrs);
    }

    private static DateTimeOffset Timestamp(JsonObject c, string p, JsonFields f, DateTimeOffset? batchSentAt, DateTimeOffset now)
    {
        // All three are read, so a wrongly typed one is named even when timestamp makes the others unnecessary.
        var ts = f.IsoTime(c, "timestamp", p + "timestamp");
        var original = f.IsoTime(c, "originalTimestamp", p + "originalTimestamp");
        var sentAt = f.IsoTime(c, "sentAt", p + "sentAt") ?? batchSentAt;
        if (ts is { } t)
        {
            return t;
        }

        // Segment corrects a device clock with sentAt: timestamp = originalTimestamp + (receivedAt - sentAt).
        if (original is not { } o)
        {
            return now;
        }

        if (sentAt is not { } s)
        {
            return o;
        }

        var corrected = o.UtcTicks + (now - s).Ticks;
        if (corrected < DateTimeOffset.MinValue.UtcTicks || corrected > DateTimeOffset.MaxValue.UtcTicks)
        {
            f.Add(p + "sentAt", "corrects originalTimestamp to a time outside years 1 to 9999");
            return now;
        }

        return new DateTimeOffset(corrected, TimeSpan.Zero);
    }
}
