using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;

namespace Nudge.Host.Tests;

/// <summary>
/// GET /admin/v1/messages on the embedded server (real SQLite file, virtual clock): one row per message with its current
/// status, newest first, filtered and paged. Messages are written through the store API as the pipeline writes them.
/// </summary>
public sealed class MessagesApiTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = JourneyServer.Monday14h;

    private JourneyServer _server = null!;

    public async Task InitializeAsync() => _server = await JourneyServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_server.DataDir, recursive: true);
    }

    private static Message Msg(string id, string key, DateTimeOffset created, string journey = "cart_recovery", string step = "push",
        Channel channel = Channel.Push, string platform = Platforms.Ios, string status = MessageStatus.Sent, string? reason = null) => new()
        {
            Id = id,
            ProfileKey = key,
            InstanceId = $"{journey}:{key}:1",
            JourneyId = journey,
            StepId = step,
            Channel = channel,
            Status = status,
            Reason = reason,
            CreatedAt = created,
            Recipients = [channel == Channel.Push ? $"device-token-{id}" : $"{key}@example.com"],
            Platforms = channel == Channel.Push ? [platform] : [],
            History = [new StatusChange(MessageStatus.Drafted, created, null), new StatusChange(status, created.AddSeconds(2), reason)],
        };

    private async Task SeedAsync(params Message[] messages)
    {
        await using var s = await _server.Store.OpenSessionAsync();
        foreach (var m in messages)
        {
            await s.TryAddMessageAsync(m);
        }

        await s.CommitAsync();
    }

    private async Task<JsonNode> GetAsync(string query) => JsonNode.Parse(await _server.Admin.GetStringAsync("/admin/v1/messages" + query))!;

    private static List<string> Ids(JsonNode page) => [.. page["messages"]!.AsArray().Select(m => m!["id"]!.GetValue<string>())];

    [Fact]
    public async Task Messages_OneRowPerMessage_NewestFirst_WithItsCurrentStatus()
    {
        var push = Msg("m-push", "k1", Now.AddHours(-3), status: MessageStatus.Drafted);
        await SeedAsync(push, Msg("m-email", "k2", Now.AddHours(-2), step: "email", channel: Channel.Email, status: MessageStatus.Delivered),
            Msg("m-old", "k1", Now.AddDays(-8)));

        // The push is sent, then delivered: still one row, with the status it has now.
        foreach (var (status, at) in new[] { (MessageStatus.Sent, Now.AddHours(-3).AddSeconds(5)), (MessageStatus.Delivered, Now.AddHours(-1)) })
        {
            StatusTransitions.Apply(push, status, at, null, null);
            await using var s = await _server.Store.OpenSessionAsync();
            await s.PutMessageAsync(push);
            await s.CommitAsync();
        }

        var page = await GetAsync("");

        Assert.Equal(["m-email", "m-push"], Ids(page)); // the default range is the 7 days before now
        Assert.Null(page["next"]);
        var row = page["messages"]![1]!;
        Assert.Equal("cio_k1", row["cio_id"]!.GetValue<string>());
        Assert.Equal(("cart_recovery", "push", "push", "delivered"),
            (row["journey_id"]!.GetValue<string>(), row["step_id"]!.GetValue<string>(), row["channel"]!.GetValue<string>(), row["status"]!.GetValue<string>()));
        Assert.Equal(["ios"], row["platforms"]!.AsArray().Select(p => p!.GetValue<string>()));
        Assert.Equal(["…n-m-push"], row["recipients"]!.AsArray().Select(p => p!.GetValue<string>())); // a token shows only its tail
        Assert.Equal(Now.AddHours(-3), row["created_at"]!.GetValue<DateTimeOffset>());
        Assert.Equal(Now.AddHours(-1), row["updated_at"]!.GetValue<DateTimeOffset>());
        Assert.Null(row["reason"]);
        Assert.Equal(["k2@example.com"], page["messages"]![0]!["recipients"]!.AsArray().Select(p => p!.GetValue<string>()));
        Assert.Equal(["m-email", "m-push", "m-old"], Ids(await GetAsync("?from=" + Uri.EscapeDataString(Now.AddDays(-30).ToString("O", System.Globalization.CultureInfo.InvariantCulture)))));
    }

    [Fact]
    public async Task Messages_EachFilter_AndTheTimeRange()
    {
        await SeedAsync(
            Msg("ios", "k1", Now.AddHours(-5)),
            Msg("android", "k2", Now.AddHours(-4), platform: Platforms.Android, status: MessageStatus.Bounced, reason: MessageReason.InvalidToken),
            Msg("sms", "k3", Now.AddHours(-3), "winback", "sms", Channel.Sms, status: MessageStatus.Undeliverable, reason: MessageReason.ConsentMissing),
            Msg("email", "k1", Now.AddHours(-2), step: "email", channel: Channel.Email, status: MessageStatus.Delivered));

        Assert.Equal(["sms"], Ids(await GetAsync("?journey=winback")));
        Assert.Equal(["email"], Ids(await GetAsync("?step=email")));
        Assert.Equal(["android", "ios"], Ids(await GetAsync("?channel=push")));
        Assert.Equal(["android"], Ids(await GetAsync("?platform=android")));
        Assert.Equal(["email"], Ids(await GetAsync("?status=delivered")));
        Assert.Equal(["android"], Ids(await GetAsync("?reason=invalid_token")));
        Assert.Equal(["android"], Ids(await GetAsync("?channel=push&status=bounced&journey=cart_recovery&step=push&platform=android&reason=invalid_token")));
        Assert.Equal(["email", "sms", "android", "ios"], Ids(await GetAsync("?journey=&status=")));
        var from = Now.AddHours(-4).ToUnixTimeSeconds();
        var to = Now.AddHours(-2).ToUnixTimeSeconds();
        Assert.Equal(["sms", "android"], Ids(await GetAsync($"?from={from}&to={to}")));
        Assert.Equal("consent_missing", (await GetAsync("?channel=sms"))["messages"]![0]!["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Messages_PagedWithNext_EveryMessageOnce_AcrossEqualTimes()
    {
        var messages = Enumerable.Range(0, 7).Select(n => Msg($"m{n}", "k" + n, Now.AddHours(-1 - (n / 3)))).ToArray();
        await SeedAsync(messages);
        var expected = messages.OrderByDescending(m => m.CreatedAt).ThenByDescending(m => m.Id, StringComparer.Ordinal).Select(m => m.Id).ToList();
        Assert.Equal(expected, Ids(await GetAsync("?limit=500")));

        var seen = new List<string>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await GetAsync("?limit=2" + (after is null ? "" : "&after=" + after));
            seen.AddRange(Ids(page));
            after = page["next"]?.GetValue<string>();
            pages++;
        }
        while (after is not null);

        Assert.Equal(expected, seen);
        Assert.Equal(4, pages);
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=501", "limit")]
    [InlineData("limit=ten", "limit")]
    [InlineData("channel=fax", "channel")]
    [InlineData("platform=windows", "platform")]
    [InlineData("platform=IOS", "platform")]
    [InlineData("status=sending", "status")]
    [InlineData("from=yesterday", "from")]
    [InlineData("to=2026-13-01", "to")]
    [InlineData("from=2026-06-01T00:00:00Z&to=2026-05-01T00:00:00Z", "from")]
    [InlineData("from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to")]
    [InlineData("after=nonsense", "after")]
    public async Task Messages_BadParameter_400NamingIt(string query, string parameter)
    {
        var r = await _server.Admin.GetAsync("/admin/v1/messages?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.StartsWith(parameter + ":", JsonNode.Parse(await r.Content.ReadAsStringAsync())!["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Messages_WithoutTheAdminKey_401()
    {
        using var http = new HttpClient { BaseAddress = _server.Admin.BaseAddress };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/admin/v1/messages")).StatusCode);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/admin/v1/messages?limit=0")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _server.Track.GetAsync("/admin/v1/messages")).StatusCode);
    }
}
