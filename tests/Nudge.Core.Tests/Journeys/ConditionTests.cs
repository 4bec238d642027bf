using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using static Nudge.Core.Tests.Journeys.JourneyKit;

namespace Nudge.Core.Tests.Journeys;

public class ConditionTests
{
    private static JsonNode? J(string json) => JsonNode.Parse(json);

    private static bool Holds(string actual, ConditionOp op, string expected) =>
        Conditions.Holds(new Condition("event.x", op, J(expected)), J(actual));

    private static bool Missing(ConditionOp op, string expected = "1") =>
        Conditions.Holds(new Condition("event.x", op, J(expected)), null);

    private static ConditionScope Scope() => new(
        Obj("""{"cart_id":"c1","cart":{"value":150,"items":["a","b"]}}"""),
        Obj("""{"cart_value":"99.5","source":"web"}"""),
        Person("""{"plan":"gold","sms_consent":true,"address":{"city":"Lyon","geo":{"lat":45.76}},"tags":["vip","beta"]}"""),
        new Dictionary<string, JsonObject> { ["push"] = Obj("""{"status":"undeliverable","reason":"no_device"}""") });

    private static bool At(string path, ConditionOp op, string? value) =>
        Conditions.All([new Condition(path, op, value is null ? null : J(value))], Scope());

    // ---- Numbers ------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("10", ConditionOp.Eq, "10", true)]
    [InlineData("10", ConditionOp.Eq, "10.0", true)]
    [InlineData("10", ConditionOp.Eq, "11", false)]
    [InlineData("10", ConditionOp.Ne, "11", true)]
    [InlineData("10", ConditionOp.Ne, "10", false)]
    [InlineData("10", ConditionOp.Gt, "9", true)]
    [InlineData("10", ConditionOp.Gt, "10", false)]
    [InlineData("10", ConditionOp.Gte, "10", true)]
    [InlineData("9.99", ConditionOp.Gte, "10", false)]
    [InlineData("9", ConditionOp.Lt, "10", true)]
    [InlineData("10", ConditionOp.Lt, "10", false)]
    [InlineData("10", ConditionOp.Lte, "10", true)]
    [InlineData("11", ConditionOp.Lte, "10", false)]
    [InlineData("-3", ConditionOp.Lt, "0", true)]
    public void Holds_Numbers_CompareNumerically(string actual, ConditionOp op, string expected, bool result)
    {
        Assert.Equal(result, Holds(actual, op, expected));
    }

    [Theory]
    [InlineData("\"10\"", ConditionOp.Gt, "9", true)] // ordinally "10" < "9"; numerically 10 > 9
    [InlineData("\"150\"", ConditionOp.Gte, "100", true)]
    [InlineData("\"99.5\"", ConditionOp.Lt, "100", true)]
    [InlineData("\"10\"", ConditionOp.Eq, "10", true)]
    [InlineData("10", ConditionOp.Eq, "\"10.00\"", true)]
    [InlineData("\"10\"", ConditionOp.Gt, "\"9\"", true)]
    [InlineData("\"1e3\"", ConditionOp.Eq, "1000", true)]
    public void Holds_NumericStrings_CompareAsNumbers(string actual, ConditionOp op, string expected, bool result)
    {
        Assert.Equal(result, Holds(actual, op, expected));
    }

    // ---- Strings and booleans -----------------------------------------------------------------------------------

    [Theory]
    [InlineData("\"gold\"", ConditionOp.Eq, "\"gold\"", true)]
    [InlineData("\"gold\"", ConditionOp.Eq, "\"Gold\"", false)]
    [InlineData("\"gold\"", ConditionOp.Ne, "\"silver\"", true)]
    [InlineData("\"gold\"", ConditionOp.Ne, "\"gold\"", false)]
    [InlineData("\"b\"", ConditionOp.Gt, "\"a\"", true)]
    [InlineData("\"B\"", ConditionOp.Gt, "\"a\"", false)] // ordinal: 'B' (66) < 'a' (97)
    [InlineData("\"apple\"", ConditionOp.Lt, "\"banana\"", true)]
    [InlineData("\"abc\"", ConditionOp.Lte, "\"abc\"", true)]
    [InlineData("\"abc\"", ConditionOp.Gte, "\"abd\"", false)]
    public void Holds_Strings_CompareOrdinally(string actual, ConditionOp op, string expected, bool result)
    {
        Assert.Equal(result, Holds(actual, op, expected));
    }

    [Theory]
    [InlineData("\"abc\"", ConditionOp.Gt, "5")]
    [InlineData("\"abc\"", ConditionOp.Lt, "5")]
    [InlineData("\"abc\"", ConditionOp.Gte, "5")]
    [InlineData("\"abc\"", ConditionOp.Lte, "5")]
    [InlineData("\"abc\"", ConditionOp.Eq, "5")]
    [InlineData("true", ConditionOp.Eq, "1")]
    public void Holds_TextAgainstNumber_NeverOrders(string actual, ConditionOp op, string expected)
    {
        Assert.False(Holds(actual, op, expected));
    }

    [Theory]
    [InlineData("true", ConditionOp.Eq, "true", true)]
    [InlineData("false", ConditionOp.Eq, "false", true)]
    [InlineData("true", ConditionOp.Eq, "false", false)]
    [InlineData("true", ConditionOp.Ne, "false", true)]
    [InlineData("true", ConditionOp.Ne, "true", false)]
    [InlineData("true", ConditionOp.Gt, "false", false)]
    [InlineData("false", ConditionOp.Lt, "true", false)]
    [InlineData("true", ConditionOp.Gte, "false", false)]
    [InlineData("true", ConditionOp.Gte, "true", true)]
    [InlineData("\"true\"", ConditionOp.Eq, "true", false)]
    public void Holds_Booleans_OnlyEqualityHolds(string actual, ConditionOp op, string expected, bool result)
    {
        Assert.Equal(result, Holds(actual, op, expected));
    }

    // ---- Missing values -----------------------------------------------------------------------------------------

    [Theory]
    [InlineData(ConditionOp.Eq, false)]
    [InlineData(ConditionOp.Ne, true)]
    [InlineData(ConditionOp.Gt, false)]
    [InlineData(ConditionOp.Gte, false)]
    [InlineData(ConditionOp.Lt, false)]
    [InlineData(ConditionOp.Lte, false)]
    [InlineData(ConditionOp.Exists, false)]
    [InlineData(ConditionOp.NotExists, true)]
    [InlineData(ConditionOp.Contains, false)]
    public void Holds_MissingValue_OnlyNeAndNotExistsHold(ConditionOp op, bool result)
    {
        Assert.Equal(result, Missing(op));
    }

    [Fact]
    public void Holds_MissingValueWithIn_Fails()
    {
        Assert.False(Missing(ConditionOp.In, """[1, null]"""));
    }

    [Fact]
    public void Holds_PresentValue_ExistsHoldsNotExistsFails()
    {
        Assert.True(Holds("0", ConditionOp.Exists, "null"));
        Assert.False(Holds("\"\"", ConditionOp.NotExists, "null"));
    }

    // ---- in and contains ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("\"coffee\"", """["skincare","coffee"]""", true)]
    [InlineData("\"tea\"", """["skincare","coffee"]""", false)]
    [InlineData("2", """["1","2"]""", true)]
    [InlineData("\"2\"", """[1,2]""", true)]
    [InlineData("3", """[1,2]""", false)]
    [InlineData("\"coffee\"", """[]""", false)]
    public void Holds_In_MatchesAnyListItem(string actual, string list, bool result)
    {
        Assert.Equal(result, Holds(actual, ConditionOp.In, list));
    }

    [Fact]
    public void Holds_InWithoutList_Fails()
    {
        Assert.False(Holds("\"coffee\"", ConditionOp.In, "\"coffee\""));
    }

    [Theory]
    [InlineData("""["vip","beta"]""", "\"beta\"", true)]
    [InlineData("""["vip","beta"]""", "\"bet\"", false)]
    [InlineData("""[1,2,3]""", "2", true)]
    [InlineData("""[1,2,3]""", "\"3\"", true)]
    [InlineData("""[]""", "\"x\"", false)]
    [InlineData("\"hello world\"", "\"lo w\"", true)]
    [InlineData("\"hello world\"", "\"World\"", false)]
    [InlineData("12345", "\"23\"", false)]
    [InlineData("\"12345\"", "23", false)]
    [InlineData("""{"a":1}""", "\"a\"", false)]
    public void Holds_Contains_ArraysAndText(string actual, string value, bool result)
    {
        Assert.Equal(result, Holds(actual, ConditionOp.Contains, value));
    }

    // ---- Paths --------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("event.cart_id", "\"c1\"")]
    [InlineData("event.cart.value", "150")]
    [InlineData("trigger.source", "\"web\"")]
    [InlineData("trigger.cart_value", "\"99.5\"")]
    [InlineData("customer.plan", "\"gold\"")]
    [InlineData("customer.sms_consent", "true")]
    [InlineData("customer.address.city", "\"Lyon\"")]
    [InlineData("customer.address.geo.lat", "45.76")]
    [InlineData("customer.id", "\"cust-1\"")]
    [InlineData("customer.email", "\"ana@example.com\"")]
    [InlineData("customer.cio_id", "\"cio_k1\"")]
    [InlineData("steps.push.status", "\"undeliverable\"")]
    [InlineData("steps.push.reason", "\"no_device\"")]
    public void Resolve_Path_FindsValue(string path, string expected)
    {
        Assert.True(At(path, ConditionOp.Eq, expected));
        Assert.Equal(J(expected)!.ToJsonString(), Scope().Resolve(path)!.ToJsonString());
    }

    [Theory]
    [InlineData("event.nope")]
    [InlineData("event.cart_id.deeper")]
    [InlineData("event.cart.nope")]
    [InlineData("trigger.cart_id")]
    [InlineData("customer.nope")]
    [InlineData("customer.address.zip")]
    [InlineData("customer.plan.tier")]
    [InlineData("steps.email.status")]
    [InlineData("steps.push")]
    [InlineData("other.thing")]
    public void Resolve_MissingPath_IsNull(string path)
    {
        Assert.Null(Scope().Resolve(path));
        Assert.True(At(path, ConditionOp.NotExists, null));
    }

    [Fact]
    public void Resolve_CustomerWithoutProfile_IsNull()
    {
        var scope = new ConditionScope(null, null, null, null);

        Assert.Null(scope.Resolve("customer.id"));
        Assert.Null(scope.Resolve("customer.plan"));
        Assert.Null(scope.Resolve("event.x"));
        Assert.Null(scope.Resolve("steps.push.status"));
    }

    [Fact]
    public void Resolve_CustomerWithoutEmail_IsNull()
    {
        var scope = new ConditionScope(null, null, Person("{}", email: null, id: null), null);

        Assert.Null(scope.Resolve("customer.email"));
        Assert.Null(scope.Resolve("customer.id"));
    }

    [Fact]
    public void All_EveryConditionMustHold()
    {
        var scope = Scope();
        Condition gold = new("customer.plan", ConditionOp.Eq, "gold");
        Condition big = new("event.cart.value", ConditionOp.Gte, 100);
        Condition web = new("trigger.source", ConditionOp.Eq, "app");

        Assert.True(Conditions.All([gold, big], scope));
        Assert.False(Conditions.All([gold, big, web], scope));
        Assert.True(Conditions.All([], scope));
    }

    [Fact]
    public void All_TagsArrayContains_Holds()
    {
        Assert.True(At("customer.tags", ConditionOp.Contains, "\"vip\""));
        Assert.False(At("customer.tags", ConditionOp.Contains, "\"gold\""));
        Assert.True(At("event.cart.items", ConditionOp.Contains, "\"b\""));
    }

    // ---- Matches ------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("""{"cart_id":"c1","x":1}""", """{"cart_id":"c1"}""", true)]
    [InlineData("""{"cart_id":"c2"}""", """{"cart_id":"c1"}""", false)]
    [InlineData("""{"cart_id":"7"}""", """{"cart_id":7}""", true)]
    [InlineData("""{}""", """{"cart_id":"c1"}""", false)]
    [InlineData("""{"cart_id":"c1"}""", """{}""", false)]
    [InlineData("""{}""", """{}""", false)]
    [InlineData("""{"cart_id":null}""", """{"cart_id":null}""", false)]
    public void Matches_CartIdKey_ComparesEventAndTrigger(string ev, string trigger, bool result)
    {
        Assert.Equal(result, Conditions.Matches(["cart_id"], Obj(ev), Obj(trigger)));
    }

    [Fact]
    public void Matches_NoKeys_AlwaysMatches()
    {
        Assert.True(Conditions.Matches([], Obj("""{"cart_id":"c2"}"""), Obj("""{"cart_id":"c1"}""")));
    }

    [Fact]
    public void Matches_TwoKeys_BothMustMatch()
    {
        var trigger = Obj("""{"cart_id":"c1","store":"paris"}""");

        Assert.True(Conditions.Matches(["cart_id", "store"], Obj("""{"cart_id":"c1","store":"paris"}"""), trigger));
        Assert.False(Conditions.Matches(["cart_id", "store"], Obj("""{"cart_id":"c1","store":"lyon"}"""), trigger));
    }

    [Fact]
    public void RuleMatches_EventNameMatchAndWhere_AllApply()
    {
        var rule = new EventRule("purchase", [new Condition("event.total", ConditionOp.Gt, 0)], ["cart_id"]);
        var j = Journey("""
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - delay: 30m
            """);
        var i = NewInstance(j, Trigger("""{"cart_id":"c1"}"""));
        var p = Person();

        Assert.True(JourneyEngine.RuleMatches(rule, Event("purchase", """{"cart_id":"c1","total":5}""", T0), i, p));
        Assert.False(JourneyEngine.RuleMatches(rule, Event("refund", """{"cart_id":"c1","total":5}""", T0), i, p));
        Assert.False(JourneyEngine.RuleMatches(rule, Event("purchase", """{"cart_id":"c2","total":5}""", T0), i, p));
        Assert.False(JourneyEngine.RuleMatches(rule, Event("purchase", """{"cart_id":"c1","total":0}""", T0), i, p));
    }
}
