using Nudge.Delivery.Email;

namespace Nudge.Delivery.Tests.Email;

public class HtmlToTextTests
{
    [Theory]
    [InlineData("<p>Hello</p><p>World</p>", "Hello\n\nWorld")]
    [InlineData("Line one<br>Line two<br/>Line three", "Line one\nLine two\nLine three")]
    [InlineData("<p>Many\n   spaces\tand\nbreaks</p>", "Many spaces and breaks")]
    [InlineData("<ul><li>One</li><li>Two</li></ul>", "- One\n- Two")]
    [InlineData("Fish &amp; chips &lt;3 &#8364;5&nbsp;only", "Fish & chips <3 €5 only")]
    [InlineData("<a href=\"https://x.example/a?b=1&amp;c=2\">Shop now</a>", "Shop now (https://x.example/a?b=1&c=2)")]
    [InlineData("<a href='https://x.example/'>https://x.example/</a>", "https://x.example/")]
    [InlineData("<a href=\"mailto:help@example.com\">help@example.com</a>", "help@example.com")]
    [InlineData("<a href=\"#top\">Top</a>", "Top")]
    [InlineData("<a href=\"https://x.example/\"><img src=\"logo.png\"></a>", "https://x.example/")]
    [InlineData("<head><title>T</title><style>p{}</style></head><script>alert(1)</script><!-- hidden --><b>Shown</b>", "Shown")]
    [InlineData("<table><tr><td>A</td><td>B</td></tr><tr><td>C</td></tr></table>", "A B\n\nC")]
    [InlineData("plain text, no tags", "plain text, no tags")]
    public void Converts_html_to_readable_text(string html, string text)
    {
        Assert.Equal(text, HtmlToText.Convert(html));
    }

    [Fact]
    public void Unclosed_markup_does_not_hang_or_throw()
    {
        var html = string.Concat(Enumerable.Repeat("<a href=\"x\"><script>", 5000)) + "text";

        var text = HtmlToText.Convert(html);

        Assert.DoesNotContain("<", text, StringComparison.Ordinal);
    }
}
