using System.Buffers.Text;
using System.Text;
using Nudge.Delivery.Email;

namespace Nudge.Delivery.Tests.Email;

public class UnsubscribeLinksTests
{
    private static readonly byte[] Key = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];

    [Theory]
    [InlineData("profile-42", "01JUNSUB000000000000000001")]
    [InlineData("ann@example.com", "m")]
    [InlineData("ünïcødé 🙂 key", "id with spaces/and?query=1")]
    public void Create_then_read_gives_back_the_profile_and_message(string profile, string message)
    {
        var links = new UnsubscribeLinks(Key);

        var token = links.Create(profile, message);

        Assert.Matches("^[A-Za-z0-9_-]+$", token);
        Assert.True(links.TryRead(token, out var readProfile, out var readMessage));
        Assert.Equal((profile, message), (readProfile, readMessage));
        Assert.Equal(token, links.Create(profile, message));
    }

    [Fact]
    public void Changing_any_character_of_the_token_fails()
    {
        var links = new UnsubscribeLinks(Key);
        var token = links.Create("profile-42", "01JUNSUB000000000000000001");
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

        for (var i = 0; i < token.Length; i++)
        {
            foreach (var c in Alphabet.Where(c => c != token[i]))
            {
                var tampered = string.Concat(token.AsSpan(0, i), c.ToString(), token.AsSpan(i + 1));
                Assert.False(links.TryRead(tampered, out _, out _), $"accepted a change at {i} to '{c}'");
            }
        }
    }

    [Fact]
    public void Flipping_any_bit_of_the_decoded_token_fails()
    {
        var links = new UnsubscribeLinks(Key);
        var bytes = Base64Url.DecodeFromChars(links.Create("profile-42", "01JUNSUB000000000000000001"));

        for (var i = 0; i < bytes.Length; i++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                var copy = (byte[])bytes.Clone();
                copy[i] ^= (byte)(1 << bit);
                Assert.False(links.TryRead(Base64Url.EncodeToString(copy), out _, out _), $"accepted a flip at byte {i} bit {bit}");
            }
        }
    }

    [Fact]
    public void Truncated_or_extended_tokens_fail()
    {
        var links = new UnsubscribeLinks(Key);
        var token = links.Create("profile-42", "m1");

        for (var length = 0; length < token.Length; length++)
        {
            Assert.False(links.TryRead(token[..length], out _, out _));
        }

        Assert.False(links.TryRead(token + "A", out _, out _));
        Assert.False(links.TryRead(token + "AA", out _, out _));
    }

    [Fact]
    public void Another_key_cannot_read_or_forge_tokens()
    {
        var other = (byte[])Key.Clone();
        other[0] ^= 1;
        var token = new UnsubscribeLinks(Key).Create("profile-42", "m1");

        Assert.False(new UnsubscribeLinks(other).TryRead(token, out var profile, out var message));
        Assert.Equal(("", ""), (profile, message));
    }

    [Fact]
    public void A_token_with_a_swapped_profile_fails_even_with_a_valid_looking_shape()
    {
        var links = new UnsubscribeLinks(Key);
        var mine = Base64Url.DecodeFromChars(links.Create("profile-42", "m1"));
        var theirs = Base64Url.DecodeFromChars(links.Create("profile-43", "m1"));

        // Their payload with my MAC.
        var spliced = theirs[..^32].Concat(mine[^32..]).ToArray();

        Assert.False(links.TryRead(Base64Url.EncodeToString(spliced), out _, out _));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("not a token!")]
    [InlineData("====")]
    [InlineData("A")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("%00%ff")]
    [InlineData("\0\r\n")]
    [InlineData("😀😀😀😀")]
    public void Garbage_is_refused_without_throwing(string? token)
    {
        var links = new UnsubscribeLinks(Key);

        Assert.False(links.TryRead(token, out var profile, out var message));
        Assert.Equal(("", ""), (profile, message));
    }

    [Fact]
    public void Random_input_never_throws()
    {
        var links = new UnsubscribeLinks(Key);
        var random = new Random(8058);
        var bytes = new byte[200];
        for (var i = 0; i < 2000; i++)
        {
            var slice = bytes.AsSpan(0, random.Next(bytes.Length));
            random.NextBytes(slice);
            Assert.False(links.TryRead(Base64Url.EncodeToString(slice), out _, out _));
            Assert.False(links.TryRead(Encoding.Latin1.GetString(slice), out _, out _));
        }

        Assert.False(links.TryRead(new string('A', 1_000_000), out _, out _));
    }

    [Fact]
    public void Create_refuses_empty_oversized_or_broken_parts_and_short_keys()
    {
        var links = new UnsubscribeLinks(Key);

        Assert.Throws<ArgumentException>(() => links.Create("", "m1"));
        Assert.Throws<ArgumentException>(() => links.Create("p", ""));
        Assert.Throws<ArgumentException>(() => links.Create(new string('p', UnsubscribeLinks.MaxPartBytes + 1), "m1"));
        Assert.Throws<ArgumentException>(() => links.Create("\ud800", "m1"));
        Assert.Throws<ArgumentException>(() => new UnsubscribeLinks(new byte[31]));
        var longest = links.Create(new string('p', UnsubscribeLinks.MaxPartBytes), new string('m', UnsubscribeLinks.MaxPartBytes));
        Assert.True(links.TryRead(longest, out _, out _));
    }

    [Fact]
    public void The_key_is_copied_so_later_changes_to_the_array_do_not_matter()
    {
        var key = (byte[])Key.Clone();
        var links = new UnsubscribeLinks(key);
        var token = links.Create("p", "m");

        Array.Clear(key);

        Assert.True(links.TryRead(token, out _, out _));
    }

    [Fact]
    public void Headers_are_the_rfc_8058_pair()
    {
        var headers = UnsubscribeLinks.Headers(new Uri("https://nudge.example.com/u/abc_DEF-123"));

        Assert.Equal(2, headers.Count);
        Assert.Equal("<https://nudge.example.com/u/abc_DEF-123>", headers["List-Unsubscribe"]);
        Assert.Equal("List-Unsubscribe=One-Click", headers["List-Unsubscribe-Post"]);
    }

    [Fact]
    public void Headers_refuse_relative_and_non_http_urls()
    {
        Assert.Throws<ArgumentException>(() => UnsubscribeLinks.Headers(new Uri("/u/abc", UriKind.Relative)));
        Assert.Throws<ArgumentException>(() => UnsubscribeLinks.Headers(new Uri("mailto:unsubscribe@example.com")));
    }
}
