using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using Nudge.Host.Hosting;
using Nudge.Pipeline;

namespace Nudge.Host.Admin;

/// <summary>Admin views of journeys, a person's journey instances and messages, and the sandbox outbox (Bearer admin key).</summary>
public static class JourneysApi
{
    public static IEndpointRouteBuilder MapJourneysAdmin(this IEndpointRouteBuilder app)
    {
        var g = app.MapAdminGroup();

        g.MapGet("/journeys", (JourneyRuntime runtime) => Results.Json(runtime.Journeys.Select(j => new
        {
            id = j.Id,
            version = j.Version,
            name = j.Name,
            file = j.SourceFile,
            trigger = j.Trigger switch
            {
                EventTrigger t => "event: " + string.Join(", ", t.Names),
                DateTrigger d => $"attribute: {d.Attribute} {Durations.Format(d.Offset)}",
                InactivityTrigger i => $"inactive: {i.Event} for {Durations.Format(i.Period)}",
                _ => "?",
            },
            holdout_percent = j.HoldoutPercent,
            priority = j.Priority,
            transactional = j.Transactional,
            steps = j.Steps.Select(s => new { id = s.Id, kind = s.GetType().Name.Replace("Step", "", StringComparison.Ordinal).ToLowerInvariant() }),
        })));

        g.MapGet("/profiles/{identifier}/journeys", async (IStore store, string identifier, CancellationToken ct) =>
        {
            if (await Resolve(store, identifier, ct) is not { } key)
            {
                return NotFound(identifier);
            }

            var views = new List<object>();
            foreach (var i in (await store.GetInstancesAsync(key, ct)).OrderByDescending(i => i.StartedAt))
            {
                views.Add(Instance(i, await StepsAsync(store, i, ct)));
            }

            return Results.Json(views);
        });

        g.MapGet("/profiles/{identifier}/messages", async (IStore store, string identifier, int? limit, CancellationToken ct) =>
        {
            if (BadLimit(limit) is { } bad)
            {
                return bad;
            }

            return await Resolve(store, identifier, ct) is { } key
                ? Results.Json((await store.GetMessagesAsync(key, limit ?? 100, ct)).Select(MessageView))
                : NotFound(identifier);
        });

        g.MapGet("/messages/{id}", async (IStore store, string id, CancellationToken ct) =>
            await store.GetMessageAsync(id, ct) is { } m ? Results.Json(MessageView(m)) : Results.Json(new { error = $"no message '{id}'" }, statusCode: 404));

        g.MapGet("/outbox", async (IStore store, int? limit, CancellationToken ct) =>
        {
            if (BadLimit(limit) is { } bad)
            {
                return bad;
            }

            return Results.Json((await store.GetOutboxAsync(limit ?? 100, ct)).Select(o => new
            {
                message_id = o.MessageId,
                cio_id = Identifier.CioPrefix + o.ProfileKey,
                channel = o.Channel,
                recorded_at = o.RecordedAt,
                recipients = o.Recipients,
                content = o.Content,
            }));
        });
        return app;
    }

    private static IResult? BadLimit(int? limit) =>
        limit is < 1 or > 1000 ? Results.Json(new { error = "limit: must be between 1 and 1000" }, statusCode: 400) : null;

    private static async Task<string?> Resolve(IStore store, string identifier, CancellationToken ct) =>
        await store.ResolveAsync(Identifier.FromPath(RouteValues.Decode(identifier)), ct);

    private static IResult NotFound(string identifier) => Results.Json(new { error = $"no person '{identifier}'" }, statusCode: 404);

    /// <summary>
    /// What each step recorded, with a send step's message as it stands now: the instance keeps the status the message was
    /// drafted with (journey conditions read that), but the message moves on (sent, delivered, a fallback), so status and
    /// reason are read from the message itself. A message no longer stored (retention) keeps what the step recorded.
    /// </summary>
    private static async Task<Dictionary<string, JsonObject>> StepsAsync(IStore store, JourneyInstance i, CancellationToken ct)
    {
        var steps = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var (step, recorded) in i.StepResults)
        {
            var view = (JsonObject)recorded.DeepClone();
            if (recorded["message_id"] is JsonValue id && id.TryGetValue<string>(out var messageId) && await store.GetMessageAsync(messageId, ct) is { } m)
            {
                view["status"] = m.Status;
                view["reason"] = m.Reason;
                if (m.FallbackMessageId is { } fallback)
                {
                    view["fallback_message_id"] = fallback;
                }
            }

            steps[step] = view;
        }

        return steps;
    }

    private static object Instance(JourneyInstance i, Dictionary<string, JsonObject> steps) => new
    {
        id = i.Id,
        journey_id = i.JourneyId,
        journey_version = i.JourneyVersion,
        entry = i.Entry,
        status = i.Status.ToString().ToLowerInvariant(),
        holdout = i.Holdout,
        current_step = i.CurrentStep,
        wake_at = i.WakeAt,
        started_at = i.StartedAt,
        ended_at = i.EndedAt,
        end_reason = i.EndReason,
        converted_at = i.ConvertedAt,
        trigger = new { name = i.Trigger.Name, event_id = i.Trigger.EventId, timestamp = i.Trigger.Timestamp, data = i.Trigger.Data },
        steps,
    };

    private static object MessageView(Message m) => new
    {
        id = m.Id,
        cio_id = Identifier.CioPrefix + m.ProfileKey,
        journey_id = m.JourneyId,
        instance_id = m.InstanceId,
        step_id = m.StepId,
        channel = m.Channel.ToString().ToLowerInvariant(),
        status = m.Status,
        reason = m.Reason,
        holdout = m.Holdout,
        recipients = m.Recipients,
        platforms = m.Platforms,
        content = m.Content,
        fallback_reasons = m.FallbackReasons,
        fallback_of = m.FallbackOf,
        fallback_message_id = m.FallbackMessageId,
        deliveries = m.Deliveries.Select(d => new
        {
            recipient = m.Channel == Channel.Push ? Device.TokenTailOf(d.Recipient) : d.Recipient,
            platform = d.Platform,
            status = d.Status,
            provider = d.Provider,
            provider_id = d.ProviderId,
            reason = d.Reason,
            detail = d.Detail,
            attempts = d.Attempts,
            at = d.At,
        }),
        attempts = m.Attempts,
        next_attempt_at = m.NextAttemptAt,
        warnings = m.Warnings,
        segments = m.Segments,
        estimated_cost_usd = m.EstimatedCost,
        created_at = m.CreatedAt,
        sent_at = m.SentAt,
        converted_at = m.ConvertedAt,
        history = m.History.Select(h => new { status = h.Status, at = h.At, reason = h.Reason }),
    };
}
