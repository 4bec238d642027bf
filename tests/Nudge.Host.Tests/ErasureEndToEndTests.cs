using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Host.Hosting;
using Nudge.Host.Workers;

namespace Nudge.Host.Tests;

/// <summary>
/// Erasing a person through the HTTP API (Track API and admin deletes) after a real journey ran for them, and the
/// retention purge, on the embedded server with a virtual clock.
/// </summary>
public sealed class ErasureEndToEndTests : IAsyncLifetime
{
    private JourneyServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await JourneyServer.StartAsync();

        // The tests run purges themselves, at the moments they choose.
        await _server.App.Services.GetServices<IHostedService>().OfType<RetentionWorker>().Single().StopAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
    }

    private RetentionPurger Purger => _server.App.Services.GetRequiredService<RetentionPurger>();

    /// <summary>A shopper who gets the cart journey's push, email and SMS (identify, device, add to cart, 25 h).</summary>
    private async Task<(string Id, string Email, string Phone, string Token)> ShopperAsync(string prefix, string phone)
    {
        var id = _server.IdFor("cart_recovery", heldOut: false, prefix);
        var (email, token) = ($"{id}@example.com", $"{id}-iphone-token");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}",
            $$$"""{"email":"{{{email}}}","first_name":"Dana","phone":"{{{phone}}}","sms_consent":true,"anonymous_id":"anon-{{{id}}}"}""");
        await _server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"{{{token}}}","platform":"ios"}}""");
        await _server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events",
            $$$"""{"name":"add_to_cart","data":{"cart_id":"cart-{{{id}}}","cart_value":150,"item_name":"serum"}}""");
        return (id, email, phone, token);
    }

    /// <summary>Every column of every table of the store's SQLite file, as text.</summary>
    private async Task<string> RawStoreAsync()
    {
        var text = new System.Text.StringBuilder();
        var files = Directory.GetFiles(_server.DataDir, "*.db");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            await using var c = new SqliteConnection($"Data Source={file};Mode=ReadOnly;Pooling=False");
            await c.OpenAsync();
            var tables = new List<string>();
            await using (var cmd = new SqliteCommand("SELECT name FROM sqlite_master WHERE type = 'table'", c))
            await using (var r = await cmd.ExecuteReaderAsync())
            {
                while (await r.ReadAsync())
                {
                    tables.Add(r.GetString(0));
                }
            }

            foreach (var table in tables)
            {
                await using var cmd = new SqliteCommand($"SELECT * FROM \"{table}\"", c);
                await using var r = await cmd.ExecuteReaderAsync();
                while (await r.ReadAsync())
                {
                    for (var i = 0; i < r.FieldCount; i++)
                    {
                        text.Append(r.IsDBNull(i) ? "" : r.GetValue(i) is byte[] b ? System.Text.Encoding.UTF8.GetString(b) : Convert.ToString(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)).Append('\u001f');
                    }
                }
            }
        }

        return text.ToString();
    }

    private async Task<JsonObject> ReportAsync(DateTimeOffset from, DateTimeOffset to)
    {
        var report = JsonNode.Parse(await _server.Admin.GetStringAsync($"/admin/v1/reports/delivery?from={Uri.EscapeDataString(from.ToString("O"))}&to={Uri.EscapeDataString(to.ToString("O"))}"))!.AsObject();

        // Step flow counts where instances stand; an erase ends an open one, so it is compared apart.
        report.Remove("steps");
        return report;
    }

    [Fact]
    public async Task AdminDelete_AfterAJourney_ErasesThePersonEverywhere_ReportTotalsStay_AndItIsIdempotent()
    {
        var t0 = _server.Clock.GetUtcNow();
        var ann = await ShopperAsync("ann", "+14155550123");
        var bob = await ShopperAsync("bob", "+14155550177");
        await _server.AdvanceAsync(TimeSpan.FromHours(25));
        var annKey = ProfileRules.NewKey(new Identifier(IdentifierKind.Id, ann.Id));
        var messages = await _server.Store.GetMessagesAsync(annKey, 100);
        Assert.Equal(["email", "push", "sms"], messages.Select(m => m.Channel.ToString().ToLowerInvariant()).Order());
        var annNeedles = new[] { ann.Id, ann.Email, ann.Phone.TrimStart('+'), ann.Token, "anon-" + ann.Id, annKey }.Concat(messages.Select(m => m.Id)).ToList();
        var before = await RawStoreAsync();
        Assert.All(annNeedles, n => Assert.Contains(n, before, StringComparison.Ordinal));
        var report = await ReportAsync(t0, t0.AddDays(2));
        Assert.Equal(6, report["totals"]!["sent"]!.GetValue<long>()); // both people got push, email and SMS

        using var anonymous = new HttpClient { BaseAddress = _server.Admin.BaseAddress };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.DeleteAsync($"/admin/v1/profiles/{ann.Email}")).StatusCode);
        Assert.NotNull(await _server.Store.GetProfileAsync(annKey));

        for (var i = 0; i < 2; i++)
        {
            var r = await _server.Admin.DeleteAsync($"/admin/v1/profiles/{ann.Email}");
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
            Assert.Equal("accepted", JsonNode.Parse(await r.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
            await NudgeServerFixture.Drain(_server.Admin);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await _server.Admin.GetAsync($"/admin/v1/profiles/{ann.Id}")).StatusCode);
        var after = await RawStoreAsync();
        var left = annNeedles.Where(n => after.Contains(n, StringComparison.Ordinal)).ToList();
        Assert.True(left.Count == 0, "still stored after the erase: " + string.Join(", ", left));
        Assert.All(new[] { bob.Id, bob.Email, bob.Token }, n => Assert.Contains(n, after, StringComparison.Ordinal));
        Assert.Equal(report.ToJsonString(), (await ReportAsync(t0, t0.AddDays(2))).ToJsonString());

        // Someone nobody knows: accepted as well (Customer.io's delete is), and changes nothing.
        Assert.Equal(HttpStatusCode.Accepted, (await _server.Admin.DeleteAsync("/admin/v1/profiles/nobody-here")).StatusCode);
    }

    [Fact]
    public async Task TrackDelete_ErasesThePerson_AsTheAdminDeleteDoes()
    {
        var ann = await ShopperAsync("ann", "+14155550123");
        await _server.AdvanceAsync(TimeSpan.FromHours(1));
        var annKey = ProfileRules.NewKey(new Identifier(IdentifierKind.Id, ann.Id));
        Assert.NotEmpty(await _server.Store.GetMessagesAsync(annKey, 100));

        await _server.SendAsync(HttpMethod.Delete, $"/api/v1/customers/{ann.Id}", null);

        var after = await RawStoreAsync();
        var left = new[] { ann.Id, ann.Email, ann.Phone.TrimStart('+'), ann.Token, annKey }.Where(n => after.Contains(n, StringComparison.Ordinal)).ToList();
        Assert.True(left.Count == 0, "still stored after the erase: " + string.Join(", ", left));
    }

    [Fact]
    public async Task Retention_PurgesHourlyOnTheClock_AndReportsOverPurgedRangesSaySo()
    {
        // The worker may have taken a turn at start-up (before the test stopped it): the next one is due an hour later.
        _server.Clock.Advance(RetentionPurger.Interval);
        var now = _server.Clock.GetUtcNow();
        var old = Msg("m-old", now.AddDays(-400));
        var recent = Msg("m-recent", now.AddDays(-10));
        await using (var s = await _server.Store.OpenSessionAsync())
        {
            foreach (var m in new[] { old, recent })
            {
                await s.TryAddMessageAsync(m);
                await s.AppendDeliveryEventAsync(StatusTransitions.Apply(m, MessageStatus.Sent, m.CreatedAt, null, null)! with { RecordedAt = m.CreatedAt });
                await s.AppendEventAsync(new Nudge.Core.Storage.StoredEvent("e-" + m.Id, "k1", "viewed", "event", m.CreatedAt, m.CreatedAt, "track", []));
            }

            await s.CommitAsync();
        }

        // One turn an hour on the clock, whoever asks.
        var first = await Purger.RunIfDueAsync(TimeSpan.FromMinutes(1), CancellationToken.None);
        Assert.Equal(0, await Purger.RunIfDueAsync(TimeSpan.FromMinutes(1), CancellationToken.None));
        Assert.Equal(3, first); // the old message, its delivery event, and its event (400 > 180 days)
        Assert.Null(await _server.Store.GetMessageAsync("m-old"));
        Assert.NotNull(await _server.Store.GetMessageAsync("m-recent"));
        Assert.Equal(["e-m-recent"], (await _server.Store.GetRecentEventsAsync("k1", 10)).Select(e => e.EventId));

        _server.Clock.Advance(TimeSpan.FromDays(175));
        Assert.Equal(1, await Purger.RunIfDueAsync(TimeSpan.FromMinutes(1), CancellationToken.None)); // the recent event is now 185 days old
        Assert.NotNull(await _server.Store.GetMessageAsync("m-recent"));

        now = _server.Clock.GetUtcNow();
        var full = await ReportAsync(now.AddDays(-400), now);
        Assert.False(full["complete"]!.GetValue<bool>());
        Assert.Equal(now.AddDays(-365), full["purged_before"]!.GetValue<DateTimeOffset>());
        var recentReport = await ReportAsync(now.AddDays(-200), now);
        Assert.True(recentReport["complete"]!.GetValue<bool>());
        Assert.Null(recentReport["purged_before"]);
        var log = JsonNode.Parse(await _server.Admin.GetStringAsync($"/admin/v1/reports/message-log?from={Uri.EscapeDataString(now.AddDays(-400).ToString("O"))}"))!;
        Assert.False(log["complete"]!.GetValue<bool>());
    }

    [Fact]
    public async Task InvalidRetentionSettings_StopStartUpNamingThem()
    {
        var dir = Directory.CreateTempSubdirectory("nudge-retention-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<NudgeConfigurationException>(() => JourneyServer.StartAsync(dir, null, null,
                "--Nudge:Retention:EventsDays=0", "--Nudge:Retention:MessagesDays=40000"));
            Assert.Contains("Nudge:Retention:EventsDays", e.Message, StringComparison.Ordinal);
            Assert.Contains("Nudge:Retention:MessagesDays", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Message Msg(string id, DateTimeOffset created) => new()
    {
        Id = id,
        ProfileKey = "k1",
        InstanceId = "cart_recovery:k1:1",
        JourneyId = "cart_recovery",
        StepId = "push",
        Channel = Channel.Push,
        Status = MessageStatus.Drafted,
        CreatedAt = created,
        Recipients = ["tok"],
        Platforms = ["ios"],
    };
}
