using System.Text.Json;
using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;
using static Nudge.Core.Tests.Journeys.JourneyKit;

namespace Nudge.Core.Tests.Journeys;

public class EngineTests
{
    private static readonly TimeSpan M30 = TimeSpan.FromMinutes(30);
    private static readonly QuietHours Night = new(new TimeOnly(21, 0), new TimeOnly(8, 0));

    /// <summary>22:00 UTC: inside 21:00-08:00 quiet hours for a person on UTC.</summary>
    private static readonly DateTimeOffset Late = new(2026, 6, 10, 22, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset NextMorning = new(2026, 6, 11, 8, 0, 0, TimeSpan.Zero);

    private static readonly Device Phone = NewDevice("tok-ios", "ios", T0.AddDays(-1));

    /// <summary>wait 30m -> push -> wait 1h -> email.</summary>
    private const string TwoSends = """
        id: demo
        version: 1
        trigger: { event: add_to_cart }
        steps:
          - id: wait
            delay: 30m
          - id: push
            send:
              channel: push
              push: { title: "Hi {{ customer.first_name }}", body: "Cart {{ event.cart_id }}", deep_link: "shop://cart/{{ event.cart_id }}" }
          - id: later
            delay: 1h
          - id: email
            send:
              channel: email
              email: { subject: "Still there?", html: "<p>{{ event.cart_id }}</p>" }
        """;

    /// <summary>One send with a push, SMS, email fallback chain.</summary>
    private const string Fallback = """
        id: demo
        version: 1
        trigger: { event: add_to_cart }
        steps:
          - id: nudge
            send:
              channels: [push, sms, email]
              devices: DEVICES
              push: { title: "t", body: "b" }
              sms: { body: "s {{ event.cart_id }}" }
              email: { subject: "e", html: "h" }
        """;

    private static JourneyEngine Plain() => Engine();

    private static Profile Shopper(string attributes = """{"first_name":"Ana"}""") => Person(attributes);

    private static TriggerSnapshot Cart(string cartId = "c1", double value = 150) =>
        Trigger($$"""{"cart_id":"{{cartId}}","cart_value":{{value}}}""");

    private static string Summary(RunResult r) => string.Join(" | ", r.Messages.Select(Summary));

    private static string Summary(Message m) => $"{m.StepId}/{m.Channel.ToString().ToLowerInvariant()}/{m.Status}/{m.Reason ?? "-"}";

    private static string Json(JourneyInstance i) => JsonSerializer.Serialize(i, StoreJson.Options);

    /// <summary>Starts <paramref name="yaml"/> at <paramref name="at"/> for <paramref name="p"/> and returns the run.</summary>
    private static (JourneyDefinition J, JourneyInstance I, RunResult R) Begin(
        string yaml,
        Profile p,
        DateTimeOffset? at = null,
        IReadOnlyList<Device>? devices = null,
        JourneyEngine? engine = null,
        IReadOnlyList<SendRecord>? history = null,
        string trigger = """{"cart_id":"c1","cart_value":150}""")
    {
        var j = Journey(yaml);
        var t = Trigger(trigger, at: at ?? T0);
        var i = NewInstance(j, t);
        var r = (engine ?? Plain()).Run(j, i, Ctx(p, t.Timestamp, devices ?? [Phone], history), EngineInput.Start);
        return (j, i, r);
    }

    // ---- Start, delays, timers ----------------------------------------------------------------------------------

    [Fact]
    public void Run_Start_RunsUntilFirstWait()
    {
        var (_, i, r) = Begin(TwoSends, Shopper());

        Assert.True(r.Changed);
        Assert.Empty(r.Messages);
        Assert.Equal(InstanceStatus.Active, i.Status);
        Assert.Equal("wait", i.CurrentStep);
        Assert.Equal(T0 + M30, i.WakeAt);
        Assert.Equal(T0, i.StepEnteredAt);
        Assert.Equal(1, i.StepVisits["wait"]);
        Assert.Equal("demo:k1:1", i.Id);
    }

    [Fact]
    public void Run_StartWithSendFirst_SendsThenWaits()
    {
        var (_, i, r) = Begin("""
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: email
                send: { channel: email, email: { subject: "Hi", html: "x" } }
              - id: wait
                delay: 2h
            """, Shopper());

        Assert.Equal("email/email/drafted/-", Summary(r));
        Assert.Equal("wait", i.CurrentStep);
        Assert.Equal(T0.AddHours(2), i.WakeAt);
        Assert.Equal(T0, i.LastMessageAt);
    }

    [Fact]
    public void Run_TimerBeforeWakeAt_ChangesNothing()
    {
        var (j, i, _) = Begin(TwoSends, Shopper());
        var before = Json(i);

        var r = Plain().Run(j, i, Ctx(Shopper(), T0 + M30 - TimeSpan.FromSeconds(1), [Phone]), EngineInput.Timer);

        Assert.False(r.Changed);
        Assert.Empty(r.Messages);
        Assert.Equal(before, Json(i));
    }

    [Fact]
    public void Run_TimerAtWakeAt_Advances()
    {
        var (j, i, _) = Begin(TwoSends, Shopper());

        var r = Plain().Run(j, i, Ctx(Shopper(), T0 + M30, [Phone]), EngineInput.Timer);

        var m = Assert.Single(r.Messages);
        Assert.Equal("push/push/drafted/-", Summary(m));
        Assert.Equal(T0 + M30, m.CreatedAt);
        Assert.Equal("""{"body":"Cart c1","deep_link":"shop://cart/c1","title":"Hi Ana"}""", m.Content.ToJsonString());
        Assert.Equal("tok-ios", Assert.Single(m.Recipients));
        Assert.Equal("ios", Assert.Single(m.Platforms));
        Assert.True(m.Ready);
        Assert.Equal("demo:k1:1", m.InstanceId);
        Assert.Equal("demo", m.JourneyId);
        Assert.Equal("k1", m.ProfileKey);
        Assert.Equal(JourneyEngine.MessageId(i, "push", 1), m.Id);
        Assert.Equal("drafted", Assert.Single(m.History).Status);
        Assert.Equal("later", i.CurrentStep);
        Assert.Equal(T0 + M30, i.StepEnteredAt);
        Assert.Equal(T0 + M30 + TimeSpan.FromHours(1), i.WakeAt);
        Assert.Equal(T0 + M30, i.LastMessageAt);
        Assert.Equal("""{"message_id":"__ID__","channel":"push","status":"drafted","reason":null}""".Replace("__ID__", m.Id, StringComparison.Ordinal), i.StepResults["push"].ToJsonString());
    }

    [Fact]
    public void Run_TimerTwentyMinutesLate_NextMessageStillWaitsItsFullDelay()
    {
        // The push is due at 12:30 but its timer runs at 12:50 (an outage). The email must still come an hour after the
        // push, not at 13:30 (an hour after the push was due) and not at once when the timer runs even later.
        var (j, i, _) = Begin(TwoSends, Shopper());
        var ran = T0 + M30 + TimeSpan.FromMinutes(20);

        var push = Assert.Single(Plain().Run(j, i, Ctx(Shopper(), ran, [Phone]), EngineInput.Timer).Messages);

        Assert.Equal(ran, push.CreatedAt);
        Assert.Equal("later", i.CurrentStep);
        Assert.Equal(ran, i.StepEnteredAt);
        Assert.Equal(ran + TimeSpan.FromHours(1), i.WakeAt);

        var early = Plain().Run(j, i, Ctx(Shopper(), T0 + M30 + TimeSpan.FromHours(1), [Phone]), EngineInput.Timer);
        Assert.False(early.Changed);
        Assert.Empty(early.Messages);

        var email = Assert.Single(Plain().Run(j, i, Ctx(Shopper(), ran + TimeSpan.FromHours(1), [Phone]), EngineInput.Timer).Messages);
        Assert.Equal("email/email/drafted/-", Summary(email));
        Assert.Equal(TimeSpan.FromHours(1), email.CreatedAt - push.CreatedAt);
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Fact]
    public void Run_VeryLateTimer_SendsTheDueMessageAndWaitsTheNextDelayInFull()
    {
        // Three hours late, both delays are long past their due times; only the first one had been reached.
        var (j, i, _) = Begin(TwoSends, Shopper());

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddHours(3), [Phone]), EngineInput.Timer);

        Assert.Equal("push/push/drafted/-", Summary(r));
        Assert.Equal(InstanceStatus.Active, i.Status);
        Assert.Equal("later", i.CurrentStep);
        Assert.Equal(T0.AddHours(4), i.WakeAt);
    }

    [Fact]
    public void Run_LateStartOfScheduledInstance_FirstDelayCountsFromTheRun()
    {
        // A date or inactivity journey due at 12:00 whose start runs at 12:20: it started at 12:00 (exit and goal
        // windows, re-entry), but its first wait is reached at 12:20.
        var j = Journey(TwoSends);
        var i = JourneyEngine.NewInstance(j, "k1", [], Cart(), T0, InstanceStatus.Pending);
        i.Status = InstanceStatus.Active;
        var ran = T0.AddMinutes(20);

        Plain().Run(j, i, Ctx(Shopper(), ran, [Phone]), EngineInput.Start);

        Assert.Equal(T0, i.StartedAt);
        Assert.Equal(ran, i.StepEnteredAt);
        Assert.Equal(ran + M30, i.WakeAt);
    }

    [Fact]
    public void Run_LateTimerBeforeDelayUntil_StillLandsAtTheLocalTime()
    {
        // push, 1 h, then "10:00 New York" (14:00 UTC), then email. The 1 h timer due at 13:00 UTC runs at 13:20:
        // the email still goes at 14:00 UTC, a local time does not move with lateness.
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: push
                send: { channel: push, push: { title: t, body: b } }
              - id: wait
                delay: 1h
              - id: morning
                delay_until: { time: "10:00" }
              - id: email
                send: { channel: email, email: { subject: e, html: h } }
            """;
        var engine = Engine(zone: "America/New_York");
        var (j, i, _) = Begin(yaml, Shopper(), engine: engine);
        Assert.Equal(T0.AddHours(1), i.WakeAt);

        var r = engine.Run(j, i, Ctx(Shopper(), T0.AddMinutes(80), [Phone]), EngineInput.Timer);

        Assert.Empty(r.Messages);
        Assert.Equal("morning", i.CurrentStep);
        Assert.Equal(T0.AddHours(2), i.WakeAt);
    }

    [Fact]
    public void Run_TimerAfterCompletion_DoesNothing()
    {
        var (j, i, _) = Begin(TwoSends, Shopper());
        Plain().Run(j, i, Ctx(Shopper(), T0.AddHours(3), [Phone]), EngineInput.Timer);
        Plain().Run(j, i, Ctx(Shopper(), T0.AddHours(4), [Phone]), EngineInput.Timer);
        Assert.Equal(InstanceStatus.Completed, i.Status);

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddHours(5), [Phone]), EngineInput.Timer);

        Assert.False(r.Changed);
        Assert.Empty(r.Messages);
    }

    [Theory]
    [InlineData("America/New_York", "2026-06-10T14:00:00+00:00")] // 08:00 EDT -> 10:00 EDT today
    [InlineData("Asia/Tokyo", "2026-06-11T01:00:00+00:00")] // 21:00 JST -> 10:00 JST tomorrow
    [InlineData("Europe/Paris", "2026-06-11T08:00:00+00:00")] // 14:00 CEST -> 10:00 CEST tomorrow
    public void Run_DelayUntil_UsesPersonZone(string zone, string expected)
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: purchase }
            steps:
              - id: morning
                delay_until: { time: "10:00" }
              - id: email
                send: { channel: email, email: { subject: "Hi", html: "x" } }
            """;
        var (j, i, r) = Begin(yaml, Shopper($$"""{"timezone":"{{zone}}"}"""));
        var wake = DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture);

        Assert.Empty(r.Messages);
        Assert.Equal(wake, i.WakeAt);

        var r2 = Plain().Run(j, i, Ctx(Shopper($$"""{"timezone":"{{zone}}"}"""), wake, [Phone]), EngineInput.Timer);

        Assert.Equal("email/email/drafted/-", Summary(r2));
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Fact]
    public void Run_DelayUntilWithoutTimezone_UsesWorkspaceDefault()
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: purchase }
            steps:
              - delay_until: { time: "10:00" }
            """;

        var (_, i, _) = Begin(yaml, Shopper(), engine: Engine(zone: "America/Los_Angeles"));

        // 05:00 PDT -> 10:00 PDT = 17:00 UTC.
        Assert.Equal(T0.AddHours(5), i.WakeAt);
    }

    // ---- wait_for -----------------------------------------------------------------------------------------------

    private const string WaitForPurchase = """
        id: demo
        version: 1
        trigger: { event: add_to_cart }
        steps:
          - id: wait
            wait_for:
              event: purchase
              match: [cart_id]
              timeout: 1h
              on_event: thanks
              on_timeout: nudge
          - id: nudge
            send: { channel: email, email: { subject: "Come back", html: "x" } }
            next: end
          - id: thanks
            send: { channel: email, email: { subject: "Thanks", html: "y" } }
        """;

    [Fact]
    public void Run_WaitForMatchingEvent_GoesToOnEvent()
    {
        var (j, i, _) = Begin(WaitForPurchase, Shopper());
        Assert.Equal(T0.AddHours(1), i.WakeAt);

        var at = T0.AddMinutes(20);
        var r = Plain().Run(j, i, Ctx(Shopper(), at, [Phone]), new EventInput(Event("purchase", """{"cart_id":"c1"}""", at, "ev-buy")));

        var m = Assert.Single(r.Messages);
        Assert.Equal("thanks/email/drafted/-", Summary(m));
        Assert.Equal("Thanks", (string?)m.Content["subject"]);
        Assert.Equal("""{"outcome":"event","event_id":"ev-buy","at":"2026-06-10T12:20:00+00:00"}""", i.StepResults["wait"].ToJsonString());
        Assert.Equal(InstanceStatus.Completed, i.Status);
        Assert.False(i.StepVisits.ContainsKey("nudge"));
    }

    [Fact]
    public void Run_WaitForEventWithOtherCartId_IsIgnored()
    {
        var (j, i, _) = Begin(WaitForPurchase, Shopper());
        var before = Json(i);

        var at = T0.AddMinutes(20);
        var r = Plain().Run(j, i, Ctx(Shopper(), at, [Phone]), new EventInput(Event("purchase", """{"cart_id":"c2"}""", at)));

        Assert.False(r.Changed);
        Assert.Empty(r.Messages);
        Assert.Equal(before, Json(i));
    }

    [Fact]
    public void Run_WaitForOtherEventName_IsIgnored()
    {
        var (j, i, _) = Begin(WaitForPurchase, Shopper());

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddMinutes(20), [Phone]), new EventInput(Event("page_view", """{"cart_id":"c1"}""", T0.AddMinutes(20))));

        Assert.False(r.Changed);
        Assert.Equal("wait", i.CurrentStep);
    }

    [Fact]
    public void Run_WaitForTimeout_GoesToOnTimeout()
    {
        var (j, i, _) = Begin(WaitForPurchase, Shopper());

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddHours(1), [Phone]), EngineInput.Timer);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/email/drafted/-", Summary(m));
        Assert.Equal("Come back", (string?)m.Content["subject"]);
        Assert.Equal("""{"outcome":"timeout","at":"2026-06-10T13:00:00+00:00"}""", i.StepResults["wait"].ToJsonString());
        Assert.Equal(InstanceStatus.Completed, i.Status);
        Assert.False(i.StepVisits.ContainsKey("thanks"));
    }

    [Fact]
    public void Run_WaitForEventAfterTimeoutBeforeLateTimer_TakesTimeoutBranch()
    {
        // The wait ended at 13:00; the purchase at 13:05 comes before the (late) timer ran. The outcome must not
        // depend on timer lateness: the wait timed out.
        var (j, i, _) = Begin(WaitForPurchase, Shopper());
        var at = T0.AddMinutes(65);

        var r = Plain().Run(j, i, Ctx(Shopper(), at, [Phone]), new EventInput(Event("purchase", """{"cart_id":"c1"}""", at)));

        Assert.Equal("timeout", (string?)i.StepResults["wait"]["outcome"]);
        Assert.Equal("nudge/email/drafted/-", Summary(r));
    }

    [Fact]
    public void Run_LateWaitForTimer_OutcomeAtTheTimeoutAndNextDelayCountsFromTheRun()
    {
        // The wait times out at 13:00 but its timer runs at 13:20: the outcome keeps 13:00 (when it timed out), and the
        // 30 min delay on the timeout branch is reached at 13:20, so it ends at 13:50.
        var (j, i, _) = Begin("""
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: wait
                wait_for: { event: purchase, match: [cart_id], timeout: 1h }
              - id: pause
                delay: 30m
              - id: nudge
                send: { channel: email, email: { subject: "Come back", html: "x" } }
            """, Shopper());
        var ran = T0.AddMinutes(80);

        var r = Plain().Run(j, i, Ctx(Shopper(), ran, [Phone]), EngineInput.Timer);

        Assert.Empty(r.Messages);
        Assert.Equal("""{"outcome":"timeout","at":"2026-06-10T13:00:00+00:00"}""", i.StepResults["wait"].ToJsonString());
        Assert.Equal("pause", i.CurrentStep);
        Assert.Equal(ran + M30, i.WakeAt);
    }

    // ---- branch and update --------------------------------------------------------------------------------------

    private const string BranchJourney = """
        id: demo
        version: 1
        trigger: { event: add_to_cart }
        steps:
          - id: check
            branch:
              if:
                - { path: trigger.cart_value, op: gte, value: 100 }
                - { path: customer.plan, op: eq, value: gold }
              then: big
              else: small
          - id: big
            update: { attributes: { segment: big } }
            next: end
          - id: small
            update: { attributes: { segment: small } }
        """;

    [Theory]
    [InlineData(150, "gold", "then", "big")]
    [InlineData(100, "gold", "then", "big")]
    [InlineData(99.5, "gold", "else", "small")]
    [InlineData(150, "silver", "else", "small")]
    public void Run_Branch_OnTriggerAndCustomer(double cartValue, string plan, string branch, string segment)
    {
        var (_, i, r) = Begin(BranchJourney, Shopper($$"""{"plan":"{{plan}}"}"""), trigger: $$"""{"cart_id":"c1","cart_value":{{cartValue}}}""");

        Assert.Equal(branch, (string?)i.StepResults["check"]["branch"]);
        Assert.Equal($$"""{"segment":"{{segment}}"}""", r.AttributeUpdates.ToJsonString());
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Theory]
    [InlineData(false, "then", """{"push_failed":true}""")]
    [InlineData(true, "else", "{}")]
    public void Run_Branch_OnStepResult(bool hasDevice, string branch, string updates)
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: push
                send: { channel: push, push: { title: t, body: b } }
              - id: check
                branch:
                  if: [ { path: steps.push.status, op: eq, value: undeliverable } ]
                  then: flag
                  else: end
              - id: flag
                update: { attributes: { push_failed: true } }
            """;

        var (_, i, r) = Begin(yaml, Shopper(), devices: hasDevice ? [Phone] : []);

        Assert.Equal(branch, (string?)i.StepResults["check"]["branch"]);
        Assert.Equal(updates, r.AttributeUpdates.ToJsonString());
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Fact]
    public void Run_Update_RendersLiquidAndKeepsOtherValues()
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: remember
                update:
                  attributes:
                    last_cart: "{{ event.cart_id }}"
                    greeting: "Hi {{ customer.first_name }}"
                    touched: true
                    score: 5
                    plain: "no template"
            """;

        var (_, i, r) = Begin(yaml, Shopper());

        Assert.Equal("""{"last_cart":"c1","greeting":"Hi Ana","touched":true,"score":5,"plain":"no template"}""", r.AttributeUpdates.ToJsonString());
        Assert.Equal("""{"updated":5}""", i.StepResults["remember"].ToJsonString());
        Assert.Empty(r.Messages);
    }

    [Fact]
    public void Run_UpdateWithMissingVariable_RecordsErrorAndSkipsIt()
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: remember
                update:
                  attributes:
                    coupon: "{{ event.coupon }}"
                    touched: true
            """;

        var (_, i, r) = Begin(yaml, Shopper());

        Assert.Equal("""{"touched":true}""", r.AttributeUpdates.ToJsonString());
        Assert.Equal("""{"errors":{"coupon":"missing variable event.coupon"}}""", i.StepResults["remember"].ToJsonString());
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Fact]
    public void Run_ExitStep_EndsExited()
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: stop
                exit: true
              - id: never
                send: { channel: email, email: { subject: "no", html: "no" } }
            """;

        var (_, i, r) = Begin(yaml, Shopper());

        Assert.Empty(r.Messages);
        Assert.Equal(InstanceStatus.Exited, i.Status);
        Assert.Equal("exit_step", i.EndReason);
        Assert.Equal(T0, i.EndedAt);
        Assert.False(i.IsOpen);
    }

    [Fact]
    public void Run_BranchLoopWithoutWait_StopsAtStepLimit()
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: spin
                branch:
                  if: [ { path: trigger.cart_id, op: exists } ]
                  then: spin
                  else: end
            """;

        var (_, i, _) = Begin(yaml, Shopper());

        Assert.Equal(InstanceStatus.Exited, i.Status);
        Assert.Equal("step_limit", i.EndReason);
    }

    // ---- Exits and goals ----------------------------------------------------------------------------------------

    private const string ExitOnPurchase = """
        id: demo
        version: 1
        trigger: { event: add_to_cart }
        exit:
          - event: purchase
            match: [cart_id]
        steps:
          - id: wait
            delay: 30m
          - id: push
            send: { channel: push, push: { title: t, body: b } }
        """;

    [Fact]
    public void Run_ExitEventDuringDelay_EndsInstanceAndLaterTimerSendsNothing()
    {
        var (j, i, _) = Begin(ExitOnPurchase, Shopper());
        var at = T0.AddMinutes(10);

        var r = Plain().Run(j, i, Ctx(Shopper(), at, [Phone]), new EventInput(Event("purchase", """{"cart_id":"c1"}""", at)));

        Assert.True(r.Changed);
        Assert.Equal(InstanceStatus.Exited, i.Status);
        Assert.Equal("exit_event:purchase", i.EndReason);
        Assert.Equal(at, i.EndedAt);
        Assert.Null(i.WakeAt);

        var later = Plain().Run(j, i, Ctx(Shopper(), T0 + M30, [Phone]), EngineInput.Timer);

        Assert.False(later.Changed);
        Assert.Empty(later.Messages);
        Assert.Equal(InstanceStatus.Exited, i.Status);
    }

    [Fact]
    public void Run_ExitEventForOtherCart_DoesNotExit()
    {
        var (j, i, _) = Begin(ExitOnPurchase, Shopper());

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddMinutes(10), [Phone]), new EventInput(Event("purchase", """{"cart_id":"c9"}""", T0.AddMinutes(10))));

        Assert.False(r.Changed);
        Assert.Equal(InstanceStatus.Active, i.Status);
    }

    [Fact]
    public void Run_ExitEventInEventsSinceStartAtTimer_StopsBeforeSend()
    {
        var (j, i, _) = Begin(ExitOnPurchase, Shopper());
        var purchase = Event("purchase", """{"cart_id":"c1"}""", T0.AddMinutes(5));

        var r = Plain().Run(j, i, Ctx(Shopper(), T0 + M30, [Phone], events: [purchase]), EngineInput.Timer);

        Assert.Empty(r.Messages);
        Assert.Equal(InstanceStatus.Exited, i.Status);
        Assert.Equal("exit_event:purchase", i.EndReason);
    }

    [Fact]
    public void Run_NonMatchingOrOlderEventsSinceStart_DoNotStopSend()
    {
        var (j, i, _) = Begin(ExitOnPurchase, Shopper());
        EventSnapshot[] events =
        [
            Event("purchase", """{"cart_id":"c2"}""", T0.AddMinutes(5)),
            Event("purchase", """{"cart_id":"c1"}""", T0.AddMinutes(-5)), // before the instance started
        ];

        var r = Plain().Run(j, i, Ctx(Shopper(), T0 + M30, [Phone], events: events), EngineInput.Timer);

        Assert.Equal("push/push/drafted/-", Summary(r));
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Fact]
    public void Run_ExitEventFromBeforeStart_DoesNotExit()
    {
        // A purchase that happened before this cart entered the journey, delivered late, must not end it
        // (the timer path already ignores events older than StartedAt).
        var (j, i, _) = Begin(ExitOnPurchase, Shopper());
        var purchase = Event("purchase", """{"cart_id":"c1"}""", T0.AddMinutes(-10));

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddMinutes(5), [Phone]), new EventInput(purchase));

        Assert.False(r.Changed);
        Assert.Equal(InstanceStatus.Active, i.Status);
    }

    [Fact]
    public void Run_ExitEventAfterTriggerButBeforeLateStart_Exits()
    {
        // The instance starts when add_to_cart is processed: after a queue backlog or a crash that is later than the
        // purchase the shopper sent right after it (queued behind it). That purchase must still end the instance; the
        // crash harness found such shoppers getting every message of the journey.
        var j = Journey(ExitOnPurchase);
        var i = JourneyEngine.NewInstance(j, "k1", [], Cart(), T0.AddSeconds(20));
        Plain().Run(j, i, Ctx(Shopper(), T0.AddSeconds(20), [Phone]), EngineInput.Start);

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddSeconds(20), [Phone]), new EventInput(Event("purchase", """{"cart_id":"c1"}""", T0.AddSeconds(1))));

        Assert.True(r.Changed);
        Assert.Equal(InstanceStatus.Exited, i.Status);
        Assert.Equal("exit_event:purchase", i.EndReason);
    }

    [Fact]
    public void Run_ExitEventAfterTriggerButBeforeLateStart_StopsTheTimerToo()
    {
        // The timer path (Functions mode re-reads the events since the trigger) sees the same purchase and sends nothing;
        // the trigger event itself, also in that list, does not count as an exit.
        var j = Journey(ExitOnPurchase.Replace("event: purchase", "event: add_to_cart", StringComparison.Ordinal));
        var i = JourneyEngine.NewInstance(j, "k1", [], Cart(), T0.AddSeconds(20));
        Plain().Run(j, i, Ctx(Shopper(), T0.AddSeconds(20), [Phone]), EngineInput.Start);
        var trigger = Event("add_to_cart", """{"cart_id":"c1"}""", T0, id: "ev-trigger");

        var kept = Plain().Run(j, Clone(i), Ctx(Shopper(), T0.AddSeconds(20) + M30, [Phone], events: [trigger]), EngineInput.Timer);
        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddSeconds(20) + M30, [Phone], events: [trigger, Event("add_to_cart", """{"cart_id":"c1"}""", T0.AddSeconds(1))]), EngineInput.Timer);

        Assert.Equal("push/push/drafted/-", Summary(kept));
        Assert.Empty(r.Messages);
        Assert.Equal(InstanceStatus.Exited, i.Status);
    }

    private const string GoalJourney = """
        id: demo
        version: 1
        trigger: { event: add_to_cart }
        goal:
          event: purchase
          within: 1d
          EXIT
        steps:
          - id: first
            send: { channel: email, email: { subject: "one", html: "x" } }
          - id: wait
            delay: 3d
          - id: second
            send: { channel: email, email: { subject: "two", html: "y" } }
        """;

    [Fact]
    public void Run_GoalWithinWindow_Converts()
    {
        var (j, i, _) = Begin(GoalJourney.Replace("EXIT", "", StringComparison.Ordinal), Shopper());
        var bought = T0.AddHours(2);

        var r = Plain().Run(j, i, Ctx(Shopper(), bought.AddMinutes(1), [Phone]), new EventInput(Event("purchase", "{}", bought)));

        Assert.Equal(bought, r.ConvertedAt);
        Assert.Equal(bought, i.ConvertedAt);
        Assert.Equal(InstanceStatus.Converted, i.Status);
        Assert.Equal("goal:purchase", i.EndReason);
        Assert.Empty(r.Messages);
    }

    [Fact]
    public void Run_GoalOutsideWindow_IsIgnored()
    {
        var (j, i, _) = Begin(GoalJourney.Replace("EXIT", "", StringComparison.Ordinal), Shopper());
        var bought = T0.AddDays(1).AddMinutes(1); // one day and a minute after the first message

        var r = Plain().Run(j, i, Ctx(Shopper(), bought, [Phone]), new EventInput(Event("purchase", "{}", bought)));

        Assert.False(r.Changed);
        Assert.Null(r.ConvertedAt);
        Assert.Null(i.ConvertedAt);
        Assert.Equal(InstanceStatus.Active, i.Status);
    }

    [Fact]
    public void Run_GoalWindow_CountsFromLastMessage()
    {
        var (j, i, _) = Begin(GoalJourney.Replace("EXIT", "", StringComparison.Ordinal), Shopper());
        Plain().Run(j, i, Ctx(Shopper(), T0.AddDays(3), [Phone]), EngineInput.Timer); // second message at +3d
        var bought = T0.AddDays(3).AddHours(20);

        var r = Plain().Run(j, i, Ctx(Shopper(), bought, [Phone]), new EventInput(Event("purchase", "{}", bought)));

        Assert.Equal(bought, r.ConvertedAt);
        Assert.Equal(InstanceStatus.Converted, i.Status);
    }

    [Fact]
    public void Run_GoalWithoutExit_MarksConvertedAndContinues()
    {
        var (j, i, _) = Begin(GoalJourney.Replace("EXIT", "exit: false", StringComparison.Ordinal), Shopper());
        var bought = T0.AddHours(2);

        var r = Plain().Run(j, i, Ctx(Shopper(), bought, [Phone]), new EventInput(Event("purchase", "{}", bought)));

        Assert.Equal(bought, r.ConvertedAt);
        Assert.Equal(bought, i.ConvertedAt);
        Assert.Equal(InstanceStatus.Active, i.Status);
        Assert.Equal("wait", i.CurrentStep);
    }

    [Fact]
    public void Run_EventMatchingExitAndGoal_RecordsConversion()
    {
        // Cart recovery exits on purchase and also has purchase as its goal: the purchase both ends the instance
        // and must mark it converted, or the journey never reports a conversion.
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            exit:
              - event: purchase
                match: [cart_id]
            goal:
              event: purchase
              match: [cart_id]
              within: 7d
            steps:
              - id: push
                send: { channel: push, push: { title: t, body: b } }
              - delay: 4h
            """;
        var (j, i, _) = Begin(yaml, Shopper());
        var bought = T0.AddHours(2);

        var r = Plain().Run(j, i, Ctx(Shopper(), bought, [Phone]), new EventInput(Event("purchase", """{"cart_id":"c1"}""", bought)));

        Assert.False(i.IsOpen);
        Assert.Equal(bought, r.ConvertedAt);
        Assert.Equal(bought, i.ConvertedAt);
    }

    private const string ShortGoalJourney = """
        id: demo
        version: 1
        trigger: { event: add_to_cart }
        goal: { event: purchase, within: 1d }
        steps:
          - id: only
            send: { channel: email, email: { subject: "one", html: "x" } }
        """;

    [Fact]
    public void Run_GoalAfterCompletionWithinWindow_Converts()
    {
        var (j, i, _) = Begin(ShortGoalJourney, Shopper());
        Assert.Equal(InstanceStatus.Completed, i.Status);
        var bought = T0.AddHours(20);
        Assert.True(JourneyEngine.CanStillConvert(j, i, bought));

        var r = Plain().Run(j, i, Ctx(Shopper(), bought, [Phone]), new EventInput(Event("purchase", "{}", bought)));

        Assert.Equal(bought, r.ConvertedAt);
        Assert.Equal(bought, i.ConvertedAt);
        Assert.Equal(InstanceStatus.Converted, i.Status);
        Assert.Empty(r.Messages);
    }

    [Fact]
    public void Run_GoalAfterCompletionOutsideWindow_Ignored()
    {
        var (j, i, _) = Begin(ShortGoalJourney, Shopper());
        var bought = T0.AddHours(25);
        Assert.False(JourneyEngine.CanStillConvert(j, i, bought));

        var r = Plain().Run(j, i, Ctx(Shopper(), bought, [Phone]), new EventInput(Event("purchase", "{}", bought)));

        Assert.False(r.Changed);
        Assert.Null(i.ConvertedAt);
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Fact]
    public void Run_GoalEventInEventsSinceStartAtTimer_ConvertsBeforeNextSend()
    {
        var (j, i, _) = Begin(GoalJourney.Replace("EXIT", "", StringComparison.Ordinal), Shopper());
        var bought = T0.AddHours(3);

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddDays(3), [Phone], events: [Event("purchase", "{}", bought)]), EngineInput.Timer);

        Assert.Empty(r.Messages);
        Assert.Equal(bought, r.ConvertedAt);
        Assert.Equal(InstanceStatus.Converted, i.Status);
    }

    // ---- Holdout ------------------------------------------------------------------------------------------------

    [Fact]
    public void Run_Holdout100_RecordsUndeliverableAndWalksToCompletion()
    {
        var (j, i, r) = Begin(TwoSends.Replace("version: 1", "version: 1\nholdout: 100", StringComparison.Ordinal), Shopper());
        Assert.True(i.Holdout);
        Assert.Empty(r.Messages);

        var r1 = Plain().Run(j, i, Ctx(Shopper(), T0 + M30, [Phone]), EngineInput.Timer);
        var r2 = Plain().Run(j, i, Ctx(Shopper(), T0 + M30 + TimeSpan.FromHours(1), [Phone]), EngineInput.Timer);

        Assert.Equal("push/push/undeliverable/holdout", Summary(r1));
        Assert.Equal("email/email/undeliverable/holdout", Summary(r2));
        Assert.True(r1.Messages[0].Holdout);
        Assert.False(r1.Messages[0].Ready);
        Assert.Equal("{}", r1.Messages[0].Content.ToJsonString());
        Assert.Equal(InstanceStatus.Completed, i.Status);
        Assert.Null(i.LastMessageAt);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(25)]
    [InlineData(50)]
    public void InHoldout_10000Keys_CloseToPercentage(int percent)
    {
        var j = Journey($$"""
            id: demo
            version: 1
            holdout: {{percent}}
            trigger: { event: add_to_cart }
            steps:
              - delay: 30m
            """);

        var held = Enumerable.Range(0, 10_000).Count(n => JourneyEngine.InHoldout(j, $"person-{n}"));

        Assert.InRange(held, (percent * 100) - 150, (percent * 100) + 150);
    }

    [Fact]
    public void InHoldout_SameJourneyAndPerson_AlwaysSameAnswer()
    {
        var a = Journey("id: journey_a\nversion: 1\nholdout: 30\ntrigger: { event: x }\nsteps:\n  - delay: 1m\n");
        var again = Journey("id: journey_a\nversion: 2\nholdout: 30\ntrigger: { event: y }\nsteps:\n  - delay: 5m\n");
        var b = Journey("id: journey_b\nversion: 1\nholdout: 30\ntrigger: { event: x }\nsteps:\n  - delay: 1m\n");
        var keys = Enumerable.Range(0, 1000).Select(n => $"person-{n}").ToList();

        var inA = keys.Where(k => JourneyEngine.InHoldout(a, k)).ToList();

        Assert.Equal(inA, keys.Where(k => JourneyEngine.InHoldout(again, k)).ToList());
        Assert.NotEqual(inA, keys.Where(k => JourneyEngine.InHoldout(b, k)).ToList());
        Assert.Equal(JourneyEngine.InHoldout(a, "person-7"), NewInstance(a, Trigger(), "person-7").Holdout);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(100, 1000)]
    public void InHoldout_Extremes_NoneOrAll(int percent, int expected)
    {
        var j = Journey($"id: demo\nversion: 1\nholdout: {percent}\ntrigger: {{ event: x }}\nsteps:\n  - delay: 1m\n");

        Assert.Equal(expected, Enumerable.Range(0, 1000).Count(n => JourneyEngine.InHoldout(j, $"p{n}")));
    }

    // ---- Eligibility, consent, fallback -------------------------------------------------------------------------

    [Fact]
    public void Run_SuppressedProfile_UndeliverableSuppressed()
    {
        var p = Shopper();
        p.Suppressed = true;

        var (_, i, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), p);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/push/undeliverable/suppressed", Summary(m));
        Assert.Empty(m.Recipients);
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Fact]
    public void Run_PushWithoutDevice_FallsBackToSms()
    {
        var p = Shopper("""{"sms_consent":true,"phone":"+14155550100"}""");

        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), p, devices: []);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/sms/drafted/-", Summary(m));
        Assert.Equal("+14155550100", Assert.Single(m.Recipients));
        Assert.Empty(m.Platforms);
        Assert.Equal("""{"body":"s c1"}""", m.Content.ToJsonString());
        Assert.Equal("""{"push":"no_device"}""", m.FallbackReasons.ToJsonString());
    }

    [Fact]
    public void Run_PushChosen_LaterChannelsThePersonCanReceiveAreRenderedAsFallbacks()
    {
        var withSms = Shopper("""{"sms_consent":true,"phone":"+14155550100"}""");
        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), withSms);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/push/drafted/-", Summary(m));
        Assert.Equal([Channel.Sms, Channel.Email], m.Fallbacks.Select(f => f.Channel));
        Assert.Equal("""{"body":"s c1"}""", m.Fallbacks[0].Content.ToJsonString());
        Assert.Equal(["+14155550100"], m.Fallbacks[0].Recipients);
        Assert.Equal(["ana@example.com"], m.Fallbacks[1].Recipients);

        // Without SMS consent only email remains behind push.
        var (_, _, r2) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), Shopper());
        Assert.Equal([Channel.Email], Assert.Single(r2.Messages).Fallbacks.Select(f => f.Channel));
    }

    [Theory]
    [InlineData("""{"sms_consent":false,"phone":"+14155550100"}""")]
    [InlineData("""{"phone":"+14155550100"}""")]
    [InlineData("""{"sms_consent":true,"phone":"4155550100"}""")]
    [InlineData("""{"sms_consent":true}""")]
    [InlineData("""{"sms_consent":"true","phone":"+14155550100"}""")]
    public void Run_PushWithoutDeviceAndNoSms_FallsBackToEmail(string attributes)
    {
        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), Shopper(attributes), devices: []);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/email/drafted/-", Summary(m));
        Assert.Equal("ana@example.com", Assert.Single(m.Recipients));
        Assert.Equal("""{"push":"no_device","sms":"consent_missing"}""", m.FallbackReasons.ToJsonString());
    }

    [Theory]
    [InlineData("+")]
    [InlineData("+abc")]
    [InlineData("+1 415 555 0100")]
    [InlineData("+0123456789")]
    public void Run_SmsPhoneNotE164_SmsIneligible(string phone)
    {
        var p = Shopper($$"""{"sms_consent":true,"phone":"{{phone}}"}""");

        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), p, devices: []);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/email/drafted/-", Summary(m));
        Assert.Equal("""{"push":"no_device","sms":"consent_missing"}""", m.FallbackReasons.ToJsonString());
    }

    [Fact]
    public void Run_SmsPhoneAttribute_PreferredOverPhone()
    {
        var p = Shopper("""{"sms_consent":true,"phone":"+14155550100","sms_phone":"+442071838750"}""");

        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), p, devices: []);

        Assert.Equal("+442071838750", Assert.Single(Assert.Single(r.Messages).Recipients));
    }

    [Fact]
    public void Run_AllChannelsIneligible_UndeliverableWithFirstReason()
    {
        var p = Person("""{"unsubscribed":true}""");

        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), p, devices: []);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/push/undeliverable/no_device", Summary(m));
        Assert.Equal("""{"push":"no_device","sms":"consent_missing","email":"consent_missing"}""", m.FallbackReasons.ToJsonString());
        Assert.False(m.Ready);
    }

    [Fact]
    public void Run_NoEmailAddress_EmailIneligible()
    {
        var p = Person("{}", email: null);

        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), p, devices: []);

        Assert.Equal("""{"push":"no_device","sms":"consent_missing","email":"consent_missing"}""", Assert.Single(r.Messages).FallbackReasons.ToJsonString());
    }

    [Fact]
    public void Run_PushOptOut_PushConsentMissing()
    {
        var p = Shopper("""{"push_opt_in":false}""");

        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), p);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/email/drafted/-", Summary(m));
        Assert.Equal("""{"push":"consent_missing","sms":"consent_missing"}""", m.FallbackReasons.ToJsonString());
    }

    private static readonly Device IosOld = NewDevice("tok-a", "ios", T0.AddDays(-1));
    private static readonly Device AndroidNew = NewDevice("tok-b", "android", T0.AddHours(-1));
    private static readonly Device IosOlder = NewDevice("tok-c", "ios", T0.AddDays(-2));

    [Theory]
    [InlineData("last_used", "tok-b", "android")]
    [InlineData("all", "tok-b,tok-a,tok-c", "android,ios,ios")]
    [InlineData("ios", "tok-a,tok-c", "ios,ios")]
    [InlineData("android", "tok-b", "android")]
    public void Run_PushTargeting_PicksTokens(string targeting, string tokens, string platforms)
    {
        var (_, _, r) = Begin(Fallback.Replace("DEVICES", targeting, StringComparison.Ordinal), Shopper(), devices: [IosOlder, IosOld, AndroidNew]);

        var m = Assert.Single(r.Messages);
        Assert.Equal(Channel.Push, m.Channel);
        Assert.Equal(tokens, string.Join(",", m.Recipients));
        Assert.Equal(platforms, string.Join(",", m.Platforms));
        Assert.Equal("{}", m.FallbackReasons.ToJsonString());
    }

    [Theory]
    [InlineData("false")]
    [InlineData("FALSE")]
    public void Run_PushDisabledDevice_IsSkipped(string pushEnabled)
    {
        var disabled = NewDevice("tok-b", "android", T0.AddHours(-1), pushEnabled: pushEnabled);

        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "last_used", StringComparison.Ordinal), Shopper(), devices: [IosOld, disabled]);

        Assert.Equal("tok-a", Assert.Single(Assert.Single(r.Messages).Recipients));
    }

    [Fact]
    public void Run_PlatformTargetingWithoutSuchDevice_FallsBack()
    {
        var (_, _, r) = Begin(Fallback.Replace("DEVICES", "android", StringComparison.Ordinal), Shopper(), devices: [IosOld]);

        var m = Assert.Single(r.Messages);
        Assert.Equal("nudge/email/drafted/-", Summary(m));
        Assert.Equal("""{"push":"no_device","sms":"consent_missing"}""", m.FallbackReasons.ToJsonString());
    }

    // ---- Quiet hours --------------------------------------------------------------------------------------------

    private static string OneSend(string channel, string quiet = "default", string extra = "")
    {
        var template = channel switch
        {
            "push" => "push: { title: t, body: b }",
            "sms" => "sms: { body: s }",
            _ => "email: { subject: e, html: h }",
        };
        return $$"""
            id: demo
            version: 1
            {{extra}}
            trigger: { event: add_to_cart }
            steps:
              - id: send
                send:
                  channel: {{channel}}
                  quiet_hours: {{quiet}}
                  {{template}}
            """;
    }

    private static Profile Reachable() => Shopper("""{"first_name":"Ana","sms_consent":true,"phone":"+14155550100"}""");

    [Theory]
    [InlineData("push", "default")]
    [InlineData("sms", "default")]
    [InlineData("push", "defer")]
    [InlineData("email", "defer")]
    public void Run_QuietHoursDefer_WaitsForEndOfWindowThenSendsSameMessage(string channel, string mode)
    {
        var engine = Engine(quiet: Night);
        var (j, i, r) = Begin(OneSend(channel, mode), Reachable(), at: Late, engine: engine);

        Assert.Empty(r.Messages);
        Assert.Equal(NextMorning, i.WakeAt);
        Assert.Equal("send", i.CurrentStep);
        Assert.Equal("""{"deferred":"quiet_hours","until":"2026-06-11T08:00:00+00:00"}""", i.StepResults["send"].ToJsonString());

        var early = engine.Run(j, i, Ctx(Reachable(), NextMorning.AddMinutes(-1), [Phone]), EngineInput.Timer);
        Assert.Empty(early.Messages);

        var r2 = engine.Run(j, i, Ctx(Reachable(), NextMorning, [Phone]), EngineInput.Timer);

        var m = Assert.Single(r2.Messages);
        Assert.Equal($"send/{channel}/drafted/-", Summary(m));
        Assert.Equal(NextMorning, m.CreatedAt);
        Assert.Equal(JourneyEngine.MessageId(i, "send", 1), m.Id);
        Assert.Equal(1, i.StepVisits["send"]);
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Fact]
    public void Run_QuietHoursInPersonZone_UsesTheirNight()
    {
        // 22:00 UTC is 07:00 in Tokyo: quiet until 08:00 JST = 23:00 UTC.
        var engine = Engine(quiet: Night);

        var (_, i, r) = Begin(OneSend("push"), Shopper("""{"timezone":"Asia/Tokyo"}"""), at: Late, engine: engine);

        Assert.Empty(r.Messages);
        Assert.Equal(Late.AddHours(1), i.WakeAt);
    }

    [Fact]
    public void Run_QuietHoursSkip_UndeliverableQuietHours()
    {
        var (_, i, r) = Begin(OneSend("push", "skip"), Reachable(), at: Late, engine: Engine(quiet: Night));

        Assert.Equal("send/push/undeliverable/quiet_hours", Summary(r));
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Theory]
    [InlineData("email", "default")]
    [InlineData("push", "ignore")]
    public void Run_QuietHoursIgnored_SendsAtOnce(string channel, string mode)
    {
        var (_, _, r) = Begin(OneSend(channel, mode), Reachable(), at: Late, engine: Engine(quiet: Night));

        Assert.Equal($"send/{channel}/drafted/-", Summary(r));
        Assert.Equal(Late, r.Messages[0].CreatedAt);
    }

    [Theory]
    [InlineData("push")]
    [InlineData("sms")]
    public void Run_TransactionalInQuietHours_SendsAtOnce(string channel)
    {
        var (_, _, r) = Begin(OneSend(channel, extra: "transactional: true"), Reachable(), at: Late, engine: Engine(quiet: Night));

        Assert.Equal($"send/{channel}/drafted/-", Summary(r));
        Assert.True(r.Messages[0].Transactional);
    }

    [Fact]
    public void Run_DelayAfterQuietHoursDeferredSend_CountsFromDeferredSendTime()
    {
        // push at 22:00 is deferred to 08:00; the 4 h wait after it must end at 12:00, not run out at once.
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: push
                send: { channel: push, push: { title: t, body: b } }
              - id: wait_4h
                delay: 4h
              - id: email
                send: { channel: email, email: { subject: e, html: h } }
            """;
        var engine = Engine(quiet: Night);
        var (j, i, _) = Begin(yaml, Reachable(), at: Late, engine: engine);

        var r = engine.Run(j, i, Ctx(Reachable(), NextMorning, [Phone]), EngineInput.Timer);

        Assert.Equal("push/push/drafted/-", Summary(r));
        Assert.Equal("wait_4h", i.CurrentStep);
        Assert.Equal(NextMorning.AddHours(4), i.WakeAt);
    }

    [Fact]
    public void Run_LateTimerOfDeferredSend_DelayAfterItCountsFromWhenItWent()
    {
        // The push deferred to 08:00 goes at 08:20 (its timer ran late): the 4 h wait after it ends at 12:20.
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: push
                send: { channel: push, push: { title: t, body: b } }
              - id: wait_4h
                delay: 4h
              - id: email
                send: { channel: email, email: { subject: e, html: h } }
            """;
        var engine = Engine(quiet: Night);
        var (j, i, _) = Begin(yaml, Reachable(), at: Late, engine: engine);
        var ran = NextMorning.AddMinutes(20);

        var r = engine.Run(j, i, Ctx(Reachable(), ran, [Phone]), EngineInput.Timer);

        Assert.Equal(ran, Assert.Single(r.Messages).CreatedAt);
        Assert.Equal(ran.AddHours(4), i.WakeAt);
    }

    // ---- Frequency caps -----------------------------------------------------------------------------------------

    private static readonly CapRule PushPerDay = new(Channel.Push, 1, TimeSpan.FromHours(24));

    private static SendRecord PushAgo(TimeSpan ago, int priority = 100) => new(Channel.Push, T0 - ago, priority, false);

    [Fact]
    public void Run_CapReached_DropsAsFrequencyCapped()
    {
        var (_, i, r) = Begin(OneSend("push", extra: "priority: 100"), Shopper(), engine: Engine([PushPerDay]), history: [PushAgo(TimeSpan.FromHours(1))]);

        var m = Assert.Single(r.Messages);
        Assert.Equal("send/push/undeliverable/frequency_capped", Summary(m));
        Assert.Equal("tok-ios", Assert.Single(m.Recipients));
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    [Theory]
    [InlineData(50, "send/push/undeliverable/frequency_capped")] // a cart-recovery send (100) counts against browse (50)
    [InlineData(100, "send/push/undeliverable/frequency_capped")]
    [InlineData(150, "send/push/drafted/-")] // a lower-priority send never blocks a higher one
    public void Run_CapHistory_OnlyEqualOrHigherPriorityCounts(int journeyPriority, string expected)
    {
        var (_, _, r) = Begin(OneSend("push", extra: $"priority: {journeyPriority}"), Shopper(), engine: Engine([PushPerDay]), history: [PushAgo(TimeSpan.FromHours(1), 100)]);

        Assert.Equal(expected, Summary(r));
    }

    [Fact]
    public void Run_CapReachedWithDefer_WakesAtCapRelease()
    {
        var engine = Engine([PushPerDay]);
        List<SendRecord> history = [PushAgo(TimeSpan.FromHours(1))];
        var yaml = OneSend("push", extra: "priority: 100").Replace("quiet_hours: default", "quiet_hours: default\n      caps: defer", StringComparison.Ordinal);
        var (j, i, r) = Begin(yaml, Shopper(), engine: engine, history: history);

        Assert.Empty(r.Messages);
        Assert.Equal(T0.AddHours(23), i.WakeAt);
        Assert.Equal("""{"deferred":"frequency_capped","until":"2026-06-11T11:00:00+00:00"}""", i.StepResults["send"].ToJsonString());

        var r2 = engine.Run(j, i, Ctx(Shopper(), T0.AddHours(23), [Phone], history), EngineInput.Timer);

        var m = Assert.Single(r2.Messages);
        Assert.Equal("send/push/drafted/-", Summary(m));
        Assert.Equal(JourneyEngine.MessageId(i, "send", 1), m.Id);
    }

    [Fact]
    public void Run_TransactionalJourney_ExemptFromCaps()
    {
        var (_, _, r) = Begin(OneSend("push", extra: "transactional: true"), Shopper(), engine: Engine([PushPerDay]), history: [PushAgo(TimeSpan.FromHours(1), 1000)]);

        Assert.Equal("send/push/drafted/-", Summary(r));
    }

    [Fact]
    public void Run_TwoSendsInOneRun_SecondCountsTheFirst()
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: one
                send: { channel: push, push: { title: t, body: b } }
              - id: two
                send: { channel: push, push: { title: t, body: b } }
            """;

        var (_, _, r) = Begin(yaml, Shopper(), engine: Engine([PushPerDay]));

        Assert.Equal("one/push/drafted/- | two/push/undeliverable/frequency_capped", Summary(r));
    }

    // ---- Render errors ------------------------------------------------------------------------------------------

    [Fact]
    public void Run_RenderError_MessageFailedWithReason()
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - id: push
                send: { channel: push, push: { title: "Hi {{ customer.nickname }}", body: b } }
              - id: after
                update: { attributes: { reached: true } }
            """;

        var (_, i, r) = Begin(yaml, Shopper());

        var m = Assert.Single(r.Messages);
        Assert.Equal("push/push/failed/render_error", Summary(m));
        Assert.Equal("""{"error":"title: missing variable customer.nickname"}""", m.Content.ToJsonString());
        Assert.False(m.Ready);
        Assert.Null(i.LastMessageAt);
        Assert.Equal("""{"reached":true}""", r.AttributeUpdates.ToJsonString());
        Assert.Equal(InstanceStatus.Completed, i.Status);
    }

    // ---- Idempotence and message ids ----------------------------------------------------------------------------

    [Fact]
    public void Run_SameStepTwiceFromSameState_SameMessages()
    {
        var (j, i, _) = Begin(TwoSends, Shopper());
        var a = Clone(i);
        var b = Clone(i);
        Assert.Equal(Json(i), Json(a));

        var ra = Engine().Run(j, a, Ctx(Shopper(), T0 + M30, [Phone]), EngineInput.Timer);
        var rb = Engine().Run(j, b, Ctx(Shopper(), T0 + M30, [Phone]), EngineInput.Timer);

        Assert.Equal(Assert.Single(ra.Messages).Id, Assert.Single(rb.Messages).Id);
        Assert.Equal(ra.Messages[0].Content.ToJsonString(), rb.Messages[0].Content.ToJsonString());
        Assert.Equal(Json(a), Json(b));
    }

    [Fact]
    public void Run_StartTwiceFromSameState_SameMessages()
    {
        var j = Journey(Fallback.Replace("DEVICES", "all", StringComparison.Ordinal));
        var i = NewInstance(j, Cart());
        var a = Clone(i);
        var b = Clone(i);

        var ra = Engine().Run(j, a, Ctx(Shopper(), T0, [Phone]), EngineInput.Start);
        var rb = Engine().Run(j, b, Ctx(Shopper(), T0, [Phone]), EngineInput.Start);

        Assert.Equal(Assert.Single(ra.Messages).Id, Assert.Single(rb.Messages).Id);
        Assert.Equal(JourneyEngine.MessageId(i, "nudge", 1), ra.Messages[0].Id);
    }

    [Fact]
    public void Run_TimerRepeatedAfterStoredRun_SendsNothingMore()
    {
        var (j, i, _) = Begin(TwoSends, Shopper());
        var first = Plain().Run(j, i, Ctx(Shopper(), T0 + M30, [Phone]), EngineInput.Timer);

        var again = Plain().Run(j, i, Ctx(Shopper(), T0 + M30, [Phone]), EngineInput.Timer);

        Assert.Single(first.Messages);
        Assert.Empty(again.Messages);
        Assert.False(again.Changed);
    }

    [Fact]
    public void MessageId_DiffersPerVisitStepAndInstance()
    {
        var j = Journey(TwoSends);
        var i = NewInstance(j, Cart());
        var other = JourneyEngine.NewInstance(j, "k1", [i], Cart(), T0);

        var ids = new[]
        {
            JourneyEngine.MessageId(i, "push", 1),
            JourneyEngine.MessageId(i, "push", 2),
            JourneyEngine.MessageId(i, "email", 1),
            JourneyEngine.MessageId(other, "push", 1),
        };

        Assert.Equal(4, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(JourneyEngine.MessageId(i, "push", 1), JourneyEngine.MessageId(Clone(i), "push", 1));
        Assert.StartsWith("k1-", ids[0]);
        Assert.Equal(23, ids[0].Length); // "k1-" + 20 hex digits
    }

    [Fact]
    public void Run_LoopRevisitsSend_NewMessageIdPerVisit()
    {
        var yaml = """
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            exit:
              - event: purchase
            steps:
              - id: ping
                send: { channel: email, email: { subject: ping, html: x } }
              - id: pause
                delay: 1h
              - id: again
                branch:
                  if: [ { path: trigger.cart_id, op: exists } ]
                  then: ping
                  else: end
            """;
        var (j, i, r1) = Begin(yaml, Shopper());

        var r2 = Plain().Run(j, i, Ctx(Shopper(), T0.AddHours(1), [Phone]), EngineInput.Timer);

        var m1 = Assert.Single(r1.Messages);
        var m2 = Assert.Single(r2.Messages);
        Assert.Equal(JourneyEngine.MessageId(i, "ping", 1), m1.Id);
        Assert.Equal(JourneyEngine.MessageId(i, "ping", 2), m2.Id);
        Assert.NotEqual(m1.Id, m2.Id);
        Assert.Equal(2, i.StepVisits["ping"]);
        Assert.Equal(T0.AddHours(2), i.WakeAt);
    }

    // ---- CannotStart and NewInstance ----------------------------------------------------------------------------

    private static JourneyDefinition Starter(string extra = "") => Journey($"""
        id: demo
        version: 1
        {extra}
        trigger: {"{"} event: add_to_cart {"}"}
        steps:
          - delay: 30m
        """);

    private static JourneyInstance Previous(JourneyDefinition j, DateTimeOffset started, InstanceStatus status) =>
        Set(JourneyEngine.NewInstance(j, "k1", [], Trigger(at: started), started), status);

    private static JourneyInstance Set(JourneyInstance i, InstanceStatus status)
    {
        i.Status = status;
        return i;
    }

    [Fact]
    public void CannotStart_FreshPerson_Null()
    {
        Assert.Null(JourneyEngine.CannotStart(Starter(), Shopper(), [], T0, T0));
    }

    [Fact]
    public void CannotStart_Suppressed()
    {
        var p = Shopper();
        p.Suppressed = true;

        Assert.Equal("suppressed", JourneyEngine.CannotStart(Starter(), p, [], T0, T0));
    }

    [Theory]
    [InlineData(true, false, "test_profile_in_live_journey")]
    [InlineData(false, true, "live_profile_in_test_journey")]
    [InlineData(true, true, null)]
    [InlineData(false, false, null)]
    public void CannotStart_TestProfilesOnlyInTestingJourneys(bool testProfile, bool testing, string? expected)
    {
        var p = Shopper(testProfile ? """{"test_profile":true}""" : "{}");

        Assert.Equal(expected, JourneyEngine.CannotStart(Starter(testing ? "testing: true" : ""), p, [], T0, T0));
    }

    [Theory]
    [InlineData("", 72 * 60, null)]
    [InlineData("", (72 * 60) + 1, "event_too_old")]
    [InlineData("max_event_age: 1h", 60, null)]
    [InlineData("max_event_age: 1h", 61, "event_too_old")]
    public void CannotStart_EventAge(string extra, int ageMinutes, string? expected)
    {
        Assert.Equal(expected, JourneyEngine.CannotStart(Starter(extra), Shopper(), [], T0.AddMinutes(-ageMinutes), T0));
    }

    [Theory]
    [InlineData(InstanceStatus.Active, "", "already_active")]
    [InlineData(InstanceStatus.Pending, "", "already_active")]
    [InlineData(InstanceStatus.Completed, "", null)]
    [InlineData(InstanceStatus.Exited, "", null)]
    [InlineData(InstanceStatus.Active, "concurrent: true", null)]
    public void CannotStart_AlreadyActive(InstanceStatus previous, string extra, string? expected)
    {
        var j = Starter(extra);

        Assert.Equal(expected, JourneyEngine.CannotStart(j, Shopper(), [Previous(j, T0.AddHours(-1), previous)], T0, T0));
    }

    [Fact]
    public void CannotStart_OnceAfterAnyEntry_EnteredBefore()
    {
        var j = Starter("reentry: once");

        Assert.Equal("entered_before", JourneyEngine.CannotStart(j, Shopper(), [Previous(j, T0.AddDays(-300), InstanceStatus.Completed)], T0, T0));
        Assert.Null(JourneyEngine.CannotStart(j, Shopper(), [], T0, T0));
    }

    [Theory]
    [InlineData(23, "entered_within_period")]
    [InlineData(25, null)]
    public void CannotStart_OncePerPeriod(int hoursAgo, string? expected)
    {
        var j = Starter("reentry: { once_per: 1d }");

        Assert.Equal(expected, JourneyEngine.CannotStart(j, Shopper(), [Previous(j, T0.AddHours(-hoursAgo), InstanceStatus.Completed)], T0, T0));
    }

    [Fact]
    public void NewInstance_AfterPreviousEntries_NumbersNextEntry()
    {
        var j = Starter();
        var t = Cart();
        var first = JourneyEngine.NewInstance(j, "k1", [], t, T0);
        var second = JourneyEngine.NewInstance(j, "k1", [Set(first, InstanceStatus.Completed)], t, T0.AddDays(1));

        Assert.Equal("demo:k1:1", first.Id);
        Assert.Equal(2, second.Entry);
        Assert.Equal("demo:k1:2", second.Id);
        Assert.Equal(T0.AddDays(1), second.StartedAt);
        Assert.Equal(InstanceStatus.Active, second.Status);
        Assert.Null(second.WakeAt);
        Assert.Null(second.CurrentStep);
        Assert.Equal(1, second.JourneyVersion);
    }

    [Fact]
    public void NewInstance_Pending_WakesAtStart()
    {
        var i = JourneyEngine.NewInstance(Starter(), "k1", [], Cart(), T0.AddDays(2), InstanceStatus.Pending);

        Assert.Equal(InstanceStatus.Pending, i.Status);
        Assert.Equal(T0.AddDays(2), i.WakeAt);
        Assert.True(i.IsOpen);
    }

    [Fact]
    public void Run_EventAfterExit_DoesNothing()
    {
        var (j, i, _) = Begin(ExitOnPurchase, Shopper());
        Plain().Run(j, i, Ctx(Shopper(), T0.AddMinutes(5), [Phone]), new EventInput(Event("purchase", """{"cart_id":"c1"}""", T0.AddMinutes(5))));

        var r = Plain().Run(j, i, Ctx(Shopper(), T0.AddMinutes(6), [Phone]), new EventInput(Event("purchase", """{"cart_id":"c1"}""", T0.AddMinutes(6))));

        Assert.False(r.Changed);
        Assert.Equal(T0.AddMinutes(5), i.EndedAt);
    }

    [Fact]
    public void Clone_ThroughStoreJson_KeepsTriggerAndResults()
    {
        var (_, i, _) = Begin(TwoSends, Shopper());
        i.StepResults["x"] = new JsonObject { ["a"] = 1 };

        var c = Clone(i);

        Assert.Equal("""{"cart_id":"c1","cart_value":150}""", c.Trigger.Data.ToJsonString());
        Assert.Equal(i.WakeAt, c.WakeAt);
        Assert.Equal("""{"a":1}""", c.StepResults["x"].ToJsonString());
    }
}
