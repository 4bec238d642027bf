using System.Net;
using Microsoft.Playwright;
using Nudge.Host.Tests;

namespace Nudge.Dashboard.Tests;

/// <summary>The dashboard in headless chromium against the embedded server with seeded journeys, messages and outbox.</summary>
public sealed class DashboardTests(DashboardFixture f) : IClassFixture<DashboardFixture>
{
    /// <summary>When set (a folder), each view's screenshot is written there: the README's images come from this.</summary>
    private static readonly string? ScreenshotDir = Environment.GetEnvironmentVariable("NUDGE_DASHBOARD_SCREENSHOTS");

    private static async Task ScreenshotAsync(IPage page, string name)
    {
        if (!string.IsNullOrEmpty(ScreenshotDir))
        {
            Directory.CreateDirectory(ScreenshotDir);

            // A viewport as tall as the page rather than FullPage: chromium leaves sandboxed email iframes blank in
            // full-page captures, since they paint in their own process after the resize.
            var height = await page.EvaluateAsync<int>("document.documentElement.scrollHeight");
            await page.SetViewportSizeAsync(1280, Math.Min(height, 4000));
            await page.WaitForTimeoutAsync(500);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDir, name + ".png") });
        }
    }

    [BrowserFact]
    public async Task Shell_ServedWithoutKey_HoldsNoDataAndNoKey()
    {
        using var http = new HttpClient { BaseAddress = f.BaseAddress };
        var r = await http.GetAsync("/dashboard");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var html = await r.Content.ReadAsStringAsync();
        Assert.Contains("data-api=\"/admin/v1\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain(NudgeServerFixture.AdminKey, html, StringComparison.Ordinal);
        Assert.DoesNotContain("@example.com", html, StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", r.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/dashboard/dashboard.js")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/dashboard/appsettings.json")).StatusCode);
    }

    [BrowserFact]
    public async Task KeyPrompt_WrongKeyRefused_RightKeyKeptInSessionStorageOnly()
    {
        var page = await f.Browser.NewPageAsync();
        await page.GotoAsync(new Uri(f.BaseAddress, "/dashboard").ToString());
        await page.FillAsync("#key", "wrong-key");
        await page.ClickAsync("#login button[type=submit]");
        await page.WaitForSelectorAsync("#login-error:has-text('refused')");
        Assert.True(await page.IsVisibleAsync("#login"));
        await ScreenshotAsync(page, "login");

        await page.FillAsync("#key", NudgeServerFixture.AdminKey);
        await page.ClickAsync("#login button[type=submit]");
        await page.WaitForSelectorAsync("#person-search");
        Assert.Equal(NudgeServerFixture.AdminKey, await page.EvaluateAsync<string>("sessionStorage.getItem('nudge-admin-key')"));
        Assert.DoesNotContain(NudgeServerFixture.AdminKey, page.Url, StringComparison.Ordinal);
        Assert.Empty(await page.Context.CookiesAsync());
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task Navigation_EveryViewRendersItsHeading()
    {
        var page = await f.SignedInPageAsync();
        foreach (var (link, heading) in new[] { ("Journeys", "Journeys"), ("Delivery health", "Delivery health"), ("Message log", "Message log"), ("Sandbox outbox", "Sandbox outbox"), ("People", "People") })
        {
            await page.ClickAsync($"#nav a:text-is('{link}')");
            await page.WaitForSelectorAsync($"h1:text-is('{heading}')");
            await Assertions.Expect(page.Locator("#nav a.active")).ToHaveTextAsync(link);
        }

        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task Person_FoundByEmail_ShowsConsentDevicesJourneysAndMessageHistories()
    {
        var page = await f.SignedInPageAsync();
        await page.FillAsync("#person-q", f.IosEmail);
        await page.ClickAsync("#person-search button");
        await page.WaitForSelectorAsync("#person-name");
        Assert.Equal(f.IosEmail, await page.TextContentAsync("#person-name"));
        var text = await page.TextContentAsync("#view") ?? "";
        Assert.Contains("ios", text, StringComparison.Ordinal);
        Assert.Contains("…oken-ios", text, StringComparison.Ordinal);
        Assert.Contains("cart_recovery", text, StringComparison.Ordinal);
        Assert.Contains("SMS phone", await page.TextContentAsync("#consent") ?? "", StringComparison.Ordinal);
        foreach (var channel in new[] { "push", "email", "sms" })
        {
            Assert.Contains(channel, text, StringComparison.Ordinal);
        }

        Assert.Contains("delivered", text, StringComparison.Ordinal);
        Assert.Contains("add_to_cart", text, StringComparison.Ordinal);
        await ScreenshotAsync(page, "person");

        await page.FillAsync("#person-q", "nobody@example.com");
        await page.ClickAsync("#person-search button");
        await page.WaitForSelectorAsync("#person-error");
        await page.CloseAsync();
    }

    /// <summary>Rows of the message view (the "none" row of an empty table is not one).</summary>
    private static ILocator MessageRows(IPage page) => page.Locator("#log tbody tr.clickable");

    [BrowserFact]
    public async Task MessageLog_OneRowPerMessage_WithItsCurrentStatus_FilteredByChannelPlatformAndStatus()
    {
        var ids = await MessageIdsAsync("");
        Assert.True(ids.Count >= 6, $"{ids.Count} messages");
        var page = await f.SignedInPageAsync("#/messages");
        await Assertions.Expect(MessageRows(page)).ToHaveCountAsync(ids.Count);
        Assert.Equal(ids, await MessageRows(page).EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.id)"));

        // Both pushes were sent, then delivered: each is one row, showing where it stands now.
        await page.SelectOptionAsync("#log-channel", "push");
        await page.SelectOptionAsync("#log-status", "delivered");
        await page.ClickAsync("#log-filters button[type=submit]");
        await Assertions.Expect(MessageRows(page)).ToHaveCountAsync(2);
        Assert.Contains("status=delivered", page.Url, StringComparison.Ordinal);
        Assert.All(await MessageRows(page).Locator("td:nth-child(2)").AllTextContentsAsync(), t => Assert.Equal("delivered", t));
        await ScreenshotAsync(page, "messages");

        await page.SelectOptionAsync("#log-platform", "android");
        await page.ClickAsync("#log-filters button[type=submit]");
        await Assertions.Expect(MessageRows(page)).ToHaveCountAsync(1);
        Assert.Contains("android", await MessageRows(page).TextContentAsync() ?? "", StringComparison.Ordinal);

        // "sent" is a status they passed through, not the one they have.
        await page.SelectOptionAsync("#log-platform", "");
        await page.SelectOptionAsync("#log-status", "sent");
        await page.ClickAsync("#log-filters button[type=submit]");
        await page.WaitForURLAsync("**status=sent**");
        await Assertions.Expect(page.Locator("#log tbody td.muted")).ToHaveTextAsync("none");
        await Assertions.Expect(MessageRows(page)).ToHaveCountAsync(0);
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task MessageLog_NextPage_ShowsEveryMessageOnce_FirstPageGoesBack()
    {
        var expected = await MessageIdsAsync("");
        var page = await f.SignedInPageAsync("#/messages?limit=4");
        await Assertions.Expect(MessageRows(page)).ToHaveCountAsync(Math.Min(4, expected.Count));
        var firstPage = await MessageRows(page).EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.id)");
        var seen = new List<string>(firstPage);
        while (await page.IsEnabledAsync("#log-next"))
        {
            var before = page.Url;
            await page.ClickAsync("#log-next");
            await page.WaitForURLAsync(u => u != before && u.Contains("after=", StringComparison.Ordinal));
            await Assertions.Expect(page.Locator("#log-first")).ToBeEnabledAsync();
            await Assertions.Expect(MessageRows(page).First).Not.ToHaveAttributeAsync("data-id", seen[^1]);
            seen.AddRange(await MessageRows(page).EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.id)"));
            Assert.Contains("limit=4", page.Url, StringComparison.Ordinal);
        }

        Assert.Equal(expected, seen);
        await page.ClickAsync("#log-first");
        await Assertions.Expect(page.Locator("#log-first")).ToBeDisabledAsync();
        Assert.Equal(firstPage, await MessageRows(page).EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.id)"));
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task MessageLog_ClickingAMessage_ShowsItsStatusHistory()
    {
        var page = await f.SignedInPageAsync("#/messages?channel=push&platform=ios");
        await Assertions.Expect(MessageRows(page)).ToHaveCountAsync(1);
        Assert.True(await page.IsHiddenAsync("#message-history"));
        var id = await MessageRows(page).GetAttributeAsync("data-id");

        await MessageRows(page).Locator("td").First.ClickAsync();

        await Assertions.Expect(page.Locator("#message-history h2 code")).ToHaveTextAsync(id!);
        var statuses = await page.Locator("#message-history tbody td:nth-child(2)").AllTextContentsAsync();
        Assert.Equal(["drafted", "sent", "delivered"], statuses.Where(s => s is "drafted" or "sent" or "delivered"));
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task MessageLog_StatusEventsView_OneRowPerStatusReached_Filtered()
    {
        var page = await f.SignedInPageAsync("#/messages");
        await MessageRows(page).First.WaitForAsync();
        await page.ClickAsync("#log-view-events");
        await page.WaitForURLAsync("**view=events**");
        await Assertions.Expect(page.Locator("#log-view-events")).ToHaveClassAsync("active");
        await Assertions.Expect(MessageRows(page)).ToHaveCountAsync(0);
        var all = await page.Locator("#log tbody tr").CountAsync();
        Assert.True(all > (await MessageIdsAsync("")).Count, $"{all} events");

        await page.SelectOptionAsync("#log-channel", "push");
        await page.SelectOptionAsync("#log-status", "sent");
        await page.ClickAsync("#log-filters button[type=submit]");
        await page.WaitForURLAsync("**status=sent**");
        Assert.Contains("view=events", page.Url, StringComparison.Ordinal);
        await Assertions.Expect(page.Locator("#log tbody tr")).ToHaveCountAsync(2);
        await page.ClickAsync("#log-view-messages");
        await Assertions.Expect(page.Locator("#log-view-messages")).ToHaveClassAsync("active");
        Assert.DoesNotContain("view=events", page.Url, StringComparison.Ordinal);
        await Assertions.Expect(page.Locator("#log tbody td.muted")).ToHaveTextAsync("none"); // no push is "sent" any more
        await page.CloseAsync();
    }

    private async Task<List<string>> MessageIdsAsync(string query)
    {
        var page = System.Text.Json.Nodes.JsonNode.Parse(await f.Server.Admin.GetStringAsync("/admin/v1/messages?limit=500" + query))!;
        Assert.Null(page["next"]);
        return [.. page["messages"]!.AsArray().Select(m => m!["id"]!.GetValue<string>())];
    }

    [BrowserFact]
    public async Task MessageLogApi_PagesWithTheCursor_EveryEventOnce()
    {
        var all = await MessageLogAsync("/admin/v1/reports/message-log?limit=500");
        Assert.Null(all["next"]);
        var expected = all["events"]!.AsArray().Select(e => e!["id"]!.GetValue<string>()).ToList();

        var seen = new List<string>();
        string? after = null;
        do
        {
            var page = await MessageLogAsync("/admin/v1/reports/message-log?limit=3" + (after is null ? "" : "&after=" + after));
            seen.AddRange(page["events"]!.AsArray().Select(e => e!["id"]!.GetValue<string>()));
            after = page["next"]?.GetValue<string>();
        }
        while (after is not null);

        Assert.Equal(expected, seen);
        using var http = new HttpClient { BaseAddress = f.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new("Bearer", NudgeServerFixture.AdminKey);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/admin/v1/reports/message-log?after=nonsense")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/admin/v1/reports/message-log?limit=0")).StatusCode);
    }

    private async Task<System.Text.Json.Nodes.JsonNode> MessageLogAsync(string path) =>
        System.Text.Json.Nodes.JsonNode.Parse(await f.Server.Admin.GetStringAsync(path))!;

    [BrowserFact]
    public async Task Outbox_RendersPushSmsWithSegmentsAndEmailHtml()
    {
        var page = await f.SignedInPageAsync("#/outbox");
        // Expect retries until the view has rendered (the list is replaced when data arrives).
        await Assertions.Expect(page.Locator(".outbox-item[data-channel=push] .push .title")).ToHaveCountAsync(2);
        Assert.Contains("segment", await page.Locator(".sms-segments").First.TextContentAsync() ?? "", StringComparison.Ordinal);
        var frame = page.Locator("iframe.email").First.ContentFrame;
        Assert.False(string.IsNullOrWhiteSpace(await frame.Locator("body").TextContentAsync()));
        await ScreenshotAsync(page, "outbox");

        await page.SelectOptionAsync("#outbox-channel", "sms");
        await Assertions.Expect(page.Locator(".outbox-item[data-channel=push]")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator(".outbox-item[data-channel=sms]")).ToHaveCountAsync(2);
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task Journeys_ShowFunnelPerStepAndHoldoutLift()
    {
        var page = await f.SignedInPageAsync("#/journeys");
        await page.WaitForSelectorAsync(".journey[data-journey=cart_recovery]");
        var card = await page.TextContentAsync(".journey[data-journey=cart_recovery]") ?? "";
        Assert.Contains("Holdout lift", card, StringComparison.Ordinal);

        // In the journey's step order: three shoppers entered; the buyer left at wait_4h; the two others went on to the SMS.
        var funnel = page.Locator(".journey[data-journey=cart_recovery] table.funnel tbody tr");
        var rows = new List<string[]>();
        foreach (var row in await funnel.AllAsync())
        {
            rows.Add([.. (await row.Locator("td").AllTextContentsAsync()).Take(5)]);
        }

        Assert.Equal(["wait_30m", "push", "wait_4h", "email", "wait_20h", "high_value", "sms"], rows.Select(r => r[0].Split(' ')[0]));
        Assert.Equal(["wait_30m delay", "3", "0", "0", "–"], rows[0]);
        Assert.Equal(["push send", "3", "0", "0", "2"], rows[1]);
        Assert.Equal(["wait_4h delay", "3", "0", "1", "–"], rows[2]);
        Assert.Equal(["email send", "2", "0", "0", "2"], rows[3]);
        Assert.Equal(["sms send", "2", "0", "0", "2"], rows[6]);
        await ScreenshotAsync(page, "journeys");
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task DeliveryHealth_DrawsTheDeliveredRateChartPerPlatform()
    {
        var page = await f.SignedInPageAsync("#/health");
        await page.WaitForSelectorAsync("#delivery-chart");
        Assert.True(await page.Locator("#delivery-chart circle").CountAsync() > 0);
        var legend = await page.TextContentAsync(".legend") ?? "";
        Assert.Contains("push ios", legend, StringComparison.Ordinal);
        Assert.Contains("push android", legend, StringComparison.Ordinal);
        Assert.Contains("have a push token", await page.TextContentAsync("#coverage") ?? "", StringComparison.Ordinal);
        await ScreenshotAsync(page, "health");
        await page.CloseAsync();
    }
}
