using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Host.Admin;

/// <summary>
/// The message log at /admin/v1/messages (Bearer admin key): one row per message with its current status, newest first,
/// filtered and paged by <see cref="IStore.ListMessagesAsync"/>. A message's whole history is /admin/v1/messages/{id}.
/// </summary>
public static class MessagesApi
{
    /// <summary>Rows per page unless ?limit= asks for another number (1 to 500).</summary>
    private const int DefaultLimit = 50;

    private static readonly string[] Channels = ["push", "sms", "email"];

    private static readonly string[] Statuses =
    [
        MessageStatus.Drafted, MessageStatus.Attempted, MessageStatus.Sent, MessageStatus.Delivered, MessageStatus.Opened, MessageStatus.Clicked,
        MessageStatus.Converted, MessageStatus.Bounced, MessageStatus.Dropped, MessageStatus.Failed, MessageStatus.Undeliverable,
    ];

    public static IEndpointRouteBuilder MapMessagesAdmin(this IEndpointRouteBuilder app)
    {
        app.MapAdminGroup().MapGet("/messages", ListAsync);
        return app;
    }

    /// <summary>
    /// Messages created in [from, to) (default: the 7 days before now), newest first. <c>next</c> is an opaque cursor for
    /// <c>?after=</c> (the creation time and id of the last row), null on the last page. An empty filter is no filter.
    /// </summary>
    private static async Task<IResult> ListAsync(IStore store, TimeProvider time, string? journey, string? step, string? channel, string? platform,
        string? status, string? reason, string? from, string? to, string? limit, string? after, CancellationToken ct)
    {
        // Parsed here rather than bound as int?, so that "limit=ten" gets the same answer as "limit=0" (the binder's 400 has no body).
        var size = DefaultLimit;
        if (Given(limit) is { } l && (!int.TryParse(l, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out size) || size is < 1 or > 500))
        {
            return AdminQuery.Bad("limit: must be a whole number between 1 and 500");
        }

        if (Given(channel) is { } c && !Channels.Contains(c))
        {
            return AdminQuery.Bad("channel: must be push, sms or email");
        }

        if (Given(platform) is { } p && Platforms.Normalize(p) != p)
        {
            return AdminQuery.Bad($"platform: must be {Platforms.Ios} or {Platforms.Android}");
        }

        if (Given(status) is { } s && !Statuses.Contains(s))
        {
            return AdminQuery.Bad("status: must be one of " + string.Join(", ", Statuses));
        }

        var (f, t, error) = AdminQuery.Range(time, Given(from), Given(to));
        if (error is not null)
        {
            return AdminQuery.Bad(error);
        }

        MessageListCursor? cursor = null;
        if (Given(after) is { } a)
        {
            if (AdminQuery.Cursor(a) is not var (at, id))
            {
                return AdminQuery.Bad("after: not a cursor from this endpoint's next");
            }

            cursor = new MessageListCursor(at, id);
        }

        var rows = await store.ListMessagesAsync(new MessageListQuery(f!.Value, t!.Value, size, cursor)
        {
            JourneyId = Given(journey),
            StepId = Given(step),
            Channel = Given(channel),
            Platform = Given(platform),
            Status = Given(status),
            Reason = Given(reason),
        }, ct);
        return Results.Json(new
        {
            from = f,
            to = t,
            messages = rows.Select(m => new
            {
                id = m.Id,
                cio_id = Identifier.CioPrefix + m.ProfileKey,
                journey_id = m.JourneyId,
                step_id = m.StepId,
                channel = m.Channel,
                platforms = m.Platforms,
                status = m.Status,
                reason = m.Reason,
                created_at = m.CreatedAt,
                updated_at = m.UpdatedAt,

                // Push tokens are shown by their tail, as everywhere else in the admin API.
                recipients = m.Channel == "push" ? m.Recipients.Select(Device.TokenTailOf) : m.Recipients.AsEnumerable(),
            }),
            next = rows.Count == size ? AdminQuery.Cursor(rows[^1].CreatedAt, rows[^1].Id) : null,
        });
    }

    private static string? Given(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
