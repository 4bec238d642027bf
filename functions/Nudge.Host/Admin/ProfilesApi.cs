using Nudge.Core.Ingest;
using Nudge.Core.Profiles;
using Nudge.Core.Queues;
using Nudge.Core.Storage;
using Nudge.Host.Auth;
using Nudge.Host.Hosting;
using Nudge.Host.Ingest;
using Nudge.Pipeline;

namespace Nudge.Host.Admin;

/// <summary>Admin API at /admin/v1 (Bearer admin key): people with attributes, consent, devices and recent events; erasing a person.</summary>
public static class ProfilesApi
{
    /// <summary>Most recent events returned with a profile unless ?events= asks for another number: 50 (max 500).</summary>
    private const int DefaultEvents = 50;

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapAdminGroup();

        g.MapGet("/profiles/{identifier}", GetProfile);
        g.MapDelete("/profiles/{identifier}", EraseProfile);
        g.MapGet("/profiles", (IStore store, string? anonymous_id, string? email, string? id, int? events, CancellationToken ct) =>
        {
            Identifier? ident = anonymous_id is not null ? new Identifier(IdentifierKind.AnonymousId, anonymous_id)
                : email is not null ? Identifier.Email(email)
                : id is not null ? new Identifier(IdentifierKind.Id, id) : null;
            return ident is null
                ? Task.FromResult(Results.Json(new { error = "give one of ?id=, ?email=, ?anonymous_id= or use /profiles/{identifier}" }, statusCode: 400))
                : Find(store, ident, events, ct);
        });
        g.MapGet("/stats", async (IStore store, IWorkQueue queue, CancellationToken ct) =>
        {
            var counts = await store.CountAsync(ct);
            return Results.Json(new
            {
                profiles = counts.Profiles,
                devices = counts.Devices,
                events = counts.Events,
                processed_keys = counts.ProcessedKeys,
                queued_events = await queue.CountAsync(QueueNames.Events, ct),
                poisoned_events = await queue.CountAsync(QueueNames.Events + "-poison", ct),
            });
        });
        return app;
    }

    /// <summary>The /admin/v1 route group: every endpoint in it needs <c>Authorization: Bearer {admin key}</c> and is limited by Nudge:RateLimits:Admin.</summary>
    public static RouteGroupBuilder MapAdminGroup(this IEndpointRouteBuilder app) =>
        app.MapGroup("/admin/v1").RequireCredential(ApiFamily.Admin, ApiAuth.IsAdmin,
            _ => Results.Json(new { error = "Unauthorized: send Authorization: Bearer <admin key>" }, statusCode: 401));

    /// <summary>
    /// Erases a person, as the Track API's DELETE /customers/{identifier} does (Segment has no delete): the erase is
    /// queued on the same durable path and answered 202 once queued. Like Customer.io's delete it is accepted whether
    /// or not the person exists, and repeating it is harmless; GET /profiles/{identifier} answers 404 once it is done.
    /// </summary>
    private static async Task<IResult> EraseProfile(HttpContext c, TrackApiParser parser, TimeProvider time, IngestWriter writer, string identifier)
    {
        IngestOp op;
        try
        {
            op = parser.Delete(RouteValues.Decode(identifier), time.GetUtcNow()) with { Source = "admin" };
        }
        catch (ValidationException e)
        {
            return Results.Json(new { error = string.Join("; ", e.Errors.Select(x => x.ToString())) }, statusCode: 400);
        }

        await writer.WriteAsync([op], c.RequestAborted);
        return Results.Json(new { status = "accepted" }, statusCode: StatusCodes.Status202Accepted);
    }

    private static Task<IResult> GetProfile(IStore store, string identifier, int? events, CancellationToken ct) =>
        Find(store, Identifier.FromPath(RouteValues.Decode(identifier)), events, ct);

    private static async Task<IResult> Find(IStore store, Identifier ident, int? events, CancellationToken ct)
    {
        if (events is < 0 or > 500)
        {
            return Results.Json(new { error = "events: must be between 0 and 500" }, statusCode: 400);
        }

        var key = await store.ResolveAsync(ident, ct);
        var p = key is null ? null : await store.GetProfileAsync(key, ct);
        if (p is null)
        {
            return Results.Json(new { error = $"no person with {ident.Kind} '{ident.Value}'" }, statusCode: 404);
        }

        var devices = await store.GetDevicesAsync(p.Key, ct);
        var recent = await store.GetRecentEventsAsync(p.Key, events ?? DefaultEvents, ct);
        var consent = p.Consent;
        return Results.Json(new
        {
            cio_id = Identifier.CioPrefix + p.Key,
            id = p.Id,
            email = p.Email,
            anonymous_ids = p.AnonymousIds,
            alias_ids = p.AliasIds,
            alias_emails = p.AliasEmails,
            suppressed = p.Suppressed,
            suppressed_at = p.SuppressedAt,
            created_at = p.CreatedAt,
            updated_at = p.UpdatedAt,
            attributes = p.LiveAttributes().ToDictionary(a => a.Key, a => a.Value),
            consent = new
            {
                sms_consent = consent.SmsConsent,
                sms_consent_at = consent.SmsConsentAt,
                sms_consent_ip = consent.SmsConsentIp,
                sms_phone = consent.SmsPhone,
                email_unsubscribed = consent.EmailUnsubscribed,
                push_opt_in = consent.PushOptIn,
                test_profile = consent.TestProfile,
                history = p.ConsentHistory.Select(h => new { field = h.Field, value = h.Value, at = h.At, source = h.Source, ip = h.Ip }),
            },
            devices = devices.OrderByDescending(d => d.LastUsed).Select(d => new
            {
                token = d.Token,
                token_tail = d.TokenTail,
                platform = d.Platform,
                device_id = d.DeviceId,
                last_used = d.LastUsed,
                push_enabled = d.PushEnabled,
                attributes = d.Attributes,
                created_at = d.CreatedAt,
                updated_at = d.UpdatedAt,
            }),
            recent_events = recent.Select(e => new
            {
                id = e.EventId,
                name = e.Name,
                type = e.Type,
                timestamp = e.Timestamp,
                received_at = e.ReceivedAt,
                source = e.Source,
                data = e.Data,
            }),
        });
    }
}
