using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Ingest;
using Nudge.Core.Profiles;
using Nudge.Core.Text;
using static Nudge.Core.Tests.TestData;

namespace Nudge.Core.Tests;

public class SegmentParserTests
{
    private static readonly JsonSerializerOptions AsSent = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly SegmentParser parser = new(new IngestValidator(new IngestLimits(), new PhoneNormalizer("US")));

    private IngestOp Call(string type, string json) =>
        parser.Call(type, Body(json), Encoding.UTF8.GetByteCount(json), Now);

    private ValidationException RejectCall(string type, string json) =>
        Assert.Throws<ValidationException>(() => Call(type, json));

    private IReadOnlyList<IngestOp> Batch(string json) =>
        parser.Batch(Body(json), Encoding.UTF8.GetByteCount(json), Now);

    private ValidationException RejectBatch(string json) =>
        Assert.Throws<ValidationException>(() => Batch(json));

    private static DateTimeOffset Utc(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture);

    // ---- identify ----------------------------------------------------------------------------------------------

    [Fact]
    public void Identify_Traits_BecomeAttributesAndEmailIsSetEmail()
    {
        var op = Call("identify", """
            {"userId":"u1","messageId":"m-1","timestamp":"2024-01-02T03:04:05Z",
             "traits":{"email":"Bob@Example.COM","id":"ignored","plan":"pro","age":30,"vip":true}}
            """);

        Assert.Equal(OpKind.Identify, op.Kind);
        Assert.Equal("segment", op.Source);
        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Null(op.AnonymousId);
        Assert.Equal("bob@example.com", op.SetEmail);
        Assert.Equal("m-1", op.MessageId);
        Assert.Equal(Utc("2024-01-02T03:04:05Z"), op.Timestamp);
        Assert.Equal(Now, op.ReceivedAt);
        Assert.Equal("""{"plan":"pro","age":30,"vip":true}""", op.Attributes!.ToJsonString());
    }

    [Fact]
    public void Identify_ContextTraits_UsedWhenNoTopLevelTraits()
    {
        var op = Call("identify", """{"userId":"u1","context":{"traits":{"plan":"basic","email":"c@d.io"}}}""");

        Assert.Equal("""{"plan":"basic"}""", op.Attributes!.ToJsonString());
        Assert.Equal("c@d.io", op.SetEmail);
    }

    [Fact]
    public void Identify_NoTraits_EmptyAttributes()
    {
        var op = Call("identify", """{"userId":"u1"}""");

        Assert.Empty(op.Attributes!);
        Assert.Null(op.SetEmail);
    }

    [Fact]
    public void Identify_InvalidTraitsEmail_RejectedNamingPath()
    {
        var e = RejectCall("identify", """{"userId":"u1","traits":{"email":"bob at example"}}""");

        var error = SingleError(e, "traits.email");
        Assert.Contains("is not an email address", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Identify_EmptyTraitsEmail_Ignored()
    {
        var op = Call("identify", """{"userId":"u1","traits":{"email":""}}""");

        Assert.Null(op.SetEmail);
        Assert.Empty(op.Attributes!);
    }

    [Fact]
    public void Identify_TraitsUseAttributeRules()
    {
        var op = Call("identify", """{"userId":"u1","traits":{"sms_consent":"true","phone":"(415) 555-2671","nick":""}}""");

        Assert.Equal(JsonValueKind.True, op.Attributes!["sms_consent"]!.GetValueKind());
        Assert.Equal("+14155552671", op.Attributes["phone"]!.GetValue<string>());
        Assert.True(op.Attributes.ContainsKey("nick"));
        Assert.Null(op.Attributes["nick"]);
    }

    [Fact]
    public void Identify_BadPhoneTrait_RejectedNamingTraitsPath()
    {
        var e = RejectCall("identify", """{"userId":"u1","traits":{"phone":"555"}}""");

        SingleError(e, "traits.phone");
    }

    [Fact]
    public void Identify_ContextIpWithSmsConsent_CopiedToSmsConsentIp()
    {
        var op = Call("identify", """{"userId":"u1","context":{"ip":"203.0.113.7"},"traits":{"sms_consent":true}}""");

        Assert.Equal("203.0.113.7", op.Ip);
        Assert.Equal("203.0.113.7", op.Attributes!["sms_consent_ip"]!.GetValue<string>());
    }

    [Fact]
    public void Identify_ContextIpWithoutSmsConsent_NotCopied()
    {
        var op = Call("identify", """{"userId":"u1","context":{"ip":"203.0.113.7"},"traits":{"plan":"pro"}}""");

        Assert.Equal("203.0.113.7", op.Ip);
        Assert.False(op.Attributes!.ContainsKey("sms_consent_ip"));
    }

    [Fact]
    public void Identify_ExplicitSmsConsentIp_NotOverwritten()
    {
        var op = Call("identify", """
            {"userId":"u1","context":{"ip":"203.0.113.7"},"traits":{"sms_consent":true,"sms_consent_ip":"198.51.100.1"}}
            """);

        Assert.Equal("198.51.100.1", op.Attributes!["sms_consent_ip"]!.GetValue<string>());
    }

    // ---- identity fields ---------------------------------------------------------------------------------------

    [Fact]
    public void Call_NeitherUserIdNorAnonymousId_RejectedNamingUserId()
    {
        var e = RejectCall("track", """{"event":"x"}""");

        var error = SingleError(e, "userId");
        Assert.Equal("userId or anonymousId is required", error.Problem);
    }

    [Fact]
    public void Call_NumericUserId_AcceptedAsString()
    {
        var op = Call("track", """{"userId":12345,"event":"x"}""");

        Assert.Equal(new Identifier(IdentifierKind.Id, "12345"), op.Target);
    }

    [Fact]
    public void Call_UserIdAndAnonymousId_TargetIdAndAnonymousIdSet()
    {
        var op = Call("identify", """{"userId":"u1","anonymousId":"anon-1"}""");

        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Equal("anon-1", op.AnonymousId);
    }

    [Fact]
    public void Call_AnonymousIdOnly_TargetsAnonymousId()
    {
        var op = Call("track", """{"anonymousId":"anon-1","event":"x"}""");

        Assert.Equal(new Identifier(IdentifierKind.AnonymousId, "anon-1"), op.Target);
        Assert.Null(op.AnonymousId);
    }

    [Theory]
    [InlineData("""{"userId":"","event":"x"}""", "userId")]
    [InlineData("""{"userId":true,"event":"x"}""", "userId")]
    [InlineData("""{"anonymousId":["a"],"event":"x"}""", "anonymousId")]
    public void Call_BadIdentityField_RejectedNamingIt(string json, string field)
    {
        var e = RejectCall("track", json);

        SingleError(e, field);
    }

    [Fact]
    public void Call_UserIdOver150Bytes_Rejected()
    {
        var json = new JsonObject { ["userId"] = new string('u', 151), ["event"] = "x" }.ToJsonString();

        var e = RejectCall("track", json);

        SingleError(e, "userId");
    }

    [Fact]
    public void Call_MessageId_BecomesMessageId()
    {
        var op = Call("track", """{"userId":"u1","event":"x","messageId":"ajs-next-123"}""");

        Assert.Equal("ajs-next-123", op.MessageId);
    }

    [Fact]
    public void Call_NoMessageId_Minted()
    {
        var op = Call("track", """{"userId":"u1","event":"x"}""");

        Assert.StartsWith("nd_", op.MessageId, StringComparison.Ordinal);
    }

    // ---- timestamps --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("2024-01-02T03:04:05Z")]
    [InlineData("2024-01-02T05:04:05+02:00")]
    [InlineData("2024-01-02T03:04:05.000Z")]
    [InlineData("2024-01-02T03:04:05")]
    public void Call_IsoTimestamp_ParsedAsUtcInstant(string ts)
    {
        var op = Call("track", $$"""{"userId":"u1","event":"x","timestamp":"{{ts}}"}""");

        Assert.Equal(Utc("2024-01-02T03:04:05Z"), op.Timestamp);
        Assert.Equal(TimeSpan.Zero, op.Timestamp.Offset);
    }

    [Theory]
    [InlineData("\"yesterday\"")]
    [InlineData("1700000000")]
    public void Call_BadTimestamp_RejectedNamingTimestamp(string ts)
    {
        var e = RejectCall("track", $$$"""{"userId":"u1","event":"x","timestamp":{{{ts}}}}""");

        SingleError(e, "timestamp");
    }

    [Fact]
    public void Call_NoTimestamp_UsesNow()
    {
        var op = Call("track", """{"userId":"u1","event":"x"}""");

        Assert.Equal(Now, op.Timestamp);
    }

    [Fact]
    public void Call_OriginalTimestampAndSentAt_ClockCorrected()
    {
        // The client sent at 11:55 by its own clock and the server received at 12:00: the client clock is 5 min slow.
        var op = Call("track", """
            {"userId":"u1","event":"x","originalTimestamp":"2024-06-01T11:50:00Z","sentAt":"2024-06-01T11:55:00Z"}
            """);

        // timestamp = originalTimestamp + (receivedAt - sentAt) = 11:50 + 5 min = 11:55.
        Assert.Equal(Utc("2024-06-01T11:55:00Z"), op.Timestamp);
    }

    [Fact]
    public void Call_OriginalTimestampWithoutSentAt_UsedAsIs()
    {
        var op = Call("track", """{"userId":"u1","event":"x","originalTimestamp":"2024-06-01T11:50:00Z"}""");

        Assert.Equal(Utc("2024-06-01T11:50:00Z"), op.Timestamp);
    }

    [Fact]
    public void Call_TimestampWinsOverOriginalTimestamp()
    {
        var op = Call("track", """
            {"userId":"u1","event":"x","timestamp":"2024-05-01T00:00:00Z","originalTimestamp":"2024-06-01T11:50:00Z","sentAt":"2024-06-01T11:55:00Z"}
            """);

        Assert.Equal(Utc("2024-05-01T00:00:00Z"), op.Timestamp);
    }

    [Fact]
    public void Call_BadOriginalTimestamp_RejectedNamingIt()
    {
        var e = RejectCall("track", """{"userId":"u1","event":"x","originalTimestamp":"not a time"}""");

        SingleError(e, "originalTimestamp");
    }

    // ---- track, page, screen, group, alias ---------------------------------------------------------------------

    [Fact]
    public void Track_MapsEventNameAndProperties()
    {
        var op = Call("track", """{"userId":"u1","event":"Order Completed","properties":{"total":10.5,"currency":"USD"}}""");

        Assert.Equal(OpKind.Track, op.Kind);
        Assert.Equal("Order Completed", op.Event!.Name);
        Assert.Equal("event", op.Event.Type);
        Assert.Equal("""{"total":10.5,"currency":"USD"}""", op.Event.Data.ToJsonString());
        Assert.Null(op.Device);
        Assert.Null(op.TouchDevice);
    }

    [Fact]
    public void Track_EventMissing_Rejected()
    {
        var e = RejectCall("track", """{"userId":"u1"}""");

        SingleError(e, "event");
    }

    [Fact]
    public void Track_EventOver100Bytes_Rejected()
    {
        var json = new JsonObject { ["userId"] = "u1", ["event"] = new string('e', 101) }.ToJsonString();

        var e = RejectCall("track", json);

        SingleError(e, "event");
    }

    [Fact]
    public void Track_PropertiesNotObject_Rejected()
    {
        var e = RejectCall("track", """{"userId":"u1","event":"x","properties":[1]}""");

        SingleError(e, "properties");
    }

    [Theory]
    [InlineData("page")]
    [InlineData("screen")]
    public void PageOrScreen_NamedEventOfThatType(string type)
    {
        var op = Call(type, """{"anonymousId":"a1","name":"Home","properties":{"path":"/"}}""");

        Assert.Equal(OpKind.Track, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.AnonymousId, "a1"), op.Target);
        Assert.Equal("Home", op.Event!.Name);
        Assert.Equal(type, op.Event.Type);
        Assert.Equal("""{"path":"/"}""", op.Event.Data.ToJsonString());
    }

    [Theory]
    [InlineData("page")]
    [InlineData("screen")]
    public void PageOrScreen_NoName_NamedAfterType(string type)
    {
        var op = Call(type, """{"userId":"u1"}""");

        Assert.Equal(type, op.Event!.Name);
        Assert.Empty(op.Event.Data);
    }

    [Fact]
    public void Group_EventCarriesTraitsAndGroupId()
    {
        var op = Call("group", """{"userId":"u1","groupId":"g1","traits":{"name":"Acme"}}""");

        Assert.Equal(OpKind.Track, op.Kind);
        Assert.Equal("group", op.Event!.Name);
        Assert.Equal("group", op.Event.Type);
        Assert.Equal("""{"name":"Acme","groupId":"g1"}""", op.Event.Data.ToJsonString());
    }

    [Fact]
    public void Group_GroupIdMissing_Rejected()
    {
        var e = RejectCall("group", """{"userId":"u1"}""");

        SingleError(e, "groupId");
    }

    [Fact]
    public void Alias_BecomesMergeWithIdOrAnonymousIdSecondary()
    {
        var op = Call("alias", """{"userId":"u1","previousId":"anon-9"}""");

        Assert.Equal(OpKind.Merge, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Equal(new Identifier(IdentifierKind.IdOrAnonymousId, "anon-9"), op.Secondary);
        Assert.Null(op.AnonymousId);
        Assert.Null(op.Event);
    }

    [Fact]
    public void Alias_WithAnonymousIdToo_AnonymousIdNotCarried()
    {
        var op = Call("alias", """{"userId":"u1","anonymousId":"anon-1","previousId":"old-id"}""");

        Assert.Null(op.AnonymousId);
        Assert.Equal(new Identifier(IdentifierKind.IdOrAnonymousId, "old-id"), op.Secondary);
    }

    [Fact]
    public void Alias_PreviousIdMissing_Rejected()
    {
        var e = RejectCall("alias", """{"userId":"u1"}""");

        SingleError(e, "previousId");
    }

    [Fact]
    public void Alias_UserIdMissing_Rejected()
    {
        var e = RejectCall("alias", """{"anonymousId":"a1","previousId":"p1"}""");

        var error = SingleError(e, "userId");
        Assert.Equal("is required", error.Problem);
    }

    [Fact]
    public void Alias_PreviousIdSameAsUserId_Rejected()
    {
        var e = RejectCall("alias", """{"userId":"u1","previousId":"u1"}""");

        SingleError(e, "previousId");
    }

    [Fact]
    public void Call_DeclaredTypeMismatch_RejectedNamingType()
    {
        var e = RejectCall("track", """{"type":"identify","userId":"u1","event":"x"}""");

        var error = SingleError(e, "type");
        Assert.Contains("/v1/track", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Call_DeclaredTypeMatching_Accepted()
    {
        var op = Call("track", """{"type":"track","userId":"u1","event":"x"}""");

        Assert.Equal("x", op.Event!.Name);
    }

    [Fact]
    public void Call_ContextNotObject_Rejected()
    {
        var e = RejectCall("track", """{"userId":"u1","event":"x","context":"web"}""");

        SingleError(e, "context");
    }

    [Fact]
    public void CallTypes_AreTheSixSegmentCalls()
    {
        string[] expected = ["alias", "group", "identify", "page", "screen", "track"];

        Assert.Equal(expected, SegmentParser.CallTypes.Order(StringComparer.Ordinal).ToArray());
    }

    // ---- sizes -------------------------------------------------------------------------------------------------

    [Fact]
    public void Call_Over32KB_Rejected()
    {
        var e = Assert.Throws<ValidationException>(() =>
            parser.Call("track", Body("""{"userId":"u1","event":"x"}"""), (32 * 1024) + 1, Now));

        var error = SingleError(e, "");
        Assert.Contains("32769 bytes", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Call_Exactly32KB_Accepted()
    {
        var op = parser.Call("track", Body("""{"userId":"u1","event":"x"}"""), 32 * 1024, Now);

        Assert.Equal("x", op.Event!.Name);
    }

    // ---- devices -----------------------------------------------------------------------------------------------

    [Fact]
    public void DeviceCreatedOrUpdated_BecomesUpsertDevice()
    {
        var op = Call("track", """
            {"userId":"u1","event":"Device Created or Updated","timestamp":"2024-06-01T10:00:00Z",
             "properties":{"push_enabled":"true","nested":{"x":1}},
             "context":{"device":{"token":"tok-1","type":"ios","id":"dev-9","model":"iPhone15,2","manufacturer":"Apple","name":"Bob's"},
                        "app":{"version":"2.3.1"},"os":{"version":"17.2"},"locale":"en-US"}}
            """);

        Assert.Equal(OpKind.UpsertDevice, op.Kind);
        Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), op.Target);
        Assert.Null(op.TouchDevice);
        Assert.Null(op.Event);
        var d = op.Device!;
        Assert.Equal("tok-1", d.Token);
        Assert.Equal("ios", d.Platform);
        Assert.Equal("dev-9", d.DeviceId);
        Assert.Equal(Utc("2024-06-01T10:00:00Z"), d.LastUsed);
        Assert.Equal("2.3.1", d.Attributes["app_version"]!.GetValue<string>());
        Assert.Equal("17.2", d.Attributes["device_os"]!.GetValue<string>());
        Assert.Equal("iPhone15,2", d.Attributes["device_model"]!.GetValue<string>());
        Assert.Equal("Apple", d.Attributes["device_manufacturer"]!.GetValue<string>());
        Assert.Equal("Bob's", d.Attributes["device_name"]!.GetValue<string>());
        Assert.Equal("en-US", d.Attributes["device_locale"]!.GetValue<string>());
        Assert.Equal("true", d.Attributes["push_enabled"]!.GetValue<string>());
        Assert.False(d.Attributes.ContainsKey("nested"));
    }

    [Theory]
    [InlineData("android", "android")]
    [InlineData("Android", "android")]
    [InlineData("fcm", "android")]
    [InlineData("apns", "ios")]
    public void DeviceCreatedOrUpdated_PlatformNormalized(string type, string expected)
    {
        var op = Call("track", $$$$"""
            {"userId":"u1","event":"Device Created or Updated","context":{"device":{"token":"t","type":"{{{{type}}}}"}}}
            """);

        Assert.Equal(expected, op.Device!.Platform);
        Assert.Null(op.Device.DeviceId);
    }

    [Theory]
    [InlineData("""{"userId":"u1","event":"Device Created or Updated"}""")]
    [InlineData("""{"userId":"u1","event":"Device Created or Updated","context":{"device":{"type":"ios"}}}""")]
    [InlineData("""{"userId":"u1","event":"Device Deleted","context":{}}""")]
    public void DeviceEvent_TokenMissing_RejectedNamingToken(string json)
    {
        var e = RejectCall("track", json);

        var error = SingleError(e, "context.device.token");
        Assert.Contains("is required", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void DeviceCreatedOrUpdated_TypeMissing_RejectedNamingType()
    {
        var e = RejectCall("track", """
            {"userId":"u1","event":"Device Created or Updated","context":{"device":{"token":"t"}}}
            """);

        SingleError(e, "context.device.type");
    }

    [Fact]
    public void DeviceCreatedOrUpdated_UnsupportedType_RejectedNamingType()
    {
        var e = RejectCall("track", """
            {"userId":"u1","event":"Device Created or Updated","context":{"device":{"token":"t","type":"windows"}}}
            """);

        Assert.NotEmpty(e.Errors);
        Assert.All(e.Errors, x => Assert.Equal("context.device.type", x.Field));
        Assert.Contains(e.Errors, x => x.Problem.Contains("'windows' is not a supported platform", StringComparison.Ordinal));
    }

    [Fact]
    public void DeviceDeleted_BecomesDeleteDevice()
    {
        var op = Call("track", """{"userId":"u1","event":"Device Deleted","context":{"device":{"token":"tok-1"}}}""");

        Assert.Equal(OpKind.DeleteDevice, op.Kind);
        Assert.Equal("tok-1", op.Device!.Token);
        Assert.Null(op.Device.Platform);
        Assert.Null(op.TouchDevice);
    }

    [Fact]
    public void Track_OrdinaryEventWithDeviceToken_TouchesDevice()
    {
        var op = Call("track", """
            {"userId":"u1","event":"Application Opened","timestamp":"2024-06-01T09:00:00Z",
             "context":{"device":{"token":"tok-1","type":"android","id":"dev-2"}}}
            """);

        Assert.Equal(OpKind.Track, op.Kind);
        Assert.Equal("Application Opened", op.Event!.Name);
        Assert.Null(op.Device);
        var touch = op.TouchDevice!;
        Assert.Equal("tok-1", touch.Token);
        Assert.Equal("android", touch.Platform);
        Assert.Equal("dev-2", touch.DeviceId);
        Assert.Equal(Utc("2024-06-01T09:00:00Z"), touch.LastUsed);
    }

    [Fact]
    public void Track_DeviceWithoutToken_NoTouch()
    {
        var op = Call("track", """{"userId":"u1","event":"x","context":{"device":{"id":"dev-2","type":"ios"}}}""");

        Assert.Null(op.TouchDevice);
    }

    [Fact]
    public void Track_DeviceNotObject_Rejected()
    {
        var e = RejectCall("track", """{"userId":"u1","event":"x","context":{"device":"phone"}}""");

        SingleError(e, "context.device");
    }

    // ---- batch -------------------------------------------------------------------------------------------------

    [Fact]
    public void Batch_AllCallTypes_ParsedInOrder()
    {
        var ops = Batch("""
            {"batch":[
              {"type":"identify","userId":"u1","traits":{"plan":"pro"}},
              {"type":"track","userId":"u1","event":"Signed Up"},
              {"type":"page","userId":"u1","name":"Home"},
              {"type":"screen","userId":"u1","name":"Settings"},
              {"type":"group","userId":"u1","groupId":"g1"},
              {"type":"alias","userId":"u1","previousId":"anon-1"}
            ],"writeKey":"wk","sentAt":"2024-06-01T12:00:00Z"}
            """);

        OpKind[] kinds = [OpKind.Identify, OpKind.Track, OpKind.Track, OpKind.Track, OpKind.Track, OpKind.Merge];
        Assert.Equal(kinds, ops.Select(o => o.Kind).ToArray());
        string?[] names = [null, "Signed Up", "Home", "Settings", "group", null];
        Assert.Equal(names, ops.Select(o => o.Event?.Name).ToArray());
        Assert.All(ops, o => Assert.Equal(new Identifier(IdentifierKind.Id, "u1"), o.Target));
    }

    [Fact]
    public void Batch_WithoutWriteKeyOrSentAt_Accepted()
    {
        var ops = Batch("""{"batch":[{"type":"track","anonymousId":"a","event":"x","messageId":"m1"}]}""");

        var op = Assert.Single(ops);
        Assert.Equal("m1", op.MessageId);
        Assert.Equal(Now, op.Timestamp);
    }

    [Fact]
    public void Batch_ItemError_NamedByIndexAndWholeBatchRejected()
    {
        var e = RejectBatch("""
            {"batch":[
              {"type":"track","userId":"u1","event":"ok"},
              {"type":"track","userId":"u1"},
              {"type":"identify","traits":{"email":"bad"},"userId":"u2"}
            ]}
            """);

        AssertFields(e, "batch[1].event", "batch[2].traits.email");
    }

    [Fact]
    public void Batch_ItemMissingIdentity_NamedByIndex()
    {
        var e = RejectBatch("""{"batch":[{"type":"track","event":"x"}]}""");

        SingleError(e, "batch[0].userId");
    }

    [Fact]
    public void Batch_BadItemTimestamp_NamedByIndex()
    {
        var e = RejectBatch("""
            {"batch":[{"type":"track","userId":"u1","event":"x"},{"type":"track","userId":"u1","event":"x","timestamp":"soon"}]}
            """);

        SingleError(e, "batch[1].timestamp");
    }

    [Fact]
    public void Batch_DeviceEvents_ParsedAndErrorsNamedByIndex()
    {
        var ops = Batch("""
            {"batch":[
              {"type":"track","userId":"u1","event":"Device Created or Updated","context":{"device":{"token":"t1","type":"ios"}}},
              {"type":"track","userId":"u1","event":"Device Deleted","context":{"device":{"token":"t0"}}}
            ]}
            """);
        OpKind[] kinds = [OpKind.UpsertDevice, OpKind.DeleteDevice];
        Assert.Equal(kinds, ops.Select(o => o.Kind).ToArray());
        Assert.Equal("t1", ops[0].Device!.Token);
        Assert.Equal("t0", ops[1].Device!.Token);

        var e = RejectBatch("""
            {"batch":[
              {"type":"track","userId":"u1","event":"Device Created or Updated","context":{"device":{"token":"t1"}}},
              {"type":"track","userId":"u1","event":"Device Deleted"}
            ]}
            """);
        AssertFields(e, "batch[0].context.device.type", "batch[1].context.device.token");
    }

    [Fact]
    public void Batch_SentAt_CorrectsOriginalTimestamps()
    {
        var ops = Batch("""
            {"batch":[{"type":"track","userId":"u1","event":"x","originalTimestamp":"2024-06-01T11:50:00Z"}],
             "sentAt":"2024-06-01T11:59:00Z"}
            """);

        Assert.Equal(Utc("2024-06-01T11:51:00Z"), Assert.Single(ops).Timestamp);
    }

    [Fact]
    public void Batch_ItemSentAt_OverridesBatchSentAt()
    {
        var ops = Batch("""
            {"batch":[{"type":"track","userId":"u1","event":"x","originalTimestamp":"2024-06-01T11:50:00Z","sentAt":"2024-06-01T11:58:00Z"}],
             "sentAt":"2024-06-01T11:59:00Z"}
            """);

        Assert.Equal(Utc("2024-06-01T11:52:00Z"), Assert.Single(ops).Timestamp);
    }

    [Fact]
    public void Batch_BadSentAt_RejectedNamingSentAt()
    {
        var e = RejectBatch("""{"batch":[{"type":"track","userId":"u1","event":"x"}],"sentAt":"later"}""");

        SingleError(e, "sentAt");
    }

    [Fact]
    public void Batch_UnknownType_RejectedNamingItemType()
    {
        var e = RejectBatch("""{"batch":[{"type":"track","userId":"u1","event":"x"},{"type":"purchase","userId":"u1"}]}""");

        var error = SingleError(e, "batch[1].type");
        Assert.Contains("'purchase' is not one of", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"batch":[{"userId":"u1","event":"x"}]}""", "batch[0].type")]
    [InlineData("""{"batch":[{"type":7,"userId":"u1"}]}""", "batch[0].type")]
    [InlineData("""{"batch":[{"type":"track","userId":"u1","event":"x"},"text"]}""", "batch[1]")]
    [InlineData("""{"batch":[null]}""", "batch[0]")]
    public void Batch_MalformedItem_NamedByIndex(string json, string field)
    {
        var e = RejectBatch(json);

        SingleError(e, field);
    }

    [Fact]
    public void Batch_Empty_Rejected()
    {
        var e = RejectBatch("""{"batch":[]}""");

        var error = SingleError(e, "batch");
        Assert.Equal("must hold at least one call", error.Problem);
    }

    [Theory]
    [InlineData("""{"batch":{"type":"track"}}""", "must be an array, got an object")]
    [InlineData("""{"batch":"[]"}""", "must be an array, got a string")]
    [InlineData("""{"calls":[]}""", "is required")]
    public void Batch_NotAnArray_Rejected(string json, string problem)
    {
        var e = RejectBatch(json);

        var error = SingleError(e, "batch");
        Assert.Equal(problem, error.Problem);
    }

    [Fact]
    public void Batch_Over500KB_Rejected()
    {
        var e = Assert.Throws<ValidationException>(() =>
            parser.Batch(Body("""{"batch":[{"type":"track","userId":"u1","event":"x"}]}"""), (500 * 1024) + 1, Now));

        var error = SingleError(e, "");
        Assert.Contains("512001 bytes", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Batch_Exactly500KB_Accepted()
    {
        var ops = parser.Batch(Body("""{"batch":[{"type":"track","userId":"u1","event":"x"}]}"""), 500 * 1024, Now);

        Assert.Single(ops);
    }

    [Fact]
    public void Batch_ItemOver32KB_RejectedNamingItem()
    {
        var big = new JsonObject
        {
            ["type"] = "track",
            ["userId"] = "u1",
            ["event"] = "x",
            ["properties"] = new JsonObject { ["blob"] = new string('x', 33_000) },
        };
        var body = new JsonObject
        {
            ["batch"] = new JsonArray(new JsonObject { ["type"] = "track", ["userId"] = "u1", ["event"] = "x" }, big),
        };

        var e = Assert.Throws<ValidationException>(() => parser.Batch(body, body.ToJsonString().Length, Now));

        var error = SingleError(e, "batch[1]");
        Assert.Contains("the limit is 32768", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Batch_NonAsciiItemUnder32KBAsSent_Accepted()
    {
        // 12,000 'é' are 24,000 UTF-8 bytes as sent: the call is well within 32 KB.
        var item = new JsonObject
        {
            ["type"] = "track",
            ["userId"] = "u1",
            ["event"] = "x",
            ["properties"] = new JsonObject { ["note"] = new string('é', 12_000) },
        };
        var body = new JsonObject { ["batch"] = new JsonArray(item) };
        var raw = Encoding.UTF8.GetByteCount(body.ToJsonString(AsSent));
        Assert.True(raw < 32 * 1024, $"sent size {raw}");

        var ops = parser.Batch(body, raw, Now);

        Assert.Equal(12_000, Assert.Single(ops).Event!.Data["note"]!.GetValue<string>().Length);
    }
}
