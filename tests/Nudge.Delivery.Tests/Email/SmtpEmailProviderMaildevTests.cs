using Nudge.Delivery.Email;

namespace Nudge.Delivery.Tests.Email;

/// <summary>SmtpEmailProvider delivering to a real maildev process, checked through maildev's REST API.</summary>
public class SmtpEmailProviderMaildevTests(MaildevFixture maildev) : IClassFixture<MaildevFixture>
{
    private EmailOptions Options() => new()
    {
        Provider = "smtp",
        From = "news@example.com",
        FromName = "Nudge News",
        ReplyTo = "help@example.com",
        Smtp = new SmtpEmailOptions { Host = "127.0.0.1", Port = maildev.SmtpPort, Security = "none" },
    };

    [Fact]
    public async Task Delivers_subject_addresses_both_parts_and_the_tracking_headers()
    {
        var to = $"ann-{Guid.NewGuid():N}@example.com";
        var links = new UnsubscribeLinks(new byte[32]);
        var token = links.Create("profile-1", "01JMAILDEV000000000000001");
        var headers = UnsubscribeLinks.Headers(new Uri($"https://nudge.example.com/u/{token}"));
        await using var smtp = new SmtpEmailProvider(Options());

        var outcome = await smtp.SendAsync(
            new EmailRequest("01JMAILDEV000000000000001", to, "Your cart misses you ✨", "<p>Come <b>back</b></p>", "Come back", headers),
            CancellationToken.None);

        Assert.Equal(SendOutcome.Sent("01JMAILDEV000000000000001@nudge"), outcome);
        var email = Assert.Single(await maildev.WaitForAsync(to));
        Assert.Equal("Your cart misses you ✨", email.GetProperty("subject").GetString());
        var from = Assert.Single(email.GetProperty("from").EnumerateArray());
        Assert.Equal("news@example.com", from.GetProperty("address").GetString());
        Assert.Equal("Nudge News", from.GetProperty("name").GetString());
        Assert.Equal(to, Assert.Single(email.GetProperty("to").EnumerateArray()).GetProperty("address").GetString());
        Assert.Equal("<p>Come <b>back</b></p>", email.GetProperty("html").GetString()!.Trim());
        Assert.Equal("Come back", email.GetProperty("text").GetString()!.Trim());
        var parsed = email.GetProperty("headers");
        Assert.Equal("01JMAILDEV000000000000001", parsed.GetProperty("x-nudge-delivery-id").GetString());
        Assert.Equal("<01JMAILDEV000000000000001@nudge>", parsed.GetProperty("message-id").GetString());

        // maildev's parsed headers leave out the List-* ones, so read them from the raw message.
        var source = Unfold(await maildev.SourceAsync(email));
        Assert.Contains($"List-Unsubscribe: <https://nudge.example.com/u/{token}>\r\n", source, StringComparison.Ordinal);
        Assert.Contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", source, StringComparison.Ordinal);
        Assert.Contains("Reply-To: help@example.com\r\n", source, StringComparison.Ordinal);
        Assert.Contains("Content-Type: multipart/alternative", source, StringComparison.Ordinal);
        Assert.True(links.TryRead(token, out var profile, out var message));
        Assert.Equal(("profile-1", "01JMAILDEV000000000000001"), (profile, message));
    }

    [Fact]
    public async Task Html_only_gets_a_plain_text_part_derived_from_it()
    {
        var to = $"bob-{Guid.NewGuid():N}@example.com";
        await using var smtp = new SmtpEmailProvider(Options());
        const string Html = "<html><head><style>p{color:red}</style></head><body><h1>Hi&nbsp;Bob</h1>"
            + "<p>Your <a href=\"https://shop.example.com/cart?a=1&amp;b=2\">cart</a> is waiting.</p><ul><li>Shoes</li><li>Hat</li></ul></body></html>";

        var outcome = await smtp.SendAsync(new EmailRequest("m-html-only", to, "Cart", Html, null, new Dictionary<string, string>()), CancellationToken.None);

        Assert.Equal(OutcomeKind.Sent, outcome.Kind);
        var email = Assert.Single(await maildev.WaitForAsync(to));
        Assert.Equal(Html, email.GetProperty("html").GetString()!.Trim());
        Assert.Equal(
            "Hi Bob\n\nYour cart (https://shop.example.com/cart?a=1&b=2) is waiting.\n\n- Shoes\n- Hat",
            email.GetProperty("text").GetString()!.ReplaceLineEndings("\n").Trim());
    }

    [Fact]
    public async Task Fifty_concurrent_sends_share_one_connection_and_all_arrive()
    {
        var to = $"many-{Guid.NewGuid():N}@example.com";
        await using var smtp = new SmtpEmailProvider(Options());

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => smtp.SendAsync(
            new EmailRequest($"bulk-{i:D2}", to, $"Message {i}", $"<p>{i}</p>", $"{i}", new Dictionary<string, string>()),
            CancellationToken.None)));

        Assert.All(outcomes, o => Assert.Equal(OutcomeKind.Sent, o.Kind));
        Assert.Equal(1, smtp.ConnectionsOpened);
        var emails = await maildev.WaitForAsync(to, 50);
        Assert.Equal(
            Enumerable.Range(0, 50).Select(i => $"<bulk-{i:D2}@nudge>").Order(StringComparer.Ordinal),
            emails.Select(e => e.GetProperty("headers").GetProperty("message-id").GetString()!).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Resending_the_same_message_id_repeats_the_same_message_id_header()
    {
        var to = $"again-{Guid.NewGuid():N}@example.com";
        await using var smtp = new SmtpEmailProvider(Options());
        var request = new EmailRequest("retry-1", to, "Once", null, "Once", new Dictionary<string, string>());

        await smtp.SendAsync(request, CancellationToken.None);
        await smtp.SendAsync(request, CancellationToken.None);

        var emails = await maildev.WaitForAsync(to, 2);
        Assert.All(emails, e => Assert.Equal("<retry-1@nudge>", e.GetProperty("headers").GetProperty("message-id").GetString()));
    }

    private static string Unfold(string raw) => raw.Replace("\r\n ", " ", StringComparison.Ordinal).Replace("\r\n\t", " ", StringComparison.Ordinal);
}
