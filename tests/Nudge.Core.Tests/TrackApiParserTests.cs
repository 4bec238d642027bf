using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Profiles;
using Nudge.Core.Text;
using static Nudge.Core.Tests.TestData;

namespace Nudge.Core.Tests;

public class TrackApiParserTests
{
    private readonly TrackApiParser parser = new(new IngestValidator(new IngestLimits(), new PhoneNormalizer("US")));

    private ValidationException RejectIdentify(string pathId, string json) =>
        Assert.Throws<ValidationException>(() => parser.Identify(pathId, Body(json), Now));

    private ValidationException RejectEvent(string json) =>
        Assert.Throws<ValidationException>(() => parser.CustomerEvent("u1", Body(json), Now));

    private ValidationException RejectDevice(string json) =>
        Assert.Throws<ValidationException>(() => parser.UpsertDevice("u1", Body(json), Now));

    private ValidationException RejectMerge(string json) =>
        Assert.Throws<ValidationException>(() => parser.Merge(Body(json), Now));

    private static JsonObject ManyAttributes(int count)
    {
        var body = new JsonObject();
        for (var i = 0; i < count; i++)
        {
            body[$"attr_{i}"] = i;
        }

        return body;
    }

    // ---- identify ----------------------------------------------------------------------------------------------

    [Fact]
    public void Identify_ById_TargetsIdAndKeepsJsonTypes()
    {
        var op = parser.Identify("u1", Body("""
            {"plan":"pro","age":42,"score":1.5,"vip":true,"churned":false,"tags":["a","b"],"address":{"city":"SF"}}
            """), Now);

        Assert.Equal(OpKind.Identify, op.Kind);
        Assert.Equal("track", op.Source);
        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Null(op.SetId);
        Assert.Null(op.SetEmail);
        Assert.False(op.UpdateOnly);
        Assert.Equal(Now, op.Timestamp);
        Assert.Equal(Now, op.ReceivedAt);
        var attrs = op.Attributes!;
        Assert.Equal(JsonValueKind.Number, attrs["age"]!.GetValueKind());
        Assert.Equal(42, attrs["age"]!.GetValue<int>());
        Assert.Equal(JsonValueKind.Number, attrs["score"]!.GetValueKind());
        Assert.Equal(JsonValueKind.True, attrs["vip"]!.GetValueKind());
        Assert.Equal(JsonValueKind.False, attrs["churned"]!.GetValueKind());
        Assert.Equal(JsonValueKind.String, attrs["plan"]!.GetValueKind());
        Assert.Equal(
            """{"plan":"pro","age":42,"score":1.5,"vip":true,"churned":false,"tags":["a","b"],"address":{"city":"SF"}}""",
            attrs.ToJsonString());
    }

    [Fact]
    public void Identify_MintsMessageIdWithNdPrefix()
    {
        var a = parser.Identify("u1", Body("{}"), Now);
        var b = parser.Identify("u1", Body("{}"), Now);

        Assert.StartsWith("nd_", a.MessageId, StringComparison.Ordinal);
        Assert.Equal(35, a.MessageId.Length);
        Assert.NotEqual(a.MessageId, b.MessageId);
    }

    [Fact]
    public void Identify_EmptyStringValue_BecomesNullForRemoval()
    {
        var op = parser.Identify("u1", Body("""{"plan":"","age":0}"""), Now);

        Assert.True(op.Attributes!.ContainsKey("plan"));
        Assert.Null(op.Attributes["plan"]);
        Assert.Equal(0, op.Attributes["age"]!.GetValue<int>());
    }

    [Fact]
    public void Identify_ReservedKeys_AreNotAttributes()
    {
        var op = parser.Identify("cio_abc", Body("""
            {"id":"u1","email":"a@b.co","anonymous_id":"anon","_timestamp":1700000000,"_update":true,"plan":"pro"}
            """), Now);

        Assert.Equal("""{"plan":"pro"}""", op.Attributes!.ToJsonString());
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("false", false)]
    [InlineData("True", true)]
    public void Identify_SmsConsentString_BecomesBoolean(string given, bool expected)
    {
        var op = parser.Identify("u1", Body($$"""{"sms_consent":"{{given}}"}"""), Now);

        var value = op.Attributes!["sms_consent"]!;
        Assert.Equal(expected ? JsonValueKind.True : JsonValueKind.False, value.GetValueKind());
        Assert.Equal(expected, value.GetValue<bool>());
    }

    [Fact]
    public void Identify_SmsConsentBoolean_KeptAsBoolean()
    {
        var op = parser.Identify("u1", Body("""{"sms_consent":true,"unsubscribed":false}"""), Now);

        Assert.Equal(JsonValueKind.True, op.Attributes!["sms_consent"]!.GetValueKind());
        Assert.Equal(JsonValueKind.False, op.Attributes["unsubscribed"]!.GetValueKind());
    }

    [Theory]
    [InlineData("\"yes\"")]
    [InlineData("1")]
    [InlineData("[true]")]
    public void Identify_SmsConsentNotBoolean_RejectedNamingAttribute(string json)
    {
        var e = RejectIdentify("u1", $$$"""{"sms_consent":{{{json}}}}""");

        var error = SingleError(e, "attributes.sms_consent");
        Assert.Contains("boolean", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("phone", "(415) 555-2671")]
    [InlineData("sms_phone", "415.555.2671")]
    [InlineData("phone", "+1 415 555 2671")]
    public void Identify_Phone_NormalizedToE164(string attr, string given)
    {
        var op = parser.Identify("u1", Body($$"""{"{{attr}}":"{{given}}"}"""), Now);

        Assert.Equal("+14155552671", op.Attributes![attr]!.GetValue<string>());
    }

    [Theory]
    [InlineData("phone", "\"12345\"")]
    [InlineData("sms_phone", "\"not a phone\"")]
    [InlineData("phone", "4155552671")]
    public void Identify_InvalidPhone_RejectedNamingAttribute(string attr, string json)
    {
        var e = RejectIdentify("u1", $$$"""{"{{{attr}}}":{{{json}}}}""");

        SingleError(e, "attributes." + attr);
    }

    [Fact]
    public void Identify_EmptyPhone_IsRemovalNotError()
    {
        var op = parser.Identify("u1", Body("""{"phone":""}"""), Now);

        Assert.True(op.Attributes!.ContainsKey("phone"));
        Assert.Null(op.Attributes["phone"]);
    }

    [Fact]
    public void Identify_BodyIdDiffersFromPathId_Rejected()
    {
        var e = RejectIdentify("u1", """{"id":"u2"}""");

        var error = SingleError(e, "id");
        Assert.Contains("differs from the identifier in the path", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_BodyIdSameAsPathId_AcceptedWithoutSetId()
    {
        var op = parser.Identify("u1", Body("""{"id":"u1"}"""), Now);

        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Null(op.SetId);
    }

    [Fact]
    public void Identify_EmailInPath_LowerCasedEmailTarget()
    {
        var op = parser.Identify("Bob.Smith@Example.COM", Body("""{"id":"u7"}"""), Now);

        Assert.Equal(new Identifier(IdentifierKind.Email, "bob.smith@example.com"), op.Target);
        Assert.Equal("u7", op.SetId);
    }

    [Fact]
    public void Identify_EmailInPathWithSurroundingSpaces_TargetIsTrimmed()
    {
        var op = parser.Identify(" Bob@Example.com ", Body("{}"), Now);

        Assert.Equal(new Identifier(IdentifierKind.Email, "bob@example.com"), op.Target);
    }

    [Theory]
    [InlineData("bob@")]
    [InlineData("@example.com")]
    [InlineData("bob@example")]
    [InlineData("a@b@example.com")]
    public void Identify_InvalidEmailInPath_RejectedNamingIdentifier(string pathId)
    {
        var e = RejectIdentify(pathId, "{}");

        SingleError(e, "identifier");
    }

    [Fact]
    public void Identify_CioPrefix_TargetsCioIdAndSetsNewIdAndEmail()
    {
        var op = parser.Identify("cio_abc123", Body("""{"id":"u9","email":"New@Example.com"}"""), Now);

        Assert.Equal(new Identifier(IdentifierKind.CioId, "abc123"), op.Target);
        Assert.Equal("u9", op.SetId);
        Assert.Equal("new@example.com", op.SetEmail);
    }

    [Fact]
    public void Identify_BodyEmail_LowerCasedIntoSetEmail()
    {
        var op = parser.Identify("u1", Body("""{"email":"  Ann@Example.ORG "}"""), Now);

        Assert.Equal("ann@example.org", op.SetEmail);
        Assert.False(op.Attributes!.ContainsKey("email"));
    }

    [Fact]
    public void Identify_BodyEmailInvalid_RejectedNamingEmail()
    {
        var e = RejectIdentify("u1", """{"email":"not-an-email"}""");

        SingleError(e, "email");
    }

    [Fact]
    public void Identify_Timestamp_SetsTimestampFromUnixSeconds()
    {
        var op = parser.Identify("u1", Body("""{"_timestamp":1700000000}"""), Now);

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), op.Timestamp);
        Assert.Equal(Now, op.ReceivedAt);
    }

    [Fact]
    public void Identify_FractionalTimestamp_KeepsMilliseconds()
    {
        var op = parser.Identify("u1", Body("""{"_timestamp":1700000000.25}"""), Now);

        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1700000000250), op.Timestamp);
    }

    [Fact]
    public void Identify_TimestampInMilliseconds_RejectedNamingTimestamp()
    {
        var e = RejectIdentify("u1", """{"_timestamp":1700000000000}""");

        var error = SingleError(e, "_timestamp");
        Assert.Contains("milliseconds", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_Update_SetsUpdateOnly()
    {
        var op = parser.Identify("u1", Body("""{"_update":true}"""), Now);

        Assert.True(op.UpdateOnly);
    }

    [Fact]
    public void Identify_UpdateNotBoolean_Rejected()
    {
        var e = RejectIdentify("u1", """{"_update":"yes"}""");

        SingleError(e, "_update");
    }

    [Fact]
    public void Identify_AnonymousId_Carried()
    {
        var op = parser.Identify("u1", Body("""{"anonymous_id":"anon-42"}"""), Now);

        Assert.Equal("anon-42", op.AnonymousId);
        Assert.False(op.Attributes!.ContainsKey("anonymous_id"));
    }

    [Fact]
    public void Identify_300Attributes_Accepted()
    {
        var op = parser.Identify("u1", ManyAttributes(300), Now);

        Assert.Equal(300, op.Attributes!.Count);
    }

    [Fact]
    public void Identify_301Attributes_RejectedNamingAttributes()
    {
        var e = Assert.Throws<ValidationException>(() => parser.Identify("u1", ManyAttributes(301), Now));

        var error = SingleError(e, "attributes");
        Assert.Contains("301", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_AttributeName150Bytes_Accepted()
    {
        var name = new string('n', 150);
        var body = new JsonObject { [name] = 1 };

        var op = parser.Identify("u1", body, Now);

        Assert.True(op.Attributes!.ContainsKey(name));
    }

    [Fact]
    public void Identify_AttributeName151Bytes_RejectedWithTruncatedName()
    {
        var body = new JsonObject { [new string('n', 151)] = 1 };

        var e = Assert.Throws<ValidationException>(() => parser.Identify("u1", body, Now));

        var error = SingleError(e, "attributes." + new string('n', 40) + "…");
        Assert.Contains("151 bytes", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_AttributeNameCountsUtf8Bytes_NotCharacters()
    {
        var name = new string('é', 76); // 76 characters, 152 bytes
        var body = new JsonObject { [name] = 1 };

        var e = Assert.Throws<ValidationException>(() => parser.Identify("u1", body, Now));

        var error = Assert.Single(e.Errors);
        Assert.Contains("152 bytes", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_AttributeValue1000Bytes_Accepted()
    {
        var body = new JsonObject { ["bio"] = new string('x', 1000) };

        var op = parser.Identify("u1", body, Now);

        Assert.Equal(1000, op.Attributes!["bio"]!.GetValue<string>().Length);
    }

    [Fact]
    public void Identify_AttributeValue1001Bytes_RejectedNamingAttribute()
    {
        var body = new JsonObject { ["bio"] = new string('x', 1001) };

        var e = Assert.Throws<ValidationException>(() => parser.Identify("u1", body, Now));

        var error = SingleError(e, "attributes.bio");
        Assert.Contains("1001 bytes", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_ArrayValueOfNonAsciiUnderLimit_Accepted()
    {
        // ["éé…"] with 450 'é' is 904 UTF-8 bytes: within the 1,000-byte limit as sent.
        var body = new JsonObject { ["names"] = new JsonArray(new string('é', 450)) };

        var op = parser.Identify("u1", body, Now);

        Assert.Equal(JsonValueKind.Array, op.Attributes!["names"]!.GetValueKind());
    }

    [Fact]
    public void Identify_CreatedAtInMilliseconds_RejectedNamingCreatedAt()
    {
        var e = RejectIdentify("u1", """{"created_at":1700000000000}""");

        var error = SingleError(e, "created_at");
        Assert.Contains("milliseconds", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_CreatedAtInSeconds_KeptAsAttribute()
    {
        var op = parser.Identify("u1", Body("""{"created_at":1700000000}"""), Now);

        Assert.Equal(1700000000, op.Attributes!["created_at"]!.GetValue<long>());
    }

    [Fact]
    public void Identify_EmptyAttributeName_Rejected()
    {
        var e = RejectIdentify("u1", """{"":"x"}""");

        SingleError(e, "attributes.");
    }

    [Fact]
    public void Identify_SeveralProblems_AllReported()
    {
        var e = RejectIdentify("u1", """{"id":"u2","phone":"123","_timestamp":-5}""");

        AssertFields(e, "id", "_timestamp", "attributes.phone");
    }

    [Fact]
    public void Identify_PathIdentifierOver150Bytes_RejectedNamingIdentifier()
    {
        var e = Assert.Throws<ValidationException>(() => parser.Identify(new string('u', 151), Body("{}"), Now));

        var error = SingleError(e, "identifier");
        Assert.Contains("151 bytes", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_PathIdentifier150Bytes_Accepted()
    {
        var op = parser.Identify(new string('u', 150), Body("{}"), Now);

        Assert.Equal(150, op.Target!.Value.Length);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("a\u0001b")]
    public void Identify_PathIdentifierEmptyOrControl_Rejected(string pathId)
    {
        var e = RejectIdentify(pathId, "{}");

        SingleError(e, "identifier");
    }

    // ---- simple calls ------------------------------------------------------------------------------------------

    [Fact]
    public void DeleteSuppressUnsuppress_TargetPathIdentifier()
    {
        Assert.Equal(OpKind.DeleteProfile, parser.Delete("u1", Now).Kind);
        Assert.Equal(OpKind.Suppress, parser.Suppress("cio_k", Now).Kind);
        Assert.Equal(new Identifier(IdentifierKind.CioId, "k"), parser.Suppress("cio_k", Now).Target);
        var op = parser.Unsuppress("A@B.co", Now);
        Assert.Equal(OpKind.Unsuppress, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.Email, "a@b.co"), op.Target);
    }

    [Fact]
    public void Delete_PathIdentifierOver150Bytes_Rejected()
    {
        var e = Assert.Throws<ValidationException>(() => parser.Delete(new string('x', 151), Now));

        SingleError(e, "identifier");
    }

    // ---- events ------------------------------------------------------------------------------------------------

    [Fact]
    public void CustomerEvent_FullEvent_MapsAllFields()
    {
        var op = parser.CustomerEvent("u1", Body("""
            {"name":"purchase","id":"01HXYZ","type":"page","timestamp":1700000000,"data":{"price":9.99,"sku":"A1"}}
            """), Now);

        Assert.Equal(OpKind.Track, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Equal("01HXYZ", op.MessageId);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), op.Timestamp);
        Assert.Equal(Now, op.ReceivedAt);
        Assert.Equal("purchase", op.Event!.Name);
        Assert.Equal("page", op.Event.Type);
        Assert.Equal("""{"price":9.99,"sku":"A1"}""", op.Event.Data.ToJsonString());
    }

    [Fact]
    public void CustomerEvent_Defaults_TypeEventNowAndMintedId()
    {
        var op = parser.CustomerEvent("u1", Body("""{"name":"login"}"""), Now);

        Assert.Equal("event", op.Event!.Type);
        Assert.Equal(Now, op.Timestamp);
        Assert.StartsWith("nd_", op.MessageId, StringComparison.Ordinal);
        Assert.Empty(op.Event.Data);
    }

    [Fact]
    public void CustomerEvent_NumericId_BecomesStringMessageId()
    {
        var op = parser.CustomerEvent("u1", Body("""{"name":"login","id":12345}"""), Now);

        Assert.Equal("12345", op.MessageId);
    }

    [Theory]
    [InlineData("event")]
    [InlineData("page")]
    [InlineData("screen")]
    public void CustomerEvent_KnownType_Accepted(string type)
    {
        var op = parser.CustomerEvent("u1", Body($$"""{"name":"n","type":"{{type}}"}"""), Now);

        Assert.Equal(type, op.Event!.Type);
    }

    [Theory]
    [InlineData("\"track\"")]
    [InlineData("\"Event\"")]
    [InlineData("5")]
    public void CustomerEvent_UnknownType_RejectedNamingType(string type)
    {
        var e = RejectEvent($$$"""{"name":"n","type":{{{type}}}}""");

        SingleError(e, "type");
    }

    [Fact]
    public void CustomerEvent_NameMissing_Rejected()
    {
        var e = RejectEvent("""{"data":{}}""");

        var error = SingleError(e, "name");
        Assert.Equal("is required", error.Problem);
    }

    [Theory]
    [InlineData("\"\"")]
    [InlineData("\"   \"")]
    [InlineData("42")]
    public void CustomerEvent_NameEmptyOrNotString_Rejected(string name)
    {
        var e = RejectEvent($$$"""{"name":{{{name}}}}""");

        SingleError(e, "name");
    }

    [Fact]
    public void CustomerEvent_Name100Bytes_Accepted()
    {
        var op = parser.CustomerEvent("u1", new JsonObject { ["name"] = new string('e', 100) }, Now);

        Assert.Equal(100, op.Event!.Name.Length);
    }

    [Fact]
    public void CustomerEvent_NameOver100Bytes_Rejected()
    {
        var e = Assert.Throws<ValidationException>(() =>
            parser.CustomerEvent("u1", new JsonObject { ["name"] = new string('e', 101) }, Now));

        var error = SingleError(e, "name");
        Assert.Contains("101 bytes", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void CustomerEvent_TimestampInMilliseconds_RejectedMentioningMilliseconds()
    {
        var e = RejectEvent("""{"name":"n","timestamp":1700000000000}""");

        var error = SingleError(e, "timestamp");
        Assert.Contains("milliseconds", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"2024-01-01T00:00:00Z\"")]
    [InlineData("-1")]
    [InlineData("true")]
    public void CustomerEvent_TimestampNotUnixSeconds_Rejected(string ts)
    {
        var e = RejectEvent($$$"""{"name":"n","timestamp":{{{ts}}}}""");

        SingleError(e, "timestamp");
    }

    [Fact]
    public void CustomerEvent_DataExactly100000Bytes_Accepted()
    {
        // {"b":"..."} is 8 bytes of JSON around the string.
        var body = new JsonObject { ["name"] = "n", ["data"] = new JsonObject { ["b"] = new string('x', 100_000 - 8) } };
        Assert.Equal(100_000, body["data"]!.ToJsonString().Length);

        var op = parser.CustomerEvent("u1", body, Now);

        Assert.Equal(100_000 - 8, op.Event!.Data["b"]!.GetValue<string>().Length);
    }

    [Fact]
    public void CustomerEvent_DataOver100000Bytes_RejectedNamingData()
    {
        var body = new JsonObject { ["name"] = "n", ["data"] = new JsonObject { ["b"] = new string('x', 100_000) } };

        var e = Assert.Throws<ValidationException>(() => parser.CustomerEvent("u1", body, Now));

        var error = SingleError(e, "data");
        Assert.Contains("100008 bytes", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void CustomerEvent_NonAsciiDataUnder100000Utf8Bytes_Accepted()
    {
        // 40,000 'é' are 80,000 UTF-8 bytes as sent: within the limit.
        var body = new JsonObject { ["name"] = "n", ["data"] = new JsonObject { ["b"] = new string('é', 40_000) } };
        var sent = Encoding.UTF8.GetByteCount("""{"b":""}""") + Encoding.UTF8.GetByteCount(new string('é', 40_000));
        Assert.Equal(80_008, sent);

        var op = parser.CustomerEvent("u1", body, Now);

        Assert.Equal(40_000, op.Event!.Data["b"]!.GetValue<string>().Length);
    }

    [Theory]
    [InlineData("\"text\"")]
    [InlineData("[1,2]")]
    [InlineData("7")]
    public void CustomerEvent_DataNotObject_RejectedNamingData(string data)
    {
        var e = RejectEvent($$$"""{"name":"n","data":{{{data}}}}""");

        var error = SingleError(e, "data");
        Assert.StartsWith("must be an object", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void CustomerEvent_PathIdentifierOver150Bytes_Rejected()
    {
        var e = Assert.Throws<ValidationException>(() =>
            parser.CustomerEvent(new string('u', 151), Body("""{"name":"n"}"""), Now));

        SingleError(e, "identifier");
    }

    [Fact]
    public void CustomerEvent_PathAndBodyErrors_BothReported()
    {
        var e = Assert.Throws<ValidationException>(() =>
            parser.CustomerEvent(new string('u', 151), Body("""{"type":"track"}"""), Now));

        AssertFields(e, "identifier", "name", "type");
    }

    [Fact]
    public void AnonymousEvent_WithAnonymousId_TargetsAnonymousId()
    {
        var op = parser.AnonymousEvent(Body("""{"name":"viewed","anonymous_id":"anon-1","id":"ev-1","data":{"a":1}}"""), Now);

        Assert.Equal(OpKind.Track, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.AnonymousId, "anon-1"), op.Target);
        Assert.Equal("ev-1", op.MessageId);
        Assert.Equal("viewed", op.Event!.Name);
        Assert.Equal("""{"a":1}""", op.Event.Data.ToJsonString());
    }

    [Fact]
    public void AnonymousEvent_WithoutAnonymousId_HasNoTarget()
    {
        var op = parser.AnonymousEvent(Body("""{"name":"viewed"}"""), Now);

        Assert.Null(op.Target);
        Assert.Equal("viewed", op.Event!.Name);
        Assert.Equal("event", op.Event.Type);
    }

    [Fact]
    public void AnonymousEvent_AnonymousIdOver150Bytes_Rejected()
    {
        var body = new JsonObject { ["name"] = "n", ["anonymous_id"] = new string('a', 151) };

        var e = Assert.Throws<ValidationException>(() => parser.AnonymousEvent(body, Now));

        SingleError(e, "anonymous_id");
    }

    [Fact]
    public void AnonymousEvent_NameMissing_Rejected()
    {
        var e = Assert.Throws<ValidationException>(() => parser.AnonymousEvent(Body("""{"anonymous_id":"a"}"""), Now));

        SingleError(e, "name");
    }

    // ---- devices -----------------------------------------------------------------------------------------------

    [Fact]
    public void UpsertDevice_FullDevice_MapsAllFields()
    {
        var op = parser.UpsertDevice("u1", Body("""
            {"device":{"id":"tok-123","platform":"iOS","last_used":1700000000,
             "attributes":{"device_id":"phys-9","device_os":"17.2","push_enabled":"false","badge":3}}}
            """), Now);

        Assert.Equal(OpKind.UpsertDevice, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        var d = op.Device!;
        Assert.Equal("tok-123", d.Token);
        Assert.Equal("ios", d.Platform);
        Assert.Equal("phys-9", d.DeviceId);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), d.LastUsed);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), op.Timestamp);
        Assert.Equal("""{"device_id":"phys-9","device_os":"17.2","push_enabled":"false","badge":3}""", d.Attributes.ToJsonString());
    }

    [Fact]
    public void UpsertDevice_NoLastUsed_TimestampIsNow()
    {
        var op = parser.UpsertDevice("u1", Body("""{"device":{"id":"t","platform":"android"}}"""), Now);

        Assert.Null(op.Device!.LastUsed);
        Assert.Null(op.Device.DeviceId);
        Assert.Equal("android", op.Device.Platform);
        Assert.Equal(Now, op.Timestamp);
        Assert.Empty(op.Device.Attributes);
    }

    [Fact]
    public void UpsertDevice_EmptyDeviceIdAttribute_NoPhysicalId()
    {
        var op = parser.UpsertDevice("u1", Body("""{"device":{"id":"t","platform":"ios","attributes":{"device_id":""}}}"""), Now);

        Assert.Null(op.Device!.DeviceId);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"device":null}""")]
    public void UpsertDevice_DeviceMissing_Rejected(string json)
    {
        var e = RejectDevice(json);

        var error = SingleError(e, "device");
        Assert.Equal("is required", error.Problem);
    }

    [Fact]
    public void UpsertDevice_DeviceNotObject_Rejected()
    {
        var e = RejectDevice("""{"device":"tok"}""");

        var error = SingleError(e, "device");
        Assert.StartsWith("must be an object", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void UpsertDevice_DeviceIdMissing_RejectedNamingDeviceId()
    {
        var e = RejectDevice("""{"device":{"platform":"ios"}}""");

        SingleError(e, "device.id");
    }

    [Fact]
    public void UpsertDevice_PlatformMissing_RejectedNamingPlatform()
    {
        var e = RejectDevice("""{"device":{"id":"t"}}""");

        var error = SingleError(e, "device.platform");
        Assert.Contains("required", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("windows")]
    [InlineData("web")]
    [InlineData("")]
    public void UpsertDevice_UnsupportedPlatform_RejectedNamingPlatform(string platform)
    {
        var e = RejectDevice($$$$"""{"device":{"id":"t","platform":"{{{{platform}}}}"}}""");

        var error = SingleError(e, "device.platform");
        Assert.Contains("not a supported platform", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"nested":{"a":1}}""", "device.attributes.nested")]
    [InlineData("""{"list":[1]}""", "device.attributes.list")]
    public void UpsertDevice_NestedAttribute_RejectedNamingAttribute(string attrs, string field)
    {
        var e = RejectDevice($$$"""{"device":{"id":"t","platform":"ios","attributes":{{{attrs}}}}}""");

        SingleError(e, field);
    }

    [Fact]
    public void UpsertDevice_TokenOver150Bytes_Rejected()
    {
        var body = new JsonObject { ["device"] = new JsonObject { ["id"] = new string('t', 151), ["platform"] = "ios" } };

        var e = Assert.Throws<ValidationException>(() => parser.UpsertDevice("u1", body, Now));

        SingleError(e, "device.id");
    }

    [Fact]
    public void UpsertDevice_LastUsedInMilliseconds_Rejected()
    {
        var e = RejectDevice("""{"device":{"id":"t","platform":"ios","last_used":1700000000000}}""");

        SingleError(e, "device.last_used");
    }

    [Fact]
    public void DeleteDevice_MapsTokenAndTarget()
    {
        var op = parser.DeleteDevice("u1", "tok-123", Now);

        Assert.Equal(OpKind.DeleteDevice, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Equal("tok-123", op.Device!.Token);
        Assert.Null(op.Device.Platform);
        Assert.Equal(Now, op.Timestamp);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    public void DeleteDevice_EmptyToken_RejectedNamingDeviceId(string token)
    {
        var e = Assert.Throws<ValidationException>(() => parser.DeleteDevice("u1", token, Now));

        SingleError(e, "device_id");
    }

    [Fact]
    public void DeleteDevice_TokenOver150Bytes_Rejected()
    {
        var e = Assert.Throws<ValidationException>(() => parser.DeleteDevice("u1", new string('t', 151), Now));

        SingleError(e, "device_id");
    }

    // ---- merge_customers ---------------------------------------------------------------------------------------

    [Fact]
    public void Merge_IdAndEmail_TargetsPrimaryAndSecondary()
    {
        var op = parser.Merge(Body("""{"primary":{"id":"u1"},"secondary":{"email":"Old@Example.com"}}"""), Now);

        Assert.Equal(OpKind.Merge, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Equal(new Identifier(IdentifierKind.Email, "old@example.com"), op.Secondary);
    }

    [Theory]
    [InlineData("cio_abc")]
    [InlineData("abc")]
    public void Merge_CioId_WithOrWithoutPrefix(string cio)
    {
        var op = parser.Merge(Body($$$$"""{"primary":{"cio_id":"{{{{cio}}}}"},"secondary":{"id":42}}"""), Now);

        Assert.Equal(new Identifier(IdentifierKind.CioId, "abc"), op.Target);
        Assert.Equal(new Identifier(IdentifierKind.Id, "42"), op.Secondary);
    }

    [Fact]
    public void Merge_TwoKeysOnASide_Rejected()
    {
        var e = RejectMerge("""{"primary":{"id":"u1","email":"a@b.co"},"secondary":{"id":"u2"}}""");

        var error = SingleError(e, "primary");
        Assert.Contains("exactly one of id, email or cio_id, got 2 keys", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Merge_NoKeysOnASide_Rejected()
    {
        var e = RejectMerge("""{"primary":{"id":"u1"},"secondary":{}}""");

        var error = SingleError(e, "secondary");
        Assert.Contains("got 0 keys", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Merge_UnknownKey_Rejected()
    {
        var e = RejectMerge("""{"primary":{"id":"u1"},"secondary":{"phone":"+14155552671"}}""");

        var error = SingleError(e, "secondary");
        Assert.Contains("'phone' is not an identifier", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Merge_SidesMissing_BothRejected()
    {
        var e = RejectMerge("{}");

        AssertFields(e, "primary", "secondary");
    }

    [Fact]
    public void Merge_SideNotObject_Rejected()
    {
        var e = RejectMerge("""{"primary":"u1","secondary":{"id":"u2"}}""");

        var error = SingleError(e, "primary");
        Assert.StartsWith("must be an object", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"id":"u1"}""", """{"id":"u1"}""")]
    [InlineData("""{"email":"A@B.co"}""", """{"email":"a@b.co"}""")]
    [InlineData("""{"cio_id":"cio_k1"}""", """{"cio_id":"k1"}""")]
    public void Merge_SamePersonBothSides_Rejected(string primary, string secondary)
    {
        var e = RejectMerge($$$"""{"primary":{{{primary}}},"secondary":{{{secondary}}}}""");

        var error = SingleError(e, "secondary");
        Assert.Equal("is the same person as primary", error.Problem);
    }

    [Fact]
    public void Merge_InvalidEmail_RejectedNamingSideAndKey()
    {
        var e = RejectMerge("""{"primary":{"email":"nope"},"secondary":{"id":"u2"}}""");

        SingleError(e, "primary.email");
    }

    [Fact]
    public void Merge_CioIdPrefixOnly_RejectedNamingSideAndKey()
    {
        // "cio_" alone names no internal id; stripping the prefix must not yield an empty identifier.
        var e = RejectMerge("""{"primary":{"id":"u1"},"secondary":{"cio_id":"cio_"}}""");

        SingleError(e, "secondary.cio_id");
    }

    [Fact]
    public void Merge_EmptyId_RejectedNamingSideAndKey()
    {
        var e = RejectMerge("""{"primary":{"id":"u1"},"secondary":{"id":""}}""");

        SingleError(e, "secondary.id");
    }

    // ---- request bodies ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("{\"a\":")]
    [InlineData("")]
    [InlineData("{'a':1}")]
    [InlineData("{\"a\":1}}")]
    public void ParseObject_MalformedJson_ThrowsValidationException(string json)
    {
        var e = Assert.Throws<ValidationException>(() => JsonFields.ParseObject(Encoding.UTF8.GetBytes(json), "request body"));

        var error = SingleError(e, "");
        Assert.StartsWith("request body is not valid JSON", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("\"text\"")]
    [InlineData("null")]
    [InlineData("42")]
    public void ParseObject_NotAnObject_Rejected(string json)
    {
        var e = Assert.Throws<ValidationException>(() => JsonFields.ParseObject(Encoding.UTF8.GetBytes(json), "request body"));

        var error = SingleError(e, "");
        Assert.Equal("request body must be a JSON object", error.Problem);
    }

    [Fact]
    public void ParseObject_Object_ReturnsIt()
    {
        var o = JsonFields.ParseObject("""{"a":[1,{"b":true}]}"""u8, "request body");

        Assert.Equal("""{"a":[1,{"b":true}]}""", o.ToJsonString());
    }

    private static byte[] Nested(int depth) =>
        Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", depth - 1)) + "{}" + new string('}', depth - 1));

    [Fact]
    public void ParseObject_Depth32_Accepted()
    {
        var o = JsonFields.ParseObject(Nested(32), "request body");

        Assert.True(o.ContainsKey("a"));
    }

    [Fact]
    public void ParseObject_DepthOver32_Rejected()
    {
        var e = Assert.Throws<ValidationException>(() => JsonFields.ParseObject(Nested(33), "request body"));

        var error = SingleError(e, "");
        Assert.StartsWith("request body is not valid JSON", error.Problem, StringComparison.Ordinal);
    }
}
