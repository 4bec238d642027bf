using System.Text;
using Nudge.Delivery.Email;

namespace Nudge.Delivery.Tests.Email;

public sealed class EmailTrackingTests
{
    private static readonly EmailTracking Tracking = new(Encoding.UTF8.GetBytes("k".PadRight(32, '0')));
    private static readonly Uri Base = new("https://nudge.example.com/");

    [Fact]
    public void ClickToken_ReadsBackTheSignedUrlOnly()
    {
        var token = Tracking.ClickToken("m-1", "https://shop.example/cart?x=1&y=2");

        Assert.True(Tracking.TryReadClick(token, out var id, out var url));
        Assert.Equal(("m-1", "https://shop.example/cart?x=1&y=2"), (id, url));
    }

    [Fact]
    public void Tokens_TamperedForeignOrOfTheOtherPurpose_AreRejected()
    {
        var click = Tracking.ClickToken("m-1", "https://shop.example/");
        var open = Tracking.OpenToken("m-1");
        var other = new EmailTracking(Encoding.UTF8.GetBytes("z".PadRight(32, '9'))).ClickToken("m-1", "https://evil.example/");
        var flipped = (click[^1] == 'A' ? click[..^1] + "B" : click[..^1] + "A");

        Assert.False(Tracking.TryReadClick(flipped, out _, out _));
        Assert.False(Tracking.TryReadClick(other, out _, out _));
        Assert.False(Tracking.TryReadClick(open, out _, out _));
        Assert.False(Tracking.TryReadOpen(click, out _));
        Assert.False(Tracking.TryReadOpen("", out _));
        Assert.True(Tracking.TryReadOpen(open, out var id));
        Assert.Equal("m-1", id);
    }

    [Fact]
    public void Rewrite_SignsHttpLinksAddsThePixel_AndLeavesOtherLinksAlone()
    {
        var html = "<html><body><a href=\"https://shop.example/a?b=1&amp;c=2\">A</a> <a class='x' href='http://shop.example/b'>B</a>"
            + " <a href=\"mailto:help@example.com\">mail</a> <a href=\"https://nudge.example.com/u/tok\">unsub</a></body></html>";

        var rewritten = Tracking.Rewrite(html, "m-9", Base);

        Assert.DoesNotContain("https://shop.example/a", rewritten, StringComparison.Ordinal);
        Assert.DoesNotContain("http://shop.example/b", rewritten, StringComparison.Ordinal);
        Assert.Contains("href=\"mailto:help@example.com\"", rewritten, StringComparison.Ordinal);
        Assert.Contains("href=\"https://nudge.example.com/u/tok\"", rewritten, StringComparison.Ordinal);
        var links = System.Text.RegularExpressions.Regex.Matches(rewritten, "https://nudge\\.example\\.com/e/c/([A-Za-z0-9_-]+)").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(2, links.Count);
        Assert.True(Tracking.TryReadClick(links[0], out var id, out var url));
        Assert.Equal(("m-9", "https://shop.example/a?b=1&c=2"), (id, url));
        Assert.True(rewritten.IndexOf("/e/o/", StringComparison.Ordinal) < rewritten.IndexOf("</body>", StringComparison.Ordinal));
    }
}
