using Microsoft.Playwright;
using Nudge.Host.Tests;

namespace Nudge.Dashboard.Tests;

/// <summary>
/// One embedded server on a real loopback port, seeded through the public APIs by the fixture that derives from this,
/// plus one headless Debian chromium driven by Playwright.
/// </summary>
public abstract class BrowserFixture : IAsyncLifetime
{
    /// <summary>
    /// The system browser: Debian chromium, or NUDGE_CHROMIUM (the GitHub runner's preinstalled Chrome). Playwright's
    /// own browser download is never used: these machines have no internet.
    /// </summary>
    public static readonly string ChromiumPath = Environment.GetEnvironmentVariable("NUDGE_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    /// <summary>Flags measured to work headless on these machines, with no network beyond loopback.</summary>
    private static readonly string[] ChromiumArgs =
        ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"];

    private IPlaywright? _playwright;

    public JourneyServer Server { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public Uri BaseAddress => new(Server.Track.BaseAddress!, "/");

    /// <summary>Whether the tests can run: chromium is installed. In CI a missing browser fails instead (see <see cref="BrowserFactAttribute"/>).</summary>
    public static bool ChromiumInstalled => File.Exists(ChromiumPath);

    public async Task InitializeAsync()
    {
        if (!ChromiumInstalled)
        {
            if (BrowserFactAttribute.InCi)
            {
                throw new InvalidOperationException($"{ChromiumPath} is missing: the dashboard tests need Debian chromium (apt-get install -y chromium).");
            }

            return;
        }

        Server = await StartServerAsync();
        await SeedAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = ChromiumPath, Headless = true, Args = ChromiumArgs });
    }

    /// <summary>The server the dashboard reads (the sandbox on every channel unless a fixture says otherwise).</summary>
    protected virtual Task<JourneyServer> StartServerAsync() => JourneyServer.StartAsync();

    /// <summary>Puts the fixture's people and messages in <see cref="Server"/>.</summary>
    protected abstract Task SeedAsync();

    /// <summary>A fresh page (own sessionStorage) at /dashboard, signed in with the admin key.</summary>
    public async Task<IPage> SignedInPageAsync(string hash = "")
    {
        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        await page.GotoAsync(new Uri(BaseAddress, "/dashboard" + hash).ToString());
        await page.FillAsync("#key", NudgeServerFixture.AdminKey);
        await page.ClickAsync("#login button[type=submit]");
        await page.WaitForSelectorAsync("#nav:not([hidden])");
        return page;
    }

    public virtual async Task DisposeAsync()
    {
        if (_playwright is null)
        {
            return;
        }

        await Browser.DisposeAsync();
        _playwright.Dispose();
        await Server.DisposeAsync();
        Directory.Delete(Server.DataDir, recursive: true);
    }
}

/// <summary>
/// The sandbox on every channel, seeded with two shoppers who went through cart_recovery (push on iOS and Android,
/// email, SMS) and a buyer who left it early.
/// </summary>
public sealed class DashboardFixture : BrowserFixture
{
    /// <summary>Email of the iOS shopper, who got push, email and SMS.</summary>
    public string IosEmail { get; private set; } = "";

    /// <summary>Customer id of the buyer, whose push step ended undeliverable (no device).</summary>
    public string BuyerId { get; private set; } = "";

    protected override async Task SeedAsync()
    {
        IosEmail = await ShopperAsync("ios");
        await ShopperAsync("android");
        BuyerId = await BuyerAsync();
        await Server.AdvanceAsync(TimeSpan.FromDays(2));
    }

    /// <summary>A shopper with a device on <paramref name="platform"/> who leaves a high-value cart (push, then email, then SMS).</summary>
    private async Task<string> ShopperAsync(string platform)
    {
        var id = Server.IdFor("cart_recovery", heldOut: false, "dash-" + platform);
        var email = $"{id}@example.com";
        await Server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}",
            $$"""{"email":"{{email}}","first_name":"Dana","phone":"+14155552671","sms_consent":true,"timezone":"UTC"}""");
        await Server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}/devices", $$$"""{"device":{"id":"{{{id}}}-token-{{{platform}}}","platform":"{{{platform}}}"}}""");
        await Server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c1","cart_value":150,"item_name":"serum"}}""");
        await Server.AdvanceAsync(TimeSpan.FromMinutes(30));

        // The app confirms the push arrived through the SDK metrics endpoint, as Customer.io's SDKs do.
        var push = (await Server.GetAsync($"/admin/v1/profiles/{id}/messages")).Select(m => m!.AsObject()).Single(m => m["channel"]!.GetValue<string>() == "push");
        await Server.SendAsync(HttpMethod.Post, "/api/v1/push/events",
            $$"""{"delivery_id":"{{push["id"]}}","event":"delivered","device_id":"{{id}}-token-{{platform}}","timestamp":{{Server.Clock.GetUtcNow().ToUnixTimeSeconds()}}}""");
        return email;
    }

    /// <summary>
    /// A shopper with no way to reach them (no device, email or phone) who buys during the 4 h wait after the push: their
    /// instance leaves cart recovery at wait_4h, and their push step ends undeliverable.
    /// </summary>
    private async Task<string> BuyerAsync()
    {
        var id = Server.IdFor("cart_recovery", heldOut: false, "dash-buyer");
        await Server.SendAsync(HttpMethod.Put, $"/api/v1/customers/{id}", """{"first_name":"Bo","timezone":"UTC"}""");
        await Server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"add_to_cart","data":{"cart_id":"c9","cart_value":20}}""");
        await Server.AdvanceAsync(TimeSpan.FromHours(1));
        await Server.SendAsync(HttpMethod.Post, $"/api/v1/customers/{id}/events", """{"name":"purchase","data":{"cart_id":"c9"}}""");
        await Server.AdvanceAsync(TimeSpan.FromMinutes(1));
        return id;
    }
}

/// <summary>
/// A browser test: skipped when chromium is missing on a developer machine, but never in CI (CI=true), where the
/// fixture fails with the install command instead, so a CI image without chromium cannot pass silently.
/// </summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public BrowserFactAttribute()
    {
        if (!BrowserFixture.ChromiumInstalled && !InCi)
        {
            Skip = $"{BrowserFixture.ChromiumPath} is missing: apt-get install -y chromium";
        }
    }
}
