using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using static Nudge.Core.Tests.Journeys.JourneyKit;

namespace Nudge.Core.Tests.Journeys;

/// <summary>Walks a shopper through journeys/cart_recovery.yaml with explicit times.</summary>
public class ExampleJourneyTests
{
    /// <summary>A key outside cart recovery's 10 % holdout (checked in <see cref="Walk"/>).</summary>
    private const string ShopperKey = "shopper-1";

    private static readonly Device Iphone = NewDevice("apns-token-1", "ios", T0.AddDays(-2), ShopperKey);

    private static Profile Shopper() => Person(
        """{"first_name":"Ana","sms_consent":true,"phone":"+14155550100"}""", key: ShopperKey, email: "ana@example.com");

    private sealed class Walk
    {
        public Walk(double cartValue, string cartId = "c-123")
        {
            J = Example("cart_recovery.yaml");
            Assert.False(JourneyEngine.InHoldout(J, ShopperKey));
            var trigger = new TriggerSnapshot(
                "add_to_cart", "ev-1", T0, Obj($$"""{"cart_id":"{{cartId}}","cart_value":{{cartValue}},"item_name":"sneakers"}"""));
            Assert.Null(JourneyEngine.CannotStart(J, Shopper(), [], trigger.Timestamp, T0));
            I = JourneyEngine.NewInstance(J, ShopperKey, [], trigger, T0);
            var r = Run(T0, EngineInput.Start);
            Assert.Empty(r.Messages);
        }

        public JourneyDefinition J { get; }

        public JourneyInstance I { get; }

        public JourneyEngine Engine { get; } = JourneyKit.Engine();

        public List<Message> Sent { get; } = [];

        public RunResult Run(DateTimeOffset now, EngineInput input)
        {
            var r = Engine.Run(J, I, Ctx(Shopper(), now, [Iphone], Sent.Select(m => new SendRecord(m.Channel, m.CreatedAt, m.Priority, m.Transactional)).ToList()), input);
            Sent.AddRange(r.Messages);
            return r;
        }

        /// <summary>Fires the timer at exactly <paramref name="expectedWake"/>, after checking it is due then and not before.</summary>
        public RunResult TimerAt(DateTimeOffset expectedWake)
        {
            Assert.Equal(expectedWake, I.WakeAt);
            var early = Run(expectedWake.AddSeconds(-1), EngineInput.Timer);
            Assert.False(early.Changed);
            return Run(expectedWake, EngineInput.Timer);
        }

        public RunResult Purchase(DateTimeOffset at, string cartId) =>
            Run(at, new EventInput(new EventSnapshot("purchase", "ev-buy", at, Obj($$"""{"cart_id":"{{cartId}}","total":150}"""))));
    }

    private static string Timeline(IEnumerable<Message> messages) =>
        string.Join(" | ", messages.Select(m => $"{(m.CreatedAt - T0).TotalMinutes}m {m.StepId}/{m.Channel.ToString().ToLowerInvariant()}/{m.Status}"));

    [Fact]
    public void CartRecovery_HighValueCart_PushEmailThenSms()
    {
        var w = new Walk(150);

        var push = Assert.Single(w.TimerAt(T0.AddMinutes(30)).Messages);
        var email = Assert.Single(w.TimerAt(T0.AddHours(4).AddMinutes(30)).Messages);
        var sms = Assert.Single(w.TimerAt(T0.AddHours(24).AddMinutes(30)).Messages);

        Assert.Equal("30m push/push/drafted | 270m email/email/drafted | 1470m sms/sms/drafted", Timeline(w.Sent));
        Assert.Equal("shop://cart/c-123", (string?)push.Content["deep_link"]);
        Assert.Equal("Your cart is waiting", (string?)push.Content["title"]);
        Assert.Equal("Ana, your sneakers are still in your cart.", (string?)push.Content["body"]);
        Assert.Equal("c-123", (string?)push.Content["data"]!["cart_id"]);
        Assert.Equal("apns-token-1", Assert.Single(push.Recipients));
        Assert.Equal("ios", Assert.Single(push.Platforms));
        Assert.Equal("Still thinking it over?", (string?)email.Content["subject"]);
        Assert.Contains("https://shop.example/cart/c-123", (string?)email.Content["html"], StringComparison.Ordinal);
        Assert.Equal("ana@example.com", Assert.Single(email.Recipients));
        Assert.Equal("Ana, your cart is about to expire: shop.example/cart/c-123 Reply STOP to opt out.", (string?)sms.Content["body"]);
        Assert.Equal("+14155550100", Assert.Single(sms.Recipients));
        Assert.Equal("then", (string?)w.I.StepResults["high_value"]["branch"]);
        Assert.Equal(InstanceStatus.Completed, w.I.Status);
        Assert.Equal(T0.AddHours(24).AddMinutes(30), w.I.EndedAt);
        Assert.Equal(3, w.Sent.Select(m => m.Id).Distinct(StringComparer.Ordinal).Count());
        Assert.All(w.Sent, m => Assert.Equal(100, m.Priority));
    }

    [Fact]
    public void CartRecovery_LowValueCart_NoSmsAndCompleted()
    {
        var w = new Walk(50);

        w.TimerAt(T0.AddMinutes(30));
        w.TimerAt(T0.AddHours(4).AddMinutes(30));
        var last = w.TimerAt(T0.AddHours(24).AddMinutes(30));

        Assert.Empty(last.Messages);
        Assert.Equal("30m push/push/drafted | 270m email/email/drafted", Timeline(w.Sent));
        Assert.Equal("else", (string?)w.I.StepResults["high_value"]["branch"]);
        Assert.Equal(InstanceStatus.Completed, w.I.Status);
        Assert.False(w.I.StepVisits.ContainsKey("sms"));
    }

    [Fact]
    public void CartRecovery_PurchaseSameCartAfterPush_EndsAfterThePushOnly()
    {
        var w = new Walk(150);
        w.TimerAt(T0.AddMinutes(30));

        var r = w.Purchase(T0.AddHours(2), "c-123");

        Assert.True(r.Changed);
        Assert.False(w.I.IsOpen);
        Assert.Null(w.I.WakeAt);
        Assert.Equal(T0.AddHours(2), w.I.EndedAt);

        // purchase is both an exit and the goal: the engine converts rather than just exiting.
        Assert.Equal(InstanceStatus.Converted, w.I.Status);
        Assert.Equal("goal:purchase", w.I.EndReason);
        Assert.Equal(T0.AddHours(2), r.ConvertedAt);

        var later = w.Run(T0.AddHours(4).AddMinutes(30), EngineInput.Timer);
        var muchLater = w.Run(T0.AddHours(24).AddMinutes(30), EngineInput.Timer);

        Assert.Empty(later.Messages);
        Assert.Empty(muchLater.Messages);
        Assert.Equal("30m push/push/drafted", Timeline(w.Sent));
    }

    [Fact]
    public void CartRecovery_CartEmptied_ExitsWithoutConversion()
    {
        // A purchase is also the goal (and converts); cart_emptied is a plain exit.
        var w = new Walk(150);
        w.TimerAt(T0.AddMinutes(30));

        var at = T0.AddHours(2);
        w.Run(at, new EventInput(new EventSnapshot("cart_emptied", "ev-empty", at, Obj("""{"cart_id":"c-123"}"""))));

        Assert.Equal(InstanceStatus.Exited, w.I.Status);
        Assert.Equal("exit_event:cart_emptied", w.I.EndReason);
        Assert.Null(w.I.ConvertedAt);
        Assert.Empty(w.Run(T0.AddHours(4).AddMinutes(30), EngineInput.Timer).Messages);
        Assert.Equal("30m push/push/drafted", Timeline(w.Sent));
    }

    [Fact]
    public void CartRecovery_PurchaseOfAnotherCart_IsIgnored()
    {
        var w = new Walk(150);
        w.TimerAt(T0.AddMinutes(30));

        var r = w.Purchase(T0.AddHours(2), "c-999");

        Assert.False(r.Changed);
        Assert.Null(r.ConvertedAt);
        Assert.Equal(InstanceStatus.Active, w.I.Status);
        Assert.Equal("wait_4h", w.I.CurrentStep);

        w.TimerAt(T0.AddHours(4).AddMinutes(30));
        w.TimerAt(T0.AddHours(24).AddMinutes(30));

        Assert.Equal("30m push/push/drafted | 270m email/email/drafted | 1470m sms/sms/drafted", Timeline(w.Sent));
        Assert.Equal(InstanceStatus.Completed, w.I.Status);
    }

    [Fact]
    public void CartRecovery_PurchaseArrivedDuringWait_StopsBeforeEmail()
    {
        // The purchase event was stored but its own run was lost: the timer still sees it and sends nothing.
        var w = new Walk(150);
        w.TimerAt(T0.AddMinutes(30));
        var purchase = new EventSnapshot("purchase", "ev-buy", T0.AddHours(2), Obj("""{"cart_id":"c-123"}"""));

        var r = w.Engine.Run(w.J, w.I, Ctx(Shopper(), T0.AddHours(4).AddMinutes(30), [Iphone], events: [purchase]), EngineInput.Timer);

        Assert.Empty(r.Messages);
        Assert.False(w.I.IsOpen);
    }

    [Fact]
    public void CartRecovery_NoDeviceNoConsent_FirstMessageFallsBackToEmail()
    {
        var j = Example("cart_recovery.yaml");
        var p = Person("""{"first_name":"Bo"}""", key: ShopperKey);
        var i = JourneyEngine.NewInstance(j, ShopperKey, [], new TriggerSnapshot("cart_updated", "ev-1", T0, Obj("""{"cart_id":"c-7","cart_value":500}""")), T0);
        var engine = Engine();
        engine.Run(j, i, Ctx(p, T0), EngineInput.Start);

        var r = engine.Run(j, i, Ctx(p, T0.AddMinutes(30)), EngineInput.Timer);

        var m = Assert.Single(r.Messages);
        Assert.Equal(Channel.Email, m.Channel);
        Assert.Equal("push", m.StepId);
        Assert.Equal("You left something behind", (string?)m.Content["subject"]);
        Assert.Equal("""<p>Hi Bo,</p><p><a href="https://shop.example/cart/c-7">Return to your cart</a></p>""", (string?)m.Content["html"]);
        Assert.Equal("""{"push":"no_device","sms":"consent_missing"}""", m.FallbackReasons.ToJsonString());
    }

    [Fact]
    public void CartRecovery_TriggerWithoutCartId_DoesNotMatchTriggerConditions()
    {
        var trigger = Assert.IsType<EventTrigger>(Example("cart_recovery.yaml").Trigger);

        Assert.False(Conditions.All(trigger.Where, new ConditionScope(Obj("""{"cart_value":10}"""), null, Shopper(), null)));
        Assert.True(Conditions.All(trigger.Where, new ConditionScope(Obj("""{"cart_id":"c1"}"""), null, Shopper(), null)));
    }
}
