using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Nudge.Delivery.Tests.Twilio;
using static Nudge.Host.Tests.NudgeServerFixture;

namespace Nudge.Host.Tests;

/// <summary>What the server must do with one generated case.</summary>
internal enum Expect
{
    /// <summary>A documented 4xx; nothing is queued or stored. A 400 names <see cref="FuzzCase.Field"/>.</summary>
    Reject,

    /// <summary>Any answer below 500, and nothing is queued or stored (a read, an ignored webhook, the pixel).</summary>
    NoChange,

    /// <summary>Any answer below 500: odd but valid input that may be accepted and stored.</summary>
    Any,
}

/// <summary>One generated request.</summary>
internal sealed record FuzzCase(int Index, string Endpoint, string Category, HttpMethod Method, string PathAndQuery, byte[]? Body,
    string? ContentType, IReadOnlyList<KeyValuePair<string, string>> Headers, Expect Expect, string? Field, bool Chunked = false)
{
    public override string ToString()
    {
        var body = Body is null ? "(none)" : Body.Length > 300
            ? $"{Body.Length} bytes: {Preview(Body.AsSpan(0, 300))}…"
            : Preview(Body);
        return $"#{Index} {Endpoint} [{Category}] expect {Expect}{(Field is null ? "" : $" naming '{Field}'")}: {Method} {(PathAndQuery.Length > 300 ? PathAndQuery[..300] + "…" : PathAndQuery)} content-type={ContentType ?? "(none)"} body={body}";
    }

    private static string Preview(ReadOnlySpan<byte> b) => string.Concat(Encoding.UTF8.GetString(b).Select(c => c is < ' ' or > '~' ? $"\\u{(int)c:x4}" : c.ToString()));
}

/// <summary>
/// Seeded generator of malformed, wrongly typed, oversize and hostile requests for every public endpoint. Case
/// <c>i</c> depends only on (seed, i), so any one case can be replayed alone. Endpoints take turns, so each gets an
/// equal share of the cases.
/// </summary>
internal sealed class BadInputGenerator(ECDsa sendGridKey, string publicBase)
{
    /// <summary>The SendGrid webhook timestamp used for every signed case.</summary>
    public const string SendGridTimestamp = "1780322400";

    /// <summary>Strings that must be stored and returned as the literal text they are, where a field takes free text.</summary>
    public static readonly string[] Hostile =
    [
        "'; DROP TABLE profiles; --", "\" OR 1=1 --", "Robert'); DROP TABLE Students;--", "{\"$where\":\"sleep(1000)\"}", "$where", "$gt",
        "{{ customer.email }}", "{% if true %}x{% endif %}", "{{ 7 | times: 7 }}", "{{'a' | append: 'b'}}", "${jndi:ldap://x/a}",
        "../../etc/passwd", "..%2F..%2Fadmin", "%2e%2e%2f", "<script>alert(1)</script>", "\u202Egnp.exe", "\u202Bright-to-left\u202C",
        "a\u0000b", "\u0001\u001f\u007f", "\r\nX-Injected: 1", "😀👍🏽", "e\u0301", "\uFEFFbom", "%00%ff%fe", "\\u0000", "null", "true",
        "\u2028\u2029", "\uFFFD", "\U0001F4A9", "ﷺ", "\t", "<![CDATA[x]]>", "&amp;&lt;", "Zalgo: z̷̢̛a̵͚͝l̶g̴o̸", new string('x', 1000),
    ];

    private static readonly string[] Malformed =
    [
        "{", "}", "{\"a\":}", "{\"a\" 1}", "{a:1}", "{'a':'b'}", "{\"a\":1,}", "{\"a\":1}{\"b\":2}", "{\"a\":1} x", "{\"a\":\"unterminated}",
        "{\"a\":01}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":0x10}", "{\"a\":tru}", "{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}", "{/*c*/\"a\":1}",
        "{\"a\":1 // c\n}", "{\"a\":\"line\nbreak\"}", "{\"a\":\"tab\tin string\"}", "\u0000{}", "{\"a\":[1,2}", "{\"a\":{\"b\":1]}",
    ];

    private readonly List<EndpointSpec> _endpoints = BuildEndpoints();

    public IReadOnlyList<string> Endpoints => [.. _endpoints.Select(e => e.Name)];

    public FuzzCase Generate(int seed, int index)
    {
        var rng = new Random(unchecked((seed * 1_000_003) + index));
        var ep = _endpoints[index % _endpoints.Count];
        var c = ep.Family switch
        {
            Family.TrackJson or Family.SegmentJson => JsonCase(ep, rng, index),
            Family.TrackNoBody => NoBodyCase(ep, rng, index),
            Family.Twilio => TwilioCase(ep, rng, index),
            Family.SendGrid => SendGridCase(ep, rng, index),
            Family.Token => TokenCase(ep, rng, index),
            _ => AdminCase(ep, rng, index),
        };
        return c;
    }

    // ---- JSON APIs (Track API with a body, Segment) ---------------------------------------------------------------

    private FuzzCase JsonCase(EndpointSpec ep, Random rng, int i)
    {
        var segment = ep.Family == Family.SegmentJson;
        var bodyField = "request body";
        var path = ep.Path(rng, i);
        FuzzCase Make(string category, byte[]? body, Expect expect, string? field, string? contentType = "application/json", bool auth = true,
            HttpMethod? method = null, string? pathOverride = null) =>
            new(i, ep.Name, category, method ?? ep.Method, pathOverride ?? path, body, contentType, auth ? Auth(ep.Family) : [], expect, field);

        switch (rng.Next(14))
        {
            case 0 or 1:
                return MalformedJson(ep, rng, i, Make);
            case 2 or 3 or 4:
                {
                    var spec = ep.Fields[rng.Next(ep.Fields.Length)];
                    var body = ep.Valid(i);
                    var wrong = WrongValue(spec, rng);
                    Set(body, spec.Path, wrong);
                    return Make("wrong-type:" + spec.Path, Raw(body), Expect.Reject, ep.FieldPrefix + spec.Path);
                }

            case 5 or 6:
                return ep.Oversize(rng, i) is var (name, bytes, field, status413)
                    ? Make("oversize:" + name, bytes, Expect.Reject, status413 ? null : field)
                    : Make("oversize:none", Raw(ep.Valid(i)), Expect.Any, null);
            case 7 or 8:
                {
                    // Hostile text in a free-text field, key or id: valid input, which must be stored literally or rejected.
                    var body = ep.Valid(i);
                    var text = Hostile[rng.Next(Hostile.Length)];
                    var spec = ep.Fields[rng.Next(ep.Fields.Length)];
                    if (rng.Next(3) == 0 && ep.FreeObject is { } obj)
                    {
                        SetKey(body, obj, rng.Next(2) == 0 ? text : "k", text);
                    }
                    else
                    {
                        Set(body, spec.Path, text);
                    }

                    return Make("hostile:" + spec.Path, Raw(body), Expect.Any, null);
                }

            case 9:
                {
                    // Odd but valid JSON: huge and tiny numbers, escapes, deep-but-allowed nesting, in free data.
                    var body = ep.Valid(i);
                    var odd = new[] { "1e400", "-1e400", "1e-400", "123456789012345678901234567890", "-0", "0.0000000000000000000001", "[[[[[[[[[[]]]]]]]]]]", "\"\\ud83d\\ude00\"", "\"\\u0000\"", "{}" };
                    Set(body, $"{ep.FreeObject ?? "extra"}.odd", RawToken(odd[rng.Next(odd.Length)]));
                    return Make("odd-valid", Raw(body), Expect.Any, null);
                }

            case 10:
                {
                    var form = "name=x&data%5Ba%5D=1&userId=u&event=e";
                    return rng.Next(3) switch
                    {
                        0 => Make("form-body", Encoding.UTF8.GetBytes(form), Expect.Reject, segment ? null : bodyField, "application/x-www-form-urlencoded"),
                        1 => Make("xml-body", "<identify><id>1</id></identify>"u8.ToArray(), Expect.Reject, segment ? null : bodyField, "application/xml"),
                        _ => Make("content-type", Raw(ep.Valid(i)), Expect.Any, null,
                            Pick(rng, "text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data", "application/json; charset=utf-16", "*/*", "")),
                    };
                }

            case 11:
                return Make("auth", Raw(ep.Valid(i)), Expect.Reject, null, auth: false) with { Headers = BadAuth(ep.Family, rng) };
            case 12:
                return Make("method", Raw(ep.Valid(i)), Expect.Reject, null,
                    method: Pick(rng, HttpMethod.Get, HttpMethod.Patch, HttpMethod.Head, HttpMethod.Options, ep.Method == HttpMethod.Put ? HttpMethod.Post : HttpMethod.Put));
            default:
                if (ep.PathId && rng.Next(2) == 0)
                {
                    var (segmentText, expect, pathField) = PathSegment(rng);
                    return Make("path", Raw(ep.Valid(i)), expect, pathField, pathOverride: ep.PathWithId(segmentText));
                }

                // Segment: a time corrected by sentAt that lands outside what a date can hold.
                if (segment && ep.Name != "POST /v1/batch" && ep.Name != "POST /v1/import")
                {
                    var body = ep.Valid(i);
                    body["originalTimestamp"] = rng.Next(2) == 0 ? "9999-12-31T23:59:59Z" : "0001-01-01T00:00:01Z";
                    body["sentAt"] = body["originalTimestamp"]!.GetValue<string>().StartsWith('9') ? "0001-01-01T00:00:00Z" : "9999-12-31T00:00:00Z";
                    body.Remove("timestamp");
                    return Make("time-overflow", Raw(body), Expect.Reject, "sentAt");
                }

                return Make("empty", rng.Next(2) == 0 ? [] : "  \r\n "u8.ToArray(), Expect.Reject, segment ? null : bodyField);
        }
    }

    private delegate FuzzCase MakeCase(string category, byte[]? body, Expect expect, string? field, string? contentType = "application/json",
        bool auth = true, HttpMethod? method = null, string? pathOverride = null);

    private static FuzzCase MalformedJson(EndpointSpec ep, Random rng, int i, MakeCase make)
    {
        var segment = ep.Family == Family.SegmentJson;
        var body = ep.Valid(i);
        var text = body.ToJsonString();

        // Segment's 400 names the body in its message; the Track API's names "request body".
        string? Named(string trackField) => segment ? null : trackField;
        switch (rng.Next(12))
        {
            case 0:
                return make("truncated", Encoding.UTF8.GetBytes(text[..rng.Next(1, text.Length - 1)]), Expect.Reject, Named("request body"));
            case 1:
                {
                    // Invalid UTF-8 inside a string value or a key.
                    byte[][] bad = [[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xE2, 0x82]];
                    var inKey = rng.Next(2) == 0;
                    Set(body, $"{ep.FreeObject ?? "extra"}.{(inKey ? "k~BAD~" : "v")}", inKey ? "v" : "a~BAD~b");
                    var bytes = Replace(Encoding.UTF8.GetBytes(body.ToJsonString()), "~BAD~"u8, bad[rng.Next(bad.Length)]);
                    return make("invalid-utf8", bytes, Expect.Reject, Named(ep.FreeObject ?? "extra"));
                }

            case 2:
                {
                    // Escaped lone surrogates: valid JSON syntax, but not text.
                    var lone = Pick(rng, "\\ud800", "\\udc00", "x\\udbff", "\\ud800\\ud800");
                    Set(body, $"{ep.FreeObject ?? "extra"}.v", "~LONE~");
                    return make("lone-surrogate", Encoding.UTF8.GetBytes(body.ToJsonString().Replace("~LONE~", lone, StringComparison.Ordinal)), Expect.Reject,
                        Named(ep.FreeObject ?? "extra"));
                }

            case 3:
                {
                    var depth = rng.Next(2) == 0 ? 10_000 : rng.Next(33, 2000);
                    var nested = rng.Next(2) == 0
                        ? new string('[', depth) + new string(']', depth)
                        : string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);
                    var whole = rng.Next(3) == 0 ? nested : text[..^1] + ",\"deep\":" + nested + "}";
                    return make("deep-nesting", Encoding.UTF8.GetBytes(whole), Expect.Reject, Named("request body"));
                }

            case 4:
                {
                    var lit = Pick(rng, "NaN", "Infinity", "-Infinity", "undefined", "nan", "1e", "--1", "1.e5");
                    return make("bad-literal", Encoding.UTF8.GetBytes(text[..^1] + ",\"n\":" + lit + "}"), Expect.Reject, Named("request body"));
                }

            case 5:
                {
                    // Duplicate keys, at the top level or inside free data.
                    var key = body.First().Key;
                    var dup = rng.Next(2) == 0
                        ? text[..^1] + $",\"{key}\":{body[key]!.ToJsonString()}}}"
                        : text[..^1] + ",\"dupes\":{\"a\":1,\"a\":2}}";
                    return make("duplicate-keys", Encoding.UTF8.GetBytes(dup), Expect.Reject, segment ? null : dup.Contains("dupes", StringComparison.Ordinal) ? "dupes" : "request body");
                }

            case 6:
                return make("bom", [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(text)], Expect.Any, null);
            case 7:
                return make("utf16", Encoding.Unicode.GetBytes(text), Expect.Reject, Named("request body"));
            case 8:
                return make("not-an-object", Encoding.UTF8.GetBytes(Pick(rng, "null", "[]", "[{}]", "\"text\"", "42", "true", "[" + text + "]")),
                    Expect.Reject, segment ? null : "request body");
            default:
                return make("syntax", Encoding.UTF8.GetBytes(Malformed[rng.Next(Malformed.Length)]), Expect.Reject, Named("request body"));
        }
    }

    private static JsonNode? WrongValue(FieldSpec spec, Random rng)
    {
        JsonNode?[] options = spec.Kind switch
        {
            Kind.Str or Kind.Enum => [42, 1.5, true, new JsonObject(), new JsonObject { ["$where"] = "1" }, new JsonArray(), new JsonArray("a")],
            Kind.Id => [true, false, new JsonObject(), new JsonObject { ["id"] = "x" }, new JsonArray(), new JsonArray("x"), "", "   "],
            Kind.Unix => ["1780000000", true, new JsonObject(), new JsonArray(), -5, 1780000000000, RawToken("1e400"), RawToken("-1e400"), "2026-06-01T00:00:00Z"],
            Kind.Obj => ["text", 1, true, new JsonArray(), new JsonArray(new JsonObject())],
            Kind.Arr => ["text", 1, true, new JsonObject(), new JsonArray()],
            Kind.Bool => ["yes", "true", 1, 0, new JsonObject(), new JsonArray()],
            Kind.ConsentBool => ["yes", 1, 0, new JsonObject(), new JsonArray()],
            Kind.Phone => [4155550100, new JsonObject(), new JsonArray(), "not a phone", "+1", "12"],
            Kind.Iso => [1780000000, true, new JsonObject(), "yesterday", "2026-13-45T99:99:99Z"],
            _ => [new JsonObject(), new JsonArray()], // Scalar
        };
        var pick = options[rng.Next(options.Length)];
        if (spec.Kind == Kind.Enum && rng.Next(3) == 0)
        {
            pick = Hostile[rng.Next(Hostile.Length - 1)];
        }

        if (spec.Required && rng.Next(6) == 0)
        {
            pick = null;
        }

        return pick;
    }

    private static (string Segment, Expect Expect, string? Field) PathSegment(Random rng) => rng.Next(9) switch
    {
        0 => (new string('a', 151), Expect.Reject, "identifier"),
        1 => (Uri.EscapeDataString(new string('é', 76)), Expect.Reject, "identifier"),
        2 => (new string('z', rng.Next(152, 6000)), Expect.Reject, "identifier"),
        3 => ("%01%02", Expect.Reject, "identifier"),
        4 => ("a%40", Expect.Reject, "identifier"), // "a@": an email without a domain
        5 => ("..%2F..%2Fadmin%2Fv1%2Fstats", Expect.Any, null),
        6 => ("%FF%FE%00", Expect.Any, null),
        7 => ("cio_" + Uri.EscapeDataString(Hostile[rng.Next(Hostile.Length)]), Expect.Any, null),
        _ => (Uri.EscapeDataString(Hostile[rng.Next(Hostile.Length)]), Expect.Any, null),
    };

    // ---- Track API calls without a body ----------------------------------------------------------------------------

    private static FuzzCase NoBodyCase(EndpointSpec ep, Random rng, int i)
    {
        FuzzCase Make(string category, string path, Expect expect, string? field, IReadOnlyList<KeyValuePair<string, string>>? headers = null, HttpMethod? method = null, byte[]? body = null) =>
            new(i, ep.Name, category, method ?? ep.Method, path, body, body is null ? null : "application/json", headers ?? Auth(Family.TrackJson), expect, field);

        return rng.Next(5) switch
        {
            0 => Make("auth", ep.Path(rng, i), Expect.Reject, null, BadAuth(Family.TrackJson, rng)),
            1 => Make("method", ep.Path(rng, i), Expect.Reject, null, method: rng.Next(2) == 0 ? HttpMethod.Get : HttpMethod.Patch),
            2 => Make("ignored-body", ep.Path(rng, i), Expect.Any, null, body: Encoding.UTF8.GetBytes(Malformed[rng.Next(Malformed.Length)])),
            _ => PathSegment(rng) is var (seg, expect, field) ? Make("path", ep.PathWithId(seg), expect, field) : throw new InvalidOperationException(),
        };
    }

    // ---- Twilio ----------------------------------------------------------------------------------------------------

    private FuzzCase TwilioCase(EndpointSpec ep, Random rng, int i)
    {
        var status = ep.Name.EndsWith("status", StringComparison.Ordinal);
        var messageId = Uri.EscapeDataString(rng.Next(3) == 0 ? Hostile[rng.Next(Hostile.Length)] : $"m{i}");
        var path = status ? $"/webhooks/twilio/status?message_id={messageId}" : "/webhooks/twilio/sms";
        var form = new List<KeyValuePair<string, string>>
        {
            new("AccountSid", TwilioPeer.AccountSid), new("MessageSid", $"SM{i:x32}"), new("From", "+14155550" + rng.Next(100, 999).ToString(CultureInfo.InvariantCulture)),
            new("To", "+14155550000"), new("Body", "hello"), new("NumMedia", "0"),
        };
        if (status)
        {
            form.Add(new("MessageStatus", "delivered"));
        }

        FuzzCase Signed(string category, List<KeyValuePair<string, string>> f, Expect expect, string? field = null, string? pathOverride = null) =>
            new(i, ep.Name, category, HttpMethod.Post, pathOverride ?? path, Encoding.UTF8.GetBytes(FormText(f)), "application/x-www-form-urlencoded",
                [new("X-Twilio-Signature", WebhookSigning.Twilio(TwilioPeer.AuthToken, publicBase + (pathOverride ?? path), f))], expect, field);

        switch (rng.Next(12))
        {
            case 0:
                return Signed("unsigned", form, Expect.Reject) with { Headers = [] };
            case 1:
                return Signed("bad-signature", form, Expect.Reject) with
                {
                    Headers = [new("X-Twilio-Signature", Pick(rng, "x", "AAAA", "not base64!!", Convert.ToBase64String(RandomBytes(rng, 20)), new string('A', 5000)))],
                };
            case 2:
                {
                    // Signed with the wrong token, over another URL, or over other fields than the ones posted.
                    var c = Signed("forged", form, Expect.Reject);
                    var sig = rng.Next(3) switch
                    {
                        0 => WebhookSigning.Twilio("wrong-token-wrong-token-wrong-tok", publicBase + path, form),
                        1 => WebhookSigning.Twilio(TwilioPeer.AuthToken, "https://evil.example.com" + path, form),
                        _ => WebhookSigning.Twilio(TwilioPeer.AuthToken, publicBase + path, [.. form, new("Extra", "1")]),
                    };
                    return c with { Headers = [new("X-Twilio-Signature", sig)] };
                }

            case 3:
                {
                    // Signed, with hostile fields that are not a keyword: answered, nothing recorded.
                    var f = form.Select(p => p.Key is "Body" or "From" or "To" or "AccountSid" ? new KeyValuePair<string, string>(p.Key, Hostile[rng.Next(Hostile.Length)]) : p).ToList();
                    if (status)
                    {
                        f.RemoveAll(p => p.Key == "MessageStatus");
                        f.Add(new("MessageStatus", Pick(rng, "queued", "sending", "accepted", "receiving", Hostile[rng.Next(Hostile.Length)])));
                    }

                    return Signed("signed-hostile", f, Expect.NoChange);
                }

            case 4:
                {
                    // Signed keyword from something that is not a phone number: nothing recorded.
                    var f = form.Select(p => p.Key switch
                    {
                        "Body" => new KeyValuePair<string, string>("Body", Pick(rng, "STOP", " start ", "help", "UNSUBSCRIBE")),
                        "From" => new("From", Pick(rng, "+1", "14155550100", "+0123456789", "'; DROP TABLE profiles; --", "+1415555010\u0000")),
                        _ => p,
                    }).ToList();
                    return status ? Signed("signed-missing-sid", [.. form.Where(p => p.Key != "MessageSid")], Expect.Reject, "MessageSid") : Signed("signed-keyword-bad-from", f, Expect.NoChange);
                }

            case 5:
                {
                    // JSON (or nothing) to a form endpoint, signed as Twilio would sign a request without parameters.
                    var body = rng.Next(2) == 0 ? "{\"Body\":\"STOP\",\"From\":\"+14155550100\",\"MessageSid\":\"SMx\"}"u8.ToArray() : [];
                    var ct = Pick(rng, "application/json", "text/plain", null);
                    return new(i, ep.Name, "json-to-form", HttpMethod.Post, path, body, ct,
                        [new("X-Twilio-Signature", WebhookSigning.Twilio(TwilioPeer.AuthToken, publicBase + path, []))], status ? Expect.Reject : Expect.NoChange,
                        status ? "MessageSid" : null);
                }

            case 6:
                {
                    // More fields than a form may hold, or a value too large: rejected before the signature is even checked.
                    var many = Enumerable.Range(0, rng.Next(1025, 3000)).Select(n => new KeyValuePair<string, string>($"f{n}", "v")).ToList();
                    return Signed("too-many-fields", many, Expect.Reject, "form");
                }

            case 7:
                {
                    // Multipart with a missing or wrong boundary, or a body that ends mid-part.
                    var (ct, body) = rng.Next(3) switch
                    {
                        0 => ("multipart/form-data", "--x\r\nContent-Disposition: form-data; name=\"Body\"\r\n\r\nSTOP\r\n--x--"),
                        1 => ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"Body\"\r\n\r\nSTOP"),
                        _ => ("multipart/form-data; boundary=" + new string('b', 200), "garbage"),
                    };
                    return new(i, ep.Name, "broken-multipart", HttpMethod.Post, path, Encoding.UTF8.GetBytes(body), ct, [new("X-Twilio-Signature", "x")], Expect.Reject, "form");
                }

            case 8:
                {
                    // Percent-encoding garbage in the form body.
                    var body = Pick(rng, "Body=%ZZ&From=%", "Body=%FF%FE&From=%2B1415", "%%%%=%%", "Body=" + new string('%', 100), "=&=&&&");
                    return new(i, ep.Name, "form-garbage", HttpMethod.Post, path, Encoding.UTF8.GetBytes(body), "application/x-www-form-urlencoded",
                        [new("X-Twilio-Signature", "x")], Expect.Reject, null);
                }

            case 9:
                return new(i, ep.Name, "method", rng.Next(2) == 0 ? HttpMethod.Get : HttpMethod.Put, path, null, null, [], Expect.Reject, null);
            case 10:
                {
                    // Hostile query strings on the status callback (also signed, so they reach the parser).
                    var q = Pick(rng, "", "?message_id=", "?message_id=%00", "?message_id=" + new string('m', 4000), "?message_id=a&message_id=b", "?%ZZ=1");
                    var p = status ? "/webhooks/twilio/status" + q : "/webhooks/twilio/sms" + q;
                    return Signed("query", form, status ? Expect.Any : Expect.NoChange, pathOverride: p);
                }

            default:
                return Signed("signed-valid-hostile", [.. form.Where(p => p.Key != "Body"), new("Body", rng.Next(2) == 0 ? "STOP" : "START")], Expect.Any);
        }
    }

    private static string FormText(IEnumerable<KeyValuePair<string, string>> f) =>
        string.Join('&', f.Select(p => Uri.EscapeDataString(p.Key) + "=" + Uri.EscapeDataString(p.Value)));

    // ---- SendGrid --------------------------------------------------------------------------------------------------

    private FuzzCase SendGridCase(EndpointSpec ep, Random rng, int i)
    {
        var events = new JsonArray(new JsonObject
        {
            ["email"] = $"s{i}@example.com",
            ["timestamp"] = 1780322500,
            ["event"] = "delivered",
            ["sg_event_id"] = $"ev-{i}",
            ["sg_message_id"] = "x.1",
            ["delivery_id"] = $"m{i}",
        });
        FuzzCase Signed(string category, byte[] body, Expect expect, string? field = null) => new(i, ep.Name, category, HttpMethod.Post, "/webhooks/sendgrid", body,
            "application/json", [new(SendGridWebhookHeaders.Signature, WebhookSigning.SendGrid(sendGridKey, SendGridTimestamp, body)), new(SendGridWebhookHeaders.Timestamp, SendGridTimestamp)],
            expect, field);
        var valid = Encoding.UTF8.GetBytes(events.ToJsonString());
        switch (rng.Next(10))
        {
            case 0:
                return Signed("unsigned", valid, Expect.Reject) with { Headers = rng.Next(2) == 0 ? [] : [new(SendGridWebhookHeaders.Signature, "x")] };
            case 1:
                {
                    var sig = rng.Next(4) switch
                    {
                        0 => "not base64!!",
                        1 => Convert.ToBase64String(RandomBytes(rng, 72)),
                        2 => WebhookSigning.SendGrid(sendGridKey, "1780322401", valid),
                        _ => WebhookSigning.SendGrid(sendGridKey, SendGridTimestamp, [.. valid, (byte)' ']),
                    };
                    return Signed("bad-signature", valid, Expect.Reject) with
                    {
                        Headers = [new(SendGridWebhookHeaders.Signature, sig), new(SendGridWebhookHeaders.Timestamp, SendGridTimestamp)],
                    };
                }

            case 2:
                {
                    var text = events.ToJsonString();
                    var bad = rng.Next(6) switch
                    {
                        0 => Encoding.UTF8.GetBytes(text[..rng.Next(1, text.Length - 1)]),
                        1 => Encoding.UTF8.GetBytes(new string('[', 10_000) + new string(']', 10_000)),
                        2 => Encoding.UTF8.GetBytes(Malformed[rng.Next(Malformed.Length)]),
                        3 => Replace(Encoding.UTF8.GetBytes(text.Replace("delivered", "deliv~BAD~ered", StringComparison.Ordinal)), "~BAD~"u8, [0xC3]),
                        4 => Encoding.UTF8.GetBytes(text.Replace("\"x.1\"", "\"\\ud800\"", StringComparison.Ordinal)),
                        _ => Encoding.UTF8.GetBytes(text.Replace("\"event\":", "\"event\":\"open\",\"event\":", StringComparison.Ordinal)),
                    };
                    return Signed("signed-malformed", bad, Expect.Reject, "body");
                }

            case 3:
                return Signed("signed-not-array", Encoding.UTF8.GetBytes(Pick(rng, "{}", "null", "\"x\"", "1", "")), Expect.Reject, "body");
            case 4:
                {
                    // Signed events Nudge does not record: unknown kinds, missing ids, wrong types.
                    var e = (JsonObject)events[0]!;
                    switch (rng.Next(4))
                    {
                        case 0: e["event"] = Hostile[rng.Next(Hostile.Length)]; break;
                        case 1: e.Remove("sg_event_id"); break;
                        case 2: e["event"] = new JsonArray("delivered"); break;
                        default: e["sg_event_id"] = new JsonObject { ["$where"] = "1" }; break;
                    }

                    events.Add(1);
                    events.Add("text");
                    events.Add(null);
                    return Signed("signed-ignored", Encoding.UTF8.GetBytes(events.ToJsonString()), Expect.NoChange);
                }

            case 5:
                {
                    var body = new byte[(2 * 1024 * 1024) + 1 + rng.Next(1000)];
                    Array.Fill(body, (byte)' ');
                    return Signed("oversize", body, Expect.Reject) with { Chunked = rng.Next(2) == 0 };
                }

            case 6:
                return new(i, ep.Name, "method", rng.Next(2) == 0 ? HttpMethod.Get : HttpMethod.Put, "/webhooks/sendgrid", null, null, [], Expect.Reject, null);
            default:
                {
                    // Signed events with hostile fields: recorded (or ignored) as the text they are.
                    var e = (JsonObject)events[0]!;
                    foreach (var key in new[] { "email", "delivery_id", "sg_event_id", "sg_message_id", "reason", "type" })
                    {
                        if (rng.Next(2) == 0)
                        {
                            e[key] = Hostile[rng.Next(Hostile.Length)];
                        }
                    }

                    e["event"] = Pick(rng, "delivered", "bounce", "dropped", "open", "click", "unsubscribe", "spamreport");
                    e["timestamp"] = new JsonNode?[] { -1, 0, long.MaxValue, 1e300, "soon", null }[rng.Next(6)];
                    return Signed("signed-hostile", Encoding.UTF8.GetBytes(events.ToJsonString()), Expect.Any);
                }
        }
    }

    // ---- Signed links: pixel, click, unsubscribe -------------------------------------------------------------------

    private static FuzzCase TokenCase(EndpointSpec ep, Random rng, int i)
    {
        var token = rng.Next(7) switch
        {
            0 => new string('A', rng.Next(100, 6000)),
            1 => Uri.EscapeDataString(Hostile[rng.Next(Hostile.Length)]),
            2 => "..%2F..%2Fadmin%2Fv1%2Fstats",
            3 => "%FF%FE%00%01",
            4 => Convert.ToBase64String(RandomBytes(rng, rng.Next(1, 200))).Replace('+', '-').Replace('/', '_').TrimEnd('='),
            5 => "eyJhbGciOiJub25lIn0.eyJtIjoieCJ9.",
            _ => Uri.EscapeDataString(Convert.ToBase64String(RandomBytes(rng, 48))),
        };
        var path = ep.PathWithId(token);
        if (rng.Next(6) == 0)
        {
            return new(i, ep.Name, "method", rng.Next(2) == 0 ? HttpMethod.Put : HttpMethod.Delete, path, null, null, [], Expect.Reject, null);
        }

        // The pixel answers the GIF whatever the token; the others answer 404. Neither records anything for a bad token.
        var pixel = ep.Name.Contains("/e/o/", StringComparison.Ordinal);
        var body = ep.Method == HttpMethod.Post ? Encoding.UTF8.GetBytes(rng.Next(2) == 0 ? "List-Unsubscribe=One-Click" : Malformed[rng.Next(Malformed.Length)]) : null;
        return new(i, ep.Name, "bad-token", ep.Method, path, body, body is null ? null : "application/x-www-form-urlencoded", [], pixel ? Expect.NoChange : Expect.Reject, null);
    }

    // ---- Admin API reads -------------------------------------------------------------------------------------------

    private static FuzzCase AdminCase(EndpointSpec ep, Random rng, int i)
    {
        string H() => Uri.EscapeDataString(Hostile[rng.Next(Hostile.Length)]);
        string Q() => Pick(rng, "abc", "-1", "0", "99999999999999999999", "1e3", "%00", "", H(), "1.5", "NaN");
        var path = ep.Name switch
        {
            "GET /admin/v1/profiles/{id}" => $"/admin/v1/profiles/{(rng.Next(4) == 0 ? new string('p', 5000) : H())}?events={Q()}",
            "GET /admin/v1/profiles" => $"/admin/v1/profiles?{Pick(rng, "email", "id", "anonymous_id", "x")}={H()}&events={Q()}",
            "GET /admin/v1/messages" => $"/admin/v1/{(rng.Next(2) == 0 ? $"messages/{H()}" : $"profiles/{H()}/messages?limit={Q()}")}",
            "GET /admin/v1/reports" => rng.Next(5) switch
            {
                0 => $"/admin/v1/reports/delivery?from={Q()}&to={Q()}",
                1 => $"/admin/v1/reports/token-coverage?days={Q()}",
                2 => $"/admin/v1/reports/segments/{H()}?limit={Q()}&after={H()}&days={Q()}&channel={H()}",
                3 => $"/admin/v1/reports/message-log?limit={Q()}&after={H()}&from={Q()}&channel={H()}",
                _ => $"/admin/v1/outbox?limit={Q()}",
            },
            _ => $"/admin/v1/profiles/{H()}/journeys",
        };
        return rng.Next(5) switch
        {
            0 => new(i, ep.Name, "auth", HttpMethod.Get, path, null, null, BadAuth(Family.Admin, rng), Expect.Reject, null),
            // DELETE is the erase on a profile by id, so that path gets PUT as its wrong method.
            1 => new(i, ep.Name, "method", rng.Next(2) == 0 ? HttpMethod.Post : ep.Name == "GET /admin/v1/profiles/{id}" ? HttpMethod.Put : HttpMethod.Delete,
                path, "{}"u8.ToArray(), "application/json", Auth(Family.Admin), Expect.Reject, null),
            _ => new(i, ep.Name, "hostile-read", HttpMethod.Get, path, null, null, Auth(Family.Admin), Expect.NoChange, null),
        };
    }

    // ---- credentials -----------------------------------------------------------------------------------------------

    private static IReadOnlyList<KeyValuePair<string, string>> Auth(Family f) => f switch
    {
        Family.SegmentJson => [new("Authorization", "Basic " + Basic(WriteKey, ""))],
        Family.Admin => [new("Authorization", "Bearer " + AdminKey)],
        _ => [new("Authorization", "Basic " + Basic(SiteId, ApiKey))],
    };

    private static IReadOnlyList<KeyValuePair<string, string>> BadAuth(Family f, Random rng)
    {
        var options = new[]
        {
            "Basic " + Basic(SiteId, "wrong"), "Basic " + Basic("wrong", ApiKey), "Basic !!!notbase64", "Basic ", "Basic " + Basic(WriteKey + "x", ""),
            "Bearer " + AdminKey, "Basic " + Basic(SiteId + "\u0000", ApiKey), "Digest x", "Basic " + Basic(new string('a', 5000), ""), "Bearer " + AdminKey + "x",
            "Basic " + Convert.ToBase64String([0xFF, 0xFE, 0x3A, 0xC3]), "Basic " + Basic(ApiKey, SiteId), "Basic " + Basic(AdminKey, ""),
        };
        var pick = options[rng.Next(options.Length)];
        if (f == Family.Admin && pick == "Bearer " + AdminKey)
        {
            pick = "Basic " + Basic(SiteId, ApiKey);
        }

        if ((f == Family.TrackJson && pick == "Basic " + Basic(SiteId, ApiKey)) || (f == Family.SegmentJson && pick.StartsWith("Basic " + Basic(WriteKey, ""), StringComparison.Ordinal)))
        {
            pick = "Basic !!!notbase64";
        }

        return rng.Next(5) == 0 ? [] : [new("Authorization", pick)];
    }

    // ---- helpers ---------------------------------------------------------------------------------------------------

    /// <summary>A placeholder that <see cref="Raw"/> writes as the raw JSON token (e.g. 1e400, which no .NET number holds).</summary>
    private static JsonNode RawToken(string token) => JsonValue.Create("~RAW~" + token + "~RAW~");

    private static byte[] Raw(JsonObject body)
    {
        var text = body.ToJsonString();
        var start = text.IndexOf("\"~RAW~", StringComparison.Ordinal);
        while (start >= 0)
        {
            var end = text.IndexOf("~RAW~\"", start + 6, StringComparison.Ordinal);
            var token = System.Text.RegularExpressions.Regex.Unescape(text[(start + 6)..end]);
            text = text[..start] + token + text[(end + 6)..];
            start = text.IndexOf("\"~RAW~", StringComparison.Ordinal);
        }

        return Encoding.UTF8.GetBytes(text);
    }

    private static void Set(JsonObject body, string path, JsonNode? value)
    {
        // "a.b[0].c": walk (and create) objects; an index selects an array item.
        var parts = path.Split('.');
        JsonNode node = body;
        for (var k = 0; k < parts.Length; k++)
        {
            var part = parts[k];
            var bracket = part.IndexOf('[', StringComparison.Ordinal);
            var name = bracket < 0 ? part : part[..bracket];
            var last = k == parts.Length - 1;
            var o = (JsonObject)node;
            if (bracket >= 0)
            {
                var idx = int.Parse(part[(bracket + 1)..^1], CultureInfo.InvariantCulture);
                var arr = (JsonArray)o[name]!;
                if (last)
                {
                    arr[idx] = value;
                    return;
                }

                node = arr[idx]!;
                continue;
            }

            if (last)
            {
                o[name] = value;
                return;
            }

            if (o[name] is not JsonObject child)
            {
                child = [];
                o[name] = child;
            }

            node = child;
        }
    }

    /// <summary>Sets <paramref name="key"/> taken literally (it may hold dots or brackets) in the object at <paramref name="objectPath"/>.</summary>
    private static void SetKey(JsonObject body, string objectPath, string key, JsonNode? value)
    {
        Set(body, objectPath + ".~KEY~", null);
        var parent = (JsonObject)body.Root;
        foreach (var part in objectPath.Split('.'))
        {
            var bracket = part.IndexOf('[', StringComparison.Ordinal);
            parent = bracket < 0 ? (JsonObject)parent[part]! : (JsonObject)((JsonArray)parent[part[..bracket]]!)[int.Parse(part[(bracket + 1)..^1], CultureInfo.InvariantCulture)]!;
        }

        parent.Remove("~KEY~");
        parent[key] = value;
    }

    private static byte[] Replace(byte[] haystack, ReadOnlySpan<byte> needle, byte[] with)
    {
        var at = haystack.AsSpan().IndexOf(needle);
        return [.. haystack.AsSpan(0, at), .. with, .. haystack.AsSpan(at + needle.Length)];
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    private static string Pad(int bytes) => new('x', bytes);

    private static T Pick<T>(Random rng, params T[] options) => options[rng.Next(options.Length)];

    // ---- the endpoints ---------------------------------------------------------------------------------------------

    private enum Family
    {
        TrackJson,
        TrackNoBody,
        SegmentJson,
        Twilio,
        SendGrid,
        Token,
        Admin,
    }

    private enum Kind
    {
        Str,
        Enum,
        Id,
        Unix,
        Obj,
        Arr,
        Bool,
        ConsentBool,
        Phone,
        Iso,
        Scalar,
    }

    private sealed record FieldSpec(string Path, Kind Kind, bool Required = false);

    private sealed record EndpointSpec(string Name, Family Family, HttpMethod Method, string Template, Func<int, JsonObject> Valid, FieldSpec[] Fields,
        Func<Random, int, (string Name, byte[] Body, string? Field, bool Is413)?> Oversize, string? FreeObject = null, string FieldPrefix = "")
    {
        public bool PathId => Template.Contains("{id}", StringComparison.Ordinal);

        public string PathWithId(string id) => Template.Replace("{id}", id, StringComparison.Ordinal).Replace("{token}", "tok", StringComparison.Ordinal);

        public string Path(Random rng, int i) => PathWithId($"p{i}");
    }

    private static List<EndpointSpec> BuildEndpoints()
    {
        static (string, byte[], string?, bool)? Big(Random rng, Func<int, JsonObject> valid, int i, params (string Name, string Path, JsonNode? Value, string Field)[] options)
        {
            var pick = rng.Next(options.Length + 1);
            if (pick == options.Length)
            {
                // Over the 1 MiB request limit (by Content-Length, before anything is parsed).
                var body = valid(i);
                body["pad"] = Pad((1024 * 1024) + rng.Next(1, 5000));
                return ("body-over-1MiB", Raw(body), null, true);
            }

            var (name, path, value, field) = options[pick];
            var b = valid(i);
            Set(b, path, value);
            return (name, Raw(b), field, false);
        }

        static JsonObject ManyAttrs(int n) => new(Enumerable.Range(0, n).Select(k => KeyValuePair.Create<string, JsonNode?>($"a{k}", k)));

        var unix = 1780000000;
        JsonObject Identify(int i) => new() { ["email"] = $"u{i}@example.com", ["first_name"] = "Dana", ["sms_consent"] = true, ["phone"] = "+14155550100", ["_timestamp"] = unix };
        JsonObject Event(int i) => new() { ["name"] = "add_to_cart", ["id"] = $"e{i}", ["type"] = "event", ["timestamp"] = unix, ["data"] = new JsonObject { ["cart_id"] = "c1", ["value"] = 12.5 } };
        JsonObject Anon(int i) => new() { ["name"] = "page_view", ["anonymous_id"] = $"a{i}", ["data"] = new JsonObject { ["url"] = "/" } };
        JsonObject Device(int i) => new() { ["device"] = new JsonObject { ["id"] = $"tok{i}", ["platform"] = "ios", ["last_used"] = unix, ["attributes"] = new JsonObject { ["app_version"] = "1.0" } } };
        JsonObject MergeBody(int i) => new() { ["primary"] = new JsonObject { ["id"] = $"p{i}" }, ["secondary"] = new JsonObject { ["email"] = $"s{i}@example.com" } };
        JsonObject Push(int i) => new() { ["delivery_id"] = $"d{i}", ["event"] = "opened", ["device_id"] = "tok", ["timestamp"] = unix };
        JsonObject Metric(int i) => new() { ["delivery_id"] = $"d{i}", ["metric"] = "clicked", ["recipient"] = "x@example.com", ["timestamp"] = unix };

        JsonObject SegIdentify(int i) => new() { ["userId"] = $"u{i}", ["messageId"] = $"m{i}", ["timestamp"] = "2026-06-01T00:00:00Z", ["traits"] = new JsonObject { ["email"] = $"u{i}@example.com", ["plan"] = "pro" }, ["context"] = new JsonObject { ["ip"] = "10.0.0.1" } };
        JsonObject SegTrack(int i) => new() { ["userId"] = $"u{i}", ["messageId"] = $"m{i}", ["event"] = "Order Completed", ["properties"] = new JsonObject { ["total"] = 10 }, ["context"] = new JsonObject { ["device"] = new JsonObject { ["token"] = $"tok{i}", ["type"] = "ios" } } };
        JsonObject SegPage(int i) => new() { ["anonymousId"] = $"a{i}", ["name"] = "Home", ["properties"] = new JsonObject { ["path"] = "/" } };
        JsonObject SegGroup(int i) => new() { ["userId"] = $"u{i}", ["groupId"] = "g1", ["traits"] = new JsonObject { ["name"] = "Acme" } };
        JsonObject SegAlias(int i) => new() { ["userId"] = $"u{i}", ["previousId"] = $"a{i}" };
        JsonObject SegBatch(int i)
        {
            var t = SegTrack(i);
            t["type"] = "track";
            var id = SegIdentify(i);
            id["type"] = "identify";
            id["messageId"] = $"m{i}-2";
            return new JsonObject { ["batch"] = new JsonArray(t, id), ["sentAt"] = "2026-06-01T00:00:00Z" };
        }

        FieldSpec[] segCommon = [new("userId", Kind.Id), new("anonymousId", Kind.Id), new("messageId", Kind.Id), new("timestamp", Kind.Iso), new("originalTimestamp", Kind.Iso), new("sentAt", Kind.Iso), new("context", Kind.Obj), new("context.ip", Kind.Str)];

        (string, byte[], string?, bool)? SegBig(Random rng, Func<int, JsonObject> valid, int i, string free)
        {
            var b = valid(i);
            switch (rng.Next(4))
            {
                case 0:
                    Set(b, free + ".pad", Pad((32 * 1024) + rng.Next(1, 2000)));
                    return ("call-over-32KB", Raw(b), "32768", false);
                case 1:
                    Set(b, free + ".pad", Pad((64 * 1024) + rng.Next(1, 500_000)));
                    return ("body-over-64KB", Raw(b), "32768", false);
                case 2:
                    b["userId"] = Pad(151);
                    return ("userId-151-bytes", Raw(b), "userId", false);
                default:
                    b["messageId"] = string.Concat(Enumerable.Repeat("é", 76));
                    return ("messageId-152-bytes", Raw(b), "messageId", false);
            }
        }

        return
        [
            new("PUT /api/v1/customers/{id}", Family.TrackJson, HttpMethod.Put, "/api/v1/customers/{id}", Identify,
                [new("id", Kind.Id), new("email", Kind.Str), new("anonymous_id", Kind.Id), new("_timestamp", Kind.Unix), new("_update", Kind.Bool), new("created_at", Kind.Unix), new("sms_consent", Kind.ConsentBool), new("phone", Kind.Phone)],
                (rng, i) => rng.Next(7) == 0 ? ("301-attributes", Raw(ManyAttrs(301)), "attributes", false) : Big(rng, Identify, i,
                    ("attribute-value-1001-bytes", "plan", Pad(1001), "attributes.plan"),
                    ("attribute-name-151-bytes", Pad(151), "x", "attributes"), ("email-255-bytes", "email", Pad(243) + "@example.com", "email"),
                    ("id-151-bytes", "anonymous_id", Pad(151), "anonymous_id"), ("object-attribute-1001-bytes", "nested", new JsonObject { ["a"] = Pad(1000) }, "attributes.nested")),
                FreeObject: "extra"),
            new("POST /api/v1/customers/{id}/events", Family.TrackJson, HttpMethod.Post, "/api/v1/customers/{id}/events", Event,
                [new("name", Kind.Str, true), new("id", Kind.Id), new("type", Kind.Enum), new("timestamp", Kind.Unix), new("data", Kind.Obj)],
                (rng, i) => Big(rng, Event, i, ("name-101-bytes", "name", Pad(101), "name"), ("data-over-100000-bytes", "data.big", Pad(100_001), "data"),
                    ("id-151-bytes", "id", Pad(151), "id")),
                FreeObject: "data"),
            new("POST /api/v1/events", Family.TrackJson, HttpMethod.Post, "/api/v1/events", Anon,
                [new("name", Kind.Str, true), new("anonymous_id", Kind.Id), new("id", Kind.Id), new("type", Kind.Enum), new("timestamp", Kind.Unix), new("data", Kind.Obj)],
                (rng, i) => Big(rng, Anon, i, ("anonymous_id-151-bytes", "anonymous_id", Pad(151), "anonymous_id"), ("data-over-100000-bytes", "data.big", Pad(100_001), "data")),
                FreeObject: "data"),
            new("PUT /api/v1/customers/{id}/devices", Family.TrackJson, HttpMethod.Put, "/api/v1/customers/{id}/devices", Device,
                [new("device", Kind.Obj, true), new("device.id", Kind.Id, true), new("device.platform", Kind.Enum, true), new("device.last_used", Kind.Unix), new("device.attributes", Kind.Obj), new("device.attributes.app_version", Kind.Scalar)],
                (rng, i) => Big(rng, Device, i, ("token-151-bytes", "device.id", Pad(151), "device.id"), ("device-attribute-1001-bytes", "device.attributes.x", Pad(1001), "device.attributes"),
                    ("301-device-attributes", "device.attributes", ManyAttrs(301), "device.attributes")),
                FreeObject: "device.attributes"),
            new("POST /api/v1/merge_customers", Family.TrackJson, HttpMethod.Post, "/api/v1/merge_customers", MergeBody,
                [new("primary", Kind.Obj, true), new("secondary", Kind.Obj, true), new("primary.id", Kind.Id, true), new("secondary.email", Kind.Str, true)],
                (rng, i) => Big(rng, MergeBody, i, ("primary-id-151-bytes", "primary.id", Pad(151), "primary.id"), ("secondary-email-255-bytes", "secondary.email", Pad(243) + "@example.com", "secondary.email"))),
            new("POST /api/v1/push/events", Family.TrackJson, HttpMethod.Post, "/api/v1/push/events", Push,
                [new("delivery_id", Kind.Id, true), new("event", Kind.Enum, true), new("device_id", Kind.Id), new("timestamp", Kind.Unix)],
                (rng, i) => Big(rng, Push, i, ("delivery_id-601-bytes", "delivery_id", Pad(601), "delivery_id"), ("device_id-601-bytes", "device_id", Pad(601), "device_id"))),
            new("POST /api/v1/metrics", Family.TrackJson, HttpMethod.Post, "/api/v1/metrics", Metric,
                [new("delivery_id", Kind.Id, true), new("metric", Kind.Enum, true), new("recipient", Kind.Id), new("timestamp", Kind.Unix)],
                (rng, i) => Big(rng, Metric, i, ("delivery_id-601-bytes", "delivery_id", Pad(601), "delivery_id"), ("recipient-601-bytes", "recipient", Pad(601), "recipient"))),
            new("DELETE /api/v1/customers/{id}", Family.TrackNoBody, HttpMethod.Delete, "/api/v1/customers/{id}", _ => [], [], (_, _) => null),
            new("DELETE /api/v1/customers/{id}/devices/{token}", Family.TrackNoBody, HttpMethod.Delete, "/api/v1/customers/{id}/devices/{token}", _ => [], [], (_, _) => null),
            new("POST /api/v1/customers/{id}/suppress", Family.TrackNoBody, HttpMethod.Post, "/api/v1/customers/{id}/suppress", _ => [], [], (_, _) => null),
            new("POST /api/v1/customers/{id}/unsuppress", Family.TrackNoBody, HttpMethod.Post, "/api/v1/customers/{id}/unsuppress", _ => [], [], (_, _) => null),

            new("POST /v1/identify", Family.SegmentJson, HttpMethod.Post, "/v1/identify", SegIdentify,
                [.. segCommon, new("traits", Kind.Obj), new("traits.email", Kind.Str), new("traits.sms_consent", Kind.ConsentBool), new("type", Kind.Enum)],
                (rng, i) => SegBig(rng, SegIdentify, i, "traits"), FreeObject: "traits"),
            new("POST /v1/track", Family.SegmentJson, HttpMethod.Post, "/v1/track", SegTrack,
                [.. segCommon, new("event", Kind.Str, true), new("properties", Kind.Obj), new("context.device", Kind.Obj), new("context.device.token", Kind.Id), new("context.device.type", Kind.Str)],
                (rng, i) => SegBig(rng, SegTrack, i, "properties"), FreeObject: "properties"),
            new("POST /v1/page", Family.SegmentJson, HttpMethod.Post, "/v1/page", SegPage,
                [.. segCommon, new("name", Kind.Str), new("properties", Kind.Obj)], (rng, i) => SegBig(rng, SegPage, i, "properties"), FreeObject: "properties"),
            new("POST /v1/screen", Family.SegmentJson, HttpMethod.Post, "/v1/screen", SegPage,
                [.. segCommon, new("name", Kind.Str), new("properties", Kind.Obj)], (rng, i) => SegBig(rng, SegPage, i, "properties"), FreeObject: "properties"),
            new("POST /v1/group", Family.SegmentJson, HttpMethod.Post, "/v1/group", SegGroup,
                [.. segCommon, new("groupId", Kind.Id, true), new("traits", Kind.Obj)], (rng, i) => SegBig(rng, SegGroup, i, "traits"), FreeObject: "traits"),
            new("POST /v1/alias", Family.SegmentJson, HttpMethod.Post, "/v1/alias", SegAlias,
                [new("userId", Kind.Id, true), new("previousId", Kind.Id, true), new("messageId", Kind.Id), new("timestamp", Kind.Iso)], (rng, i) => SegBig(rng, SegAlias, i, "context")),
            new("POST /v1/batch", Family.SegmentJson, HttpMethod.Post, "/v1/batch", SegBatch,
                [new("batch", Kind.Arr, true), new("batch[0]", Kind.Obj), new("batch[0].type", Kind.Enum, true), new("batch[0].event", Kind.Str, true), new("batch[0].userId", Kind.Id),
                    new("batch[1].traits", Kind.Obj), new("batch[1].traits.email", Kind.Str), new("batch[0].timestamp", Kind.Iso), new("sentAt", Kind.Iso)],
                BatchBig, FreeObject: "batch[0].properties"),
            new("POST /v1/import", Family.SegmentJson, HttpMethod.Post, "/v1/import", SegBatch,
                [new("batch", Kind.Arr, true), new("batch[0].event", Kind.Str, true), new("batch[1].userId", Kind.Id), new("batch[0].context.device", Kind.Obj)],
                BatchBig, FreeObject: "batch[1].traits"),

            new("POST /webhooks/twilio/sms", Family.Twilio, HttpMethod.Post, "/webhooks/twilio/sms", _ => [], [], (_, _) => null),
            new("POST /webhooks/twilio/status", Family.Twilio, HttpMethod.Post, "/webhooks/twilio/status", _ => [], [], (_, _) => null),
            new("POST /webhooks/sendgrid", Family.SendGrid, HttpMethod.Post, "/webhooks/sendgrid", _ => [], [], (_, _) => null),
            new("GET /e/o/{token}", Family.Token, HttpMethod.Get, "/e/o/{id}", _ => [], [], (_, _) => null),
            new("GET /e/c/{token}", Family.Token, HttpMethod.Get, "/e/c/{id}", _ => [], [], (_, _) => null),
            new("GET /u/{token}", Family.Token, HttpMethod.Get, "/u/{id}", _ => [], [], (_, _) => null),
            new("POST /u/{token}", Family.Token, HttpMethod.Post, "/u/{id}", _ => [], [], (_, _) => null),

            new("GET /admin/v1/profiles/{id}", Family.Admin, HttpMethod.Get, "", _ => [], [], (_, _) => null),
            new("GET /admin/v1/profiles", Family.Admin, HttpMethod.Get, "", _ => [], [], (_, _) => null),
            new("GET /admin/v1/messages", Family.Admin, HttpMethod.Get, "", _ => [], [], (_, _) => null),
            new("GET /admin/v1/reports", Family.Admin, HttpMethod.Get, "", _ => [], [], (_, _) => null),
            new("GET /admin/v1/profiles/{id}/journeys", Family.Admin, HttpMethod.Get, "", _ => [], [], (_, _) => null),
        ];

        (string, byte[], string?, bool)? BatchBig(Random rng, int i)
        {
            var b = SegBatch(i);
            switch (rng.Next(3))
            {
                case 0:
                    Set(b, "batch[0].properties.pad", Pad((32 * 1024) + rng.Next(1, 2000)));
                    return ("batch-call-over-32KB", Raw(b), "batch[0]", false);
                case 1:
                    {
                        // Many calls each under 32 KB, together over 500 KB.
                        var calls = new JsonArray();
                        for (var k = 0; k < 17; k++)
                        {
                            var t = SegTrack(i);
                            t["type"] = "track";
                            t["messageId"] = $"m{i}-{k}";
                            t["properties"] = new JsonObject { ["pad"] = Pad(31 * 1024) };
                            calls.Add(t);
                        }

                        return ("batch-over-500KB", Raw(new JsonObject { ["batch"] = calls }), "512000", false);
                    }

                default:
                    b["batch"] = new JsonArray();
                    return ("batch-empty", Raw(b), "batch", false);
            }
        }
    }
}

/// <summary>SendGrid's signed Event Webhook header names, as SendGrid sends them.</summary>
internal static class SendGridWebhookHeaders
{
    public const string Signature = "X-Twilio-Email-Event-Webhook-Signature";
    public const string Timestamp = "X-Twilio-Email-Event-Webhook-Timestamp";
}

/// <summary>Sends a <see cref="FuzzCase"/> exactly as generated (raw bytes, chosen content type, chunked when asked).</summary>
internal static class FuzzCaseSender
{
    public static HttpRequestMessage ToRequest(this FuzzCase c, Uri baseAddress)
    {
        var r = new HttpRequestMessage(c.Method, new Uri(baseAddress.AbsoluteUri.TrimEnd('/') + c.PathAndQuery));
        if (c.Body is not null)
        {
            HttpContent content = c.Chunked ? new StreamContent(new MemoryStream(c.Body)) : new ByteArrayContent(c.Body);
            if (!string.IsNullOrEmpty(c.ContentType))
            {
                content.Headers.TryAddWithoutValidation("Content-Type", c.ContentType);
            }

            r.Content = content;
        }

        foreach (var (name, value) in c.Headers)
        {
            r.Headers.TryAddWithoutValidation(name, value);
        }

        return r;
    }
}
