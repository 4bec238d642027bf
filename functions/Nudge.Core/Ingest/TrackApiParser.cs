using System.Text.Json.Nodes;
using Nudge.Core.Profiles;

namespace Nudge.Core.Ingest;

/// <summary>
/// Validates Customer.io Track API v1 calls and turns each into one <see cref="IngestOp"/>.
/// Every method throws <see cref="ValidationException"/> naming each bad field, and has no side effects.
/// </summary>
public sealed class TrackApiParser(IngestValidator v)
{
    private const string Source = "track";

    private static readonly HashSet<string> IdentifyReserved =
        new(StringComparer.Ordinal) { "id", "email", "anonymous_id", "_timestamp", "_update" };

    private static readonly HashSet<string> EventTypes = new(StringComparer.Ordinal) { "event", "page", "screen" };

    /// <summary>PUT /customers/{identifier}: the body is the attributes object.</summary>
    public IngestOp Identify(string pathId, JsonObject body, DateTimeOffset now)
    {
        var f = new JsonFields([]);
        var target = PathIdentifier(pathId, f);
        var id = f.IdString(body, "id", "id", v.Limits.MaxIdentifierBytes, required: false);
        if (id is not null && target?.Kind == IdentifierKind.Id && id != target.Value)
        {
            f.Add("id", $"'{JsonFields.Truncate(id)}' differs from the identifier in the path; address the person by email or cio_ id to change their id");
        }

        var rawEmail = f.String(body, "email", "email", required: false);
        var email = rawEmail is null ? null : v.Email(rawEmail, "email", f);

        var anon = f.IdString(body, "anonymous_id", "anonymous_id", v.Limits.MaxIdentifierBytes, required: false);
        var ts = f.UnixSeconds(body, "_timestamp", "_timestamp");
        var updateOnly = f.Bool(body, "_update", "_update") ?? false;
        f.UnixSeconds(body, "created_at", "created_at");
        var attrs = v.Attributes(body.Where(p => !IdentifyReserved.Contains(p.Key)), "attributes", f);
        IngestValidator.ThrowIfAny(f);
        return new IngestOp
        {
            Kind = OpKind.Identify,
            MessageId = IngestValidator.NewMessageId(),
            Source = Source,
            Timestamp = ts ?? now,
            ReceivedAt = now,
            Target = target!,
            AnonymousId = anon,
            SetId = target!.Kind == IdentifierKind.Id ? null : id,
            SetEmail = email,
            Attributes = attrs,
            UpdateOnly = updateOnly,
        };
    }

    /// <summary>DELETE /customers/{identifier}.</summary>
    public IngestOp Delete(string pathId, DateTimeOffset now) => Simple(OpKind.DeleteProfile, pathId, now);

    /// <summary>POST /customers/{identifier}/suppress.</summary>
    public IngestOp Suppress(string pathId, DateTimeOffset now) => Simple(OpKind.Suppress, pathId, now);

    /// <summary>POST /customers/{identifier}/unsuppress.</summary>
    public IngestOp Unsuppress(string pathId, DateTimeOffset now) => Simple(OpKind.Unsuppress, pathId, now);

    /// <summary>POST /customers/{identifier}/events.</summary>
    public IngestOp CustomerEvent(string pathId, JsonObject body, DateTimeOffset now)
    {
        var f = new JsonFields([]);
        var target = PathIdentifier(pathId, f);
        var op = Event(body, f, now);
        IngestValidator.ThrowIfAny(f);
        return op with { Target = target };
    }

    /// <summary>POST /events: an anonymous event, or with no anonymous_id an event that belongs to nobody.</summary>
    public IngestOp AnonymousEvent(JsonObject body, DateTimeOffset now)
    {
        var f = new JsonFields([]);
        var anon = f.IdString(body, "anonymous_id", "anonymous_id", v.Limits.MaxIdentifierBytes, required: false);
        var op = Event(body, f, now);
        IngestValidator.ThrowIfAny(f);
        return op with { Target = anon is null ? null : new Identifier(IdentifierKind.AnonymousId, anon) };
    }

    /// <summary>PUT /customers/{identifier}/devices with <c>{"device":{id, platform, last_used, attributes}}</c>.</summary>
    public IngestOp UpsertDevice(string pathId, JsonObject body, DateTimeOffset now)
    {
        var f = new JsonFields([]);
        var target = PathIdentifier(pathId, f);
        var device = f.Object(body, "device", "device");
        if (body["device"] is null)
        {
            f.Add("device", "is required");
        }

        DeviceData? data = null;
        if (device is not null)
        {
            var token = f.IdString(device, "id", "device.id", v.Limits.MaxIdentifierBytes, required: true);
            var platform = IngestValidator.Platform(f.String(device, "platform", "device.platform", required: false), "device.platform", f, required: true);
            var lastUsed = f.UnixSeconds(device, "last_used", "device.last_used");
            var attrs = v.DeviceAttributes(f.Object(device, "attributes", "device.attributes"), "device.attributes", f);
            var physical = attrs["device_id"] is JsonValue pv && pv.TryGetValue<string>(out var s) && s.Length > 0 ? s : null;
            data = token is null ? null : new DeviceData(token, platform, physical, lastUsed, attrs);
        }

        IngestValidator.ThrowIfAny(f);
        return new IngestOp
        {
            Kind = OpKind.UpsertDevice,
            MessageId = IngestValidator.NewMessageId(),
            Source = Source,
            Timestamp = data!.LastUsed ?? now,
            ReceivedAt = now,
            Target = target,
            Device = data,
        };
    }

    /// <summary>DELETE /customers/{identifier}/devices/{token}.</summary>
    public IngestOp DeleteDevice(string pathId, string token, DateTimeOffset now)
    {
        var f = new JsonFields([]);
        var target = PathIdentifier(pathId, f);
        f.CheckId(token, "device_id", v.Limits.MaxIdentifierBytes);
        IngestValidator.ThrowIfAny(f);
        return new IngestOp
        {
            Kind = OpKind.DeleteDevice,
            MessageId = IngestValidator.NewMessageId(),
            Source = Source,
            Timestamp = now,
            ReceivedAt = now,
            Target = target,
            Device = new DeviceData(token, null, null, null, []),
        };
    }

    /// <summary>POST /merge_customers with exactly one identifier on each side.</summary>
    public IngestOp Merge(JsonObject body, DateTimeOffset now)
    {
        var f = new JsonFields([]);
        var primary = MergeSide(body, "primary", f);
        var secondary = MergeSide(body, "secondary", f);
        if (primary is not null && secondary is not null && primary == secondary)
        {
            f.Add("secondary", "is the same person as primary");
        }

        IngestValidator.ThrowIfAny(f);
        return new IngestOp
        {
            Kind = OpKind.Merge,
            MessageId = IngestValidator.NewMessageId(),
            Source = Source,
            Timestamp = now,
            ReceivedAt = now,
            Target = primary,
            Secondary = secondary,
        };
    }

    private Identifier? MergeSide(JsonObject body, string side, JsonFields f)
    {
        var o = f.Object(body, side, side);
        if (body[side] is null)
        {
            f.Add(side, "is required");
        }

        if (o is null)
        {
            return null;
        }

        var keys = o.Select(p => p.Key).ToList();
        if (keys.Count != 1 || keys[0] is not ("id" or "email" or "cio_id"))
        {
            f.Add(side, keys.Count == 1
                ? $"'{JsonFields.Truncate(keys[0])}' is not an identifier; use id, email or cio_id"
                : $"must hold exactly one of id, email or cio_id, got {keys.Count} keys");
            return null;
        }

        var path = $"{side}.{keys[0]}";
        var value = f.IdString(o, keys[0], path, v.Limits.MaxIdentifierBytes, required: true);
        if (value is null)
        {
            return null;
        }

        return keys[0] switch
        {
            "email" => v.Email(value, path, f) is { } e ? new Identifier(IdentifierKind.Email, e) : null,
            "cio_id" => CioId(value, path, f),
            _ => new Identifier(IdentifierKind.Id, value),
        };
    }

    private static Identifier? CioId(string value, string path, JsonFields f)
    {
        var key = value.StartsWith(Identifier.CioPrefix, StringComparison.Ordinal) ? value[Identifier.CioPrefix.Length..] : value;
        if (key.Length == 0)
        {
            f.Add(path, "must not be empty");
            return null;
        }

        return new Identifier(IdentifierKind.CioId, key);
    }

    private IngestOp Event(JsonObject body, JsonFields f, DateTimeOffset now)
    {
        var name = v.EventName(f.String(body, "name", "name", required: true), "name", f);
        var id = f.IdString(body, "id", "id", v.Limits.MaxIdentifierBytes, required: false);
        var type = f.String(body, "type", "type", required: false) ?? "event";
        if (!EventTypes.Contains(type))
        {
            f.Add("type", $"'{JsonFields.Truncate(type)}' is not one of event, page, screen");
        }

        var ts = f.UnixSeconds(body, "timestamp", "timestamp");
        var data = v.EventData(f.Object(body, "data", "data"), "data", f);
        return new IngestOp
        {
            Kind = OpKind.Track,
            MessageId = id ?? IngestValidator.NewMessageId(),
            Source = Source,
            Timestamp = ts ?? now,
            ReceivedAt = now,
            Event = name is null ? null : new EventData(name, type, data),
        };
    }

    private IngestOp Simple(OpKind kind, string pathId, DateTimeOffset now)
    {
        var f = new JsonFields([]);
        var target = PathIdentifier(pathId, f);
        IngestValidator.ThrowIfAny(f);
        return new IngestOp
        {
            Kind = kind,
            MessageId = IngestValidator.NewMessageId(),
            Source = Source,
            Timestamp = now,
            ReceivedAt = now,
            Target = target,
        };
    }

    private Identifier? PathIdentifier(string pathId, JsonFields f)
    {
        if (!f.CheckId(pathId, "identifier", v.Limits.MaxIdentifierBytes))
        {
            return null;
        }

        var id = Identifier.FromPath(pathId);
        if (id.Kind == IdentifierKind.Email)
        {
            return v.Email(pathId, "identifier", f) is { } email ? Identifier.Email(email) : null;
        }

        return id;
    }
}
