using Microsoft.Playwright;

namespace Nudge.Dashboard.Tests;

/// <summary>The dashboard with one day of data, and an email provider (SMTP) that does not report delivery.</summary>
public sealed class OneDayTests(OneDayFixture f) : IClassFixture<OneDayFixture>
{
    [BrowserFact]
    public async Task DeliveryHealth_OneDayOfData_DrawsABarWithEveryLabelInsideTheChart()
    {
        var page = await f.SignedInPageAsync("#/health");
        var chart = page.Locator("#delivery-chart");
        await chart.WaitForAsync();

        // The push drawn as a bar reaching 100 %; email is not drawn at 0 %, it is named as not reported.
        var bar = Assert.Single(await chart.Locator("rect.rate-bar").AllAsync());
        Assert.Equal("push ios", await bar.GetAttributeAsync("data-series"));
        var box = (await bar.BoundingBoxAsync())!;
        var svg = (await chart.BoundingBoxAsync())!;
        Assert.True(box.Height > svg.Height / 2 && box.Width >= 20, $"bar {box.Width}x{box.Height}");
        Assert.Contains("100 %", await chart.Locator("text.value").AllTextContentsAsync());
        Assert.Contains("email", await page.TextContentAsync("#delivery-not-reported") ?? "", StringComparison.Ordinal);
        Assert.DoesNotContain("email", await page.TextContentAsync(".legend") ?? "", StringComparison.Ordinal);
        Assert.Empty(await DashboardTests.TextOutsideAsync(chart));

        var rates = await DashboardTests.RatesAsync(page.Locator("table.by-channel"), channel: 0, platform: 1, rate: 5);
        Assert.Equal("not reported", rates["email"]);
        Assert.Equal("100.0 %", rates["push ios"]);
        await DashboardTests.ScreenshotAsync(page, "health-one-day");
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task Journeys_EmailThroughSmtp_DeliveryNotReported_NeverZero()
    {
        var page = await f.SignedInPageAsync("#/journeys");
        var card = page.Locator(".journey[data-journey=cart_recovery]");
        await card.WaitForAsync();

        var rates = await DashboardTests.RatesAsync(card.Locator("table.by-step"), channel: 1, platform: 2, rate: 7);
        Assert.Equal(("not reported", "100.0 %"), (rates["email"], rates["push ios"]));
        var email = card.Locator("table.funnel tbody tr", new() { HasText = "email send" });
        Assert.Equal("not reported", await email.Locator("td:nth-child(6)").TextContentAsync());
        Assert.DoesNotMatch(@"(?<![0-9])0\.0 %", await card.Locator("table.by-step").TextContentAsync() ?? "");
        await page.CloseAsync();
    }
}
