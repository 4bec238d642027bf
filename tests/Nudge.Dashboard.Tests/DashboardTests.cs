using System.Net;
using Microsoft.Playwright;
using Nudge.Host.Tests;

namespace Nudge.Dashboard.Tests;

/// <summary>The dashboard in headless chromium against the embedded server with seeded journeys, messages and outbox.</summary>
public sealed class DashboardTests(DashboardFixture f) : IClassFixture<DashboardFixture>
{
    /// <summary>When set (a folder), each view's screenshot is written there: the README's images come from this.</summary>
    private static readonly string? ScreenshotDir = Environment.GetEnvironmentVariable("NUDGE_DASHBOARD_SCREENSHOTS");

    internal static async Task ScreenshotAsync(IPage page, string name)
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
    public async Task DeliveryHealth_DrawsTheDeliveredRateChartPerPlatform_EveryLabelInside()
    {
        var page = await f.SignedInPageAsync("#/health");
        var chart = page.Locator("#delivery-chart");
        await chart.WaitForAsync();

        // Push and email on the first day, SMS on the second: a bar each, every label (the last day's too) inside the drawing.
        Assert.Equal(["email", "push android", "push ios", "sms"], (await chart.Locator("rect.rate-bar").EvaluateAllAsync<string[]>("bars => bars.map(b => b.dataset.series)")).Order());
        Assert.Equal(7, await chart.Locator("text.day").CountAsync());
        Assert.Empty(await TextOutsideAsync(chart));
        var legend = await page.TextContentAsync(".legend") ?? "";
        Assert.Contains("push ios", legend, StringComparison.Ordinal);
        Assert.Contains("push android", legend, StringComparison.Ordinal);
        Assert.Contains("have a push token", await page.TextContentAsync("#coverage") ?? "", StringComparison.Ordinal);
        await ScreenshotAsync(page, "health");
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task DeliveryHealth_SandboxDeliversEveryChannel_NoChannelAtZero()
    {
        var page = await f.SignedInPageAsync("#/health");
        var rates = await RatesAsync(page.Locator("table.by-channel"), channel: 0, platform: 1, rate: 5);

        // Every channel the sandbox sent on is at 100 %; the buyer's push, which reached no device, was never sent.
        Assert.Equal(["email", "push", "push android", "push ios", "sms"], rates.Keys.Order());
        Assert.All(["email", "push android", "push ios", "sms"], k => Assert.Equal("100.0 %", rates[k]));
        Assert.Equal("–", rates["push"]);
        Assert.True(await page.IsHiddenAsync("#delivery-not-reported"));
        await page.CloseAsync();
    }

    /// <summary>Expected tone of every status and metric badge: reached is good, not reached bad, on the way neutral.</summary>
    private static readonly Dictionary<string, string> StatusTones = new(StringComparer.Ordinal)
    {
        ["drafted"] = "neutral",
        ["attempted"] = "neutral",
        ["sent"] = "neutral",
        ["delivered"] = "good",
        ["opened"] = "good",
        ["clicked"] = "good",
        ["converted"] = "good",
        ["bounced"] = "bad",
        ["dropped"] = "bad",
        ["failed"] = "bad",
        ["undeliverable"] = "bad",
        ["spammed"] = "bad",
        ["unsubscribed"] = "bad",
    };

    /// <summary>The tone, text and painted background of every badge on the page.</summary>
    private static async Task<List<(string Tone, string Text, string Background)>> BadgesAsync(IPage page, string scope = "#view")
    {
        var found = await page.Locator(scope + " .pill").EvaluateAllAsync<string[][]>(
            "pills => pills.map(p => [p.dataset.tone, p.textContent.trim(), getComputedStyle(p).backgroundColor])");
        return [.. found.Select(b => (b[0], b[1], b[2]))];
    }

    private static async Task<string> ToneInRowAsync(IPage page, string table, string row) =>
        (await page.Locator($"{table} tr", new() { HasText = row }).Locator(".pill").GetAttributeAsync("data-tone"))!;

    [BrowserFact]
    public async Task Badges_ColourFollowsMeaning_InEveryView()
    {
        var badges = new List<(string Tone, string Text, string Background)>();
        var page = await f.SignedInPageAsync("#/person?q=" + Uri.EscapeDataString(f.IosEmail));
        await page.WaitForSelectorAsync("#person-name");

        // Consent by what it means: subscribed to email (unsubscribed false) and SMS consent given are both good.
        Assert.Equal("good", await ToneInRowAsync(page, "#consent", "Email unsubscribed"));
        Assert.Equal("false", await page.Locator("#consent tr", new() { HasText = "Email unsubscribed" }).Locator(".pill").TextContentAsync());
        var sms = page.Locator("#consent tbody tr").First;
        Assert.Equal(("SMS", "good"), (await sms.Locator("td").First.TextContentAsync(), await sms.Locator(".pill").GetAttributeAsync("data-tone")));
        badges.AddRange(await BadgesAsync(page));
        Assert.Contains(badges, b => b == ("good", "active", b.Background)); // the device
        Assert.Contains(badges, b => b.Text == "completed" && b.Tone == "neutral"); // the journey instance

        // The buyer: the push that could not reach anyone is bad (it says "deliver" but means the opposite); their
        // instance, which reached the journey's goal, is good.
        await page.FillAsync("#person-q", f.BuyerId);
        await page.ClickAsync("#person-search button");
        await Assertions.Expect(page.Locator("#person-name")).ToHaveTextAsync(f.BuyerId);
        var buyer = await BadgesAsync(page);
        Assert.Contains(buyer, b => b.Text == "undeliverable" && b.Tone == "bad");
        Assert.Contains(buyer, b => b.Text == "converted" && b.Tone == "good");
        badges.AddRange(buyer);

        await page.GotoAsync(new Uri(f.BaseAddress, "/dashboard#/messages?view=events&limit=500").ToString());
        await page.Locator("#log tbody tr").First.WaitForAsync();
        var log = await BadgesAsync(page, "#log");
        Assert.Contains(log, b => b.Text == "sent");
        badges.AddRange(log);

        foreach (var b in badges.Where(b => StatusTones.ContainsKey(b.Text)))
        {
            Assert.True(StatusTones[b.Text] == b.Tone, $"{b.Text} is {b.Tone}, not {StatusTones[b.Text]}");
        }

        // One colour per tone, everywhere: green, red and grey.
        var colours = badges.GroupBy(b => b.Tone).ToDictionary(g => g.Key, g => Assert.Single(g.Select(b => b.Background).Distinct()));
        Assert.Equal(("rgb(209, 242, 221)", "rgb(253, 224, 221)", "rgb(228, 231, 236)"), (colours["good"], colours["bad"], colours["neutral"]));
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task Person_JourneySteps_ShowEachMessageAsItStandsNow()
    {
        var page = await f.SignedInPageAsync("#/person?q=" + Uri.EscapeDataString(f.IosEmail));
        var steps = page.Locator("table.journey-instances ul.steps");
        await steps.First.WaitForAsync();

        foreach (var step in new[] { "push", "email", "sms" })
        {
            await Assertions.Expect(steps.Locator($"li[data-step={step}] .pill")).ToHaveTextAsync("delivered");
        }

        Assert.DoesNotContain("drafted", await steps.TextContentAsync() ?? "", StringComparison.Ordinal);
        await page.CloseAsync();
    }

    /// <summary>Text in the chart whose box reaches outside the SVG's (a clipped label).</summary>
    internal static Task<string[]> TextOutsideAsync(ILocator svg) => svg.EvaluateAsync<string[]>(
        """
        svg => {
          const b = svg.getBoundingClientRect();
          const texts = [...svg.querySelectorAll("text")];
          if (texts.length === 0) return ["no text at all"];
          return texts.filter(t => { const r = t.getBoundingClientRect(); return r.left < b.left || r.right > b.right || r.top < b.top || r.bottom > b.bottom; })
            .map(t => t.textContent);
        }
        """);

    /// <summary>The rate column of a table by "channel platform" (platform left out when empty).</summary>
    internal static async Task<Dictionary<string, string>> RatesAsync(ILocator table, int channel, int platform, int rate)
    {
        await table.Locator("tbody tr").First.WaitForAsync();
        var rows = await table.Locator("tbody tr").EvaluateAllAsync<string[][]>("rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))");
        return rows.GroupBy(r => (r[channel] + " " + r[platform]).Trim()).ToDictionary(g => g.Key, g => Assert.Single(g.Select(r => r[rate]).Distinct()));
    }
}
