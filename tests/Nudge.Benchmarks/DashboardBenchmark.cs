using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Host.Tests;
using Nudge.Sqlite.Store;

namespace Nudge.Benchmarks;

/// <summary>
/// The dashboard on a store holding <c>messages</c> messages of cart recovery over the last 7 days (with their delivery
/// events, journey instances and people): how long each page's requests take, fetched together as the page does, from
/// Nudge.Host in a child process.
/// </summary>
internal static class DashboardBenchmark
{
    private static readonly string[] Steps = ["wait_30m", "push", "wait_4h", "email", "wait_20h", "high_value", "sms"];

    public sealed record Page(string Name, string[] Paths, double FirstMs, double MedianMs, double MaxMs);

    public sealed record Result(int Messages, int Events, int People, double SeedSeconds, IReadOnlyList<Page> Pages);

    public static async Task<Result> RunAsync(int messages, string dir)
    {
        var watch = Stopwatch.StartNew();
        var people = (messages + 2) / 3;
        await IngestBenchmark.SeedPeopleAsync(Path.Combine(dir, "nudge.db"), people);
        var events = await SeedMessagesAsync(Path.Combine(dir, "nudge.db"), people, messages);
        var seedSeconds = watch.Elapsed.TotalSeconds;

        await using var nudge = await IngestBenchmark.StartNudgeAsync(dir);
        using var admin = new HttpClient { BaseAddress = nudge.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", IngestBenchmark.AdminKey);

        var now = DateTimeOffset.UtcNow;
        var day = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero).AddDays(1);
        string Daily(int days) => $"/admin/v1/reports/delivery?from={Iso(day.AddDays(-days))}&to={Iso(day)}&by=day";
        var nextMessages = JsonNode.Parse(await admin.GetStringAsync("/admin/v1/messages?limit=50"))!["next"]?.GetValue<string>();
        var nextEvents = JsonNode.Parse(await admin.GetStringAsync("/admin/v1/reports/message-log?limit=50"))!["next"]?.GetValue<string>();
        var pages = new (string Name, string Paths)[]
        {
            ("Journeys (journeys, 7-day report with funnel)", "/admin/v1/journeys /admin/v1/reports/delivery"),
            ("Delivery health, 7 days (7-day report, per-day report, alerts, coverage)", "/admin/v1/reports/delivery /admin/v1/reports/token-coverage /admin/v1/reports/alerts " + Daily(7)),
            ("Delivery health, 30 days", "/admin/v1/reports/delivery /admin/v1/reports/token-coverage /admin/v1/reports/alerts " + Daily(30)),
            ("Message log, first page of 50 messages", "/admin/v1/journeys /admin/v1/messages?limit=50"),
            ("Message log, next page", "/admin/v1/journeys /admin/v1/messages?limit=50&after=" + Uri.EscapeDataString(nextMessages ?? "")),
            ("Message log, filtered (push, bounced, android)", "/admin/v1/journeys /admin/v1/messages?limit=50&channel=push&status=bounced&platform=android"),
            ("Message log, filtered on a rare status (failed: none)", "/admin/v1/journeys /admin/v1/messages?limit=50&status=failed"),
            ("Status events view, first page", "/admin/v1/journeys /admin/v1/reports/message-log?limit=50"),
            ("Status events view, next page", "/admin/v1/journeys /admin/v1/reports/message-log?limit=50&after=" + Uri.EscapeDataString(nextEvents ?? "")),
            ("Person (profile, journeys, messages)", "/admin/v1/profiles/bench-77@example.com /admin/v1/profiles/bench-77/journeys /admin/v1/profiles/bench-77/messages"),
        };

        var results = new List<Page>();
        foreach (var (name, paths) in pages)
        {
            var list = paths.Split(' ');
            var times = new List<double>();
            for (var run = 0; run < 6; run++)
            {
                var t = Stopwatch.StartNew();
                await Task.WhenAll(list.Select(async p =>
                {
                    using var r = await admin.GetAsync(p);
                    if (!r.IsSuccessStatusCode)
                    {
                        throw new InvalidOperationException($"{p}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
                    }

                    await r.Content.ReadAsByteArrayAsync();
                }));
                times.Add(t.Elapsed.TotalMilliseconds);
            }

            var warm = times.Skip(1).Order().ToList();
            results.Add(new Page(name, list, times[0], warm[warm.Count / 2], warm[^1]));
            Console.WriteLine($"  {name}: first {times[0]:F0} ms, median {warm[warm.Count / 2]:F0} ms");
        }

        return new Result(messages, events, people, seedSeconds, results);
    }

    private static string Iso(DateTimeOffset t) => Uri.EscapeDataString(t.ToString("O", CultureInfo.InvariantCulture));

    /// <summary>
    /// Per person one cart-recovery instance and up to three messages (push, email, SMS) created over the last 7 days,
    /// with the statuses the pipeline would give them and their delivery events.
    /// </summary>
    private static async Task<int> SeedMessagesAsync(string dbPath, int people, int messages)
    {
        var rng = new Random(7);
        var now = DateTimeOffset.UtcNow;
        var events = 0;
        var made = 0;
        await using var store = await SqliteStore.OpenAsync(dbPath, durable: false);
        for (var from = 0; from < people && made < messages; from += 2000)
        {
            await using var s = await store.OpenSessionAsync();
            for (var i = from; i < Math.Min(people, from + 2000) && made < messages; i++)
            {
                var key = ProfileRules.NewKey(new Identifier(IdentifierKind.Id, "bench-" + i.ToString(CultureInfo.InvariantCulture)));
                var started = now.AddMinutes(-rng.Next(26 * 60, 7 * 24 * 60));  // its last message (+24.5 h) is in the past
                var instanceId = $"cart_recovery:{key}:1";
                var bought = rng.Next(100) < 20;
                var reached = bought ? 3 : 7;
                var instance = new JourneyInstance
                {
                    Id = instanceId,
                    JourneyId = "cart_recovery",
                    JourneyVersion = 1,
                    ProfileKey = key,
                    Entry = 1,
                    Status = bought ? InstanceStatus.Converted : InstanceStatus.Completed,
                    CurrentStep = bought ? "wait_4h" : null,
                    StartedAt = started,
                    EndedAt = started.AddHours(bought ? 2 : 25),
                    EndReason = bought ? "goal:purchase" : "end",
                    ConvertedAt = bought ? started.AddHours(2) : null,
                    Trigger = new TriggerSnapshot("add_to_cart", "ev-" + i, started, new JsonObject { ["cart_id"] = "cart-" + i, ["cart_value"] = 150 }),
                    StepVisits = Steps.Take(reached).ToDictionary(x => x, _ => 1, StringComparer.Ordinal),
                };
                await s.PutInstanceAsync(instance);

                var android = i % 2 == 0;
                foreach (var (step, channel, offset) in new[] { ("push", Channel.Push, 0.5), ("email", Channel.Email, 4.5), ("sms", Channel.Sms, 24.5) }.Take(bought ? 1 : 3))
                {
                    if (made++ >= messages)
                    {
                        break;
                    }

                    var created = started.AddHours(offset);
                    var recipient = channel switch { Channel.Push => $"bench-{i}-token-{i:x8}", Channel.Email => $"bench-{i}@example.com", _ => "+14155552671" };
                    var platform = channel == Channel.Push ? (android ? Platforms.Android : Platforms.Ios) : null;
                    var m = new Message
                    {
                        Id = $"{instanceId}:{step}:1",
                        ProfileKey = key,
                        InstanceId = instanceId,
                        JourneyId = "cart_recovery",
                        StepId = step,
                        Channel = channel,
                        Status = MessageStatus.Drafted,
                        CreatedAt = created,
                        Recipients = [recipient],
                        Platforms = platform is null ? [] : [platform],
                    };
                    m.Deliveries.Add(new MessageDelivery { Recipient = recipient, Platform = platform, Status = DeliveryStatus.Sent, Provider = "bench", ProviderId = "p-" + made, At = created });
                    var statuses = new List<(string Status, string? Reason)> { (MessageStatus.Drafted, null) };
                    var roll = rng.Next(100);
                    if (roll < 5)
                    {
                        statuses.Add((MessageStatus.Bounced, MessageReason.InvalidToken));
                    }
                    else
                    {
                        statuses.Add((MessageStatus.Sent, null));
                        if (roll < 90)
                        {
                            statuses.Add((MessageStatus.Delivered, null));
                        }

                        if (roll < 30)
                        {
                            statuses.Add((MessageStatus.Opened, null));
                        }

                        if (bought)
                        {
                            statuses.Add((MessageStatus.Converted, null));
                        }
                    }

                    var at = created;
                    var changes = new List<DeliveryEvent>();
                    foreach (var (status, reason) in statuses)
                    {
                        if (StatusTransitions.Apply(m, status, at, reason, null) is { } e)
                        {
                            changes.Add(e with { RecordedAt = at });
                        }

                        at = at.AddSeconds(rng.Next(1, 600));
                    }

                    m.SentAt = created;
                    await s.TryAddMessageAsync(m);
                    foreach (var e in changes)
                    {
                        await s.AppendDeliveryEventAsync(e);
                        events++;
                    }
                }
            }

            await s.CommitAsync();
        }

        return events;
    }
}
