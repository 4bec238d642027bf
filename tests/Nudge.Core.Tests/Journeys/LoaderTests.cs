using Nudge.Core.Journeys;
using static Nudge.Core.Tests.Journeys.JourneyKit;

namespace Nudge.Core.Tests.Journeys;

public class LoaderTests
{
    private const string Header = """
        id: demo
        version: 1
        trigger:
          event: add_to_cart
        steps:

        """;

    private static readonly string[] ExampleIds =
        ["back_in_stock", "cart_recovery", "checkout_dropoff", "payment_failed", "replenishment", "trial_ending", "winback"];

    private static string Where(IEnumerable<JourneyProblem> problems) => string.Join(" | ", problems.Select(p => $"{p.Path}@{p.Line}"));

    // ---- Example files ------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("back_in_stock.yaml")]
    [InlineData("cart_recovery.yaml")]
    [InlineData("checkout_dropoff.yaml")]
    [InlineData("payment_failed.yaml")]
    [InlineData("replenishment.yaml")]
    [InlineData("trial_ending.yaml")]
    [InlineData("winback.yaml")]
    public void Parse_ExampleFile_Loads(string file)
    {
        var path = Path.Combine(JourneysFolder(), file);

        var j = JourneyLoader.Parse(path, File.ReadAllText(path));

        Assert.Equal(Path.GetFileNameWithoutExtension(file), j.Id);
        Assert.Equal(path, j.SourceFile);
        Assert.Equal(1, j.Version);
        Assert.NotEmpty(j.Steps);
    }

    [Fact]
    public void LoadAll_ExampleFolder_LoadsEveryFileWithUniqueIds()
    {
        var files = Directory.GetFiles(JourneysFolder(), "*.yaml").Order(StringComparer.Ordinal).ToList();

        var journeys = JourneyLoader.LoadAll(files.Select(f => (f, File.ReadAllText(f))));

        Assert.Equal(ExampleIds, journeys.Select(j => j.Id).Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public void Parse_CartRecoveryExample_ReadsEveryRule()
    {
        var j = Example("cart_recovery.yaml");

        var trigger = Assert.IsType<EventTrigger>(j.Trigger);
        Assert.Equal("add_to_cart,cart_updated", string.Join(",", trigger.Names));
        var where = Assert.Single(trigger.Where);
        Assert.Equal(new Condition("event.cart_id", ConditionOp.Exists, null), where);
        Assert.Equal("Cart recovery", j.Name);
        Assert.Equal(100, j.Priority);
        Assert.Equal(10, j.HoldoutPercent);
        Assert.Equal(ReentryPolicy.EveryTime, j.Reentry);
        Assert.False(j.AllowConcurrent);
        Assert.Equal(TimeSpan.FromHours(72), j.MaxEventAge);
        Assert.Equal("purchase:cart_id,cart_emptied:cart_id", string.Join(",", j.Exits.Select(e => $"{e.Event}:{string.Join("+", e.Match)}")));
        Assert.NotNull(j.Goal);
        Assert.Equal("purchase", j.Goal.Rule.Event);
        Assert.Equal(TimeSpan.FromDays(7), j.Goal.Within);
        Assert.True(j.Goal.ExitOnConversion);
        Assert.Equal("wait_30m,push,wait_4h,email,wait_20h,high_value,sms", string.Join(",", j.Steps.Select(s => s.Id)));
        var push = Assert.IsType<SendStep>(j.Find("push"));
        Assert.Equal([Channel.Push, Channel.Sms, Channel.Email], push.Channels);
        Assert.Equal(DeviceTargeting.LastUsed, push.Devices);
        Assert.Equal(QuietHoursMode.Default, push.QuietHours);
        Assert.Equal(CapMode.Drop, push.Caps);
        Assert.Equal("{{ event.cart_id }}", push.Templates[Channel.Push].Fields["data.cart_id"]);
        Assert.Equal("shop://cart/{{ event.cart_id }}", push.Templates[Channel.Push].Fields["deep_link"]);
        var sms = Assert.IsType<SendStep>(j.Find("sms"));
        Assert.Equal(QuietHoursMode.Defer, sms.QuietHours);
        var branch = Assert.IsType<BranchStep>(j.Find("high_value"));
        Assert.Equal("sms", branch.Then);
        Assert.Equal("end", branch.Else);
        Assert.Equal(TimeSpan.FromHours(20), Assert.IsType<DelayStep>(j.Find("wait_20h")).Duration);
    }

    [Fact]
    public void Parse_OtherTriggerKinds_ReadDateAndInactivity()
    {
        var trial = Assert.IsType<DateTrigger>(Example("trial_ending.yaml").Trigger);
        var winback = Example("winback.yaml");
        var inactive = Assert.IsType<InactivityTrigger>(winback.Trigger);

        Assert.Equal("trial_end_at", trial.Attribute);
        Assert.Equal(TimeSpan.FromHours(-24), trial.Offset);
        Assert.Equal("app_opened", inactive.Event);
        Assert.Equal(TimeSpan.FromDays(30), inactive.Period);
        Assert.Equal(ReentryPolicy.OncePerPeriod, winback.Reentry);
        Assert.Equal(TimeSpan.FromDays(60), winback.ReentryPeriod);
    }

    [Fact]
    public void Parse_MinimalJourney_AppliesDefaults()
    {
        var j = Journey(Header + "  - delay: 30m\n");

        Assert.Equal("demo", j.Name);
        Assert.Equal("test.yaml", j.SourceFile);
        Assert.Equal(TimeSpan.FromHours(72), j.MaxEventAge);
        Assert.Equal(ReentryPolicy.EveryTime, j.Reentry);
        Assert.False(j.AllowConcurrent);
        Assert.False(j.Transactional);
        Assert.False(j.Testing);
        Assert.Equal(0, j.HoldoutPercent);
        Assert.Equal(0, j.Priority);
        Assert.Null(j.Goal);
        Assert.Empty(j.Exits);
    }

    [Fact]
    public void Parse_StepsWithoutIds_GetKindAndPosition()
    {
        var j = Journey(Header + """
              - delay: 21d
              - id: morning
                delay_until: { time: "10:00", days: [mon, fri] }
              - send:
                  channel: sms
                  sms: { body: "hi" }
              - exit: true
            """);

        Assert.Equal("delay_1,morning,send_3,exit_4", string.Join(",", j.Steps.Select(s => s.Id)));
        var until = Assert.IsType<DelayUntilStep>(j.Steps[1]);
        Assert.Equal(new TimeOnly(10, 0), until.LocalTime);
        Assert.Equal("Friday,Monday", string.Join(",", until.Days!.Select(d => d.ToString()).Order(StringComparer.Ordinal)));
        Assert.Equal("send_3", j.NextOf(j.Steps[1]));
        Assert.Null(j.NextOf(j.Steps[3]));
    }

    // ---- Problems: file, line, path -----------------------------------------------------------------------------

    [Fact]
    public void Parse_UnknownTopLevelKey_ReportsFileLineAndPath()
    {
        var p = ProblemAt("""
            id: demo
            version: 1
            colour: blue
            trigger:
              event: add_to_cart
            steps:
              - delay: 30m
            """, "colour");

        Assert.Equal("test.yaml", p.File);
        Assert.Equal(3, p.Line);
        Assert.StartsWith("unknown key; expected one of ", p.Problem);
        Assert.Equal("test.yaml:3: colour: " + p.Problem, p.ToString());
    }

    [Fact]
    public void Parse_OnlyAName_ReportsEachRequiredKey()
    {
        var problems = Problems("name: Nothing else\n");

        Assert.Equal("id@1 | version@1 | trigger@1 | steps@1", Where(problems));
        Assert.All(problems, p => Assert.StartsWith("is required", p.Problem));
    }

    [Theory]
    [InlineData("id", "is required")]
    [InlineData("version", "is required")]
    [InlineData("trigger", "is required")]
    [InlineData("steps", "is required: a list of steps")]
    public void Parse_MissingRequiredKey_ReportsIt(string missing, string problem)
    {
        var lines = new Dictionary<string, string>
        {
            ["id"] = "id: demo\n",
            ["version"] = "version: 1\n",
            ["trigger"] = "trigger:\n  event: add_to_cart\n",
            ["steps"] = "steps:\n  - delay: 30m\n",
        };
        var yaml = "# a journey\n" + string.Concat(lines.Where(kv => kv.Key != missing).Select(kv => kv.Value));

        var p = Assert.Single(Problems(yaml));

        Assert.Equal(missing, p.Path);
        Assert.Equal(problem, p.Problem);
        Assert.Equal(2, p.Line); // the mapping that lacks it starts on line 2
    }

    [Fact]
    public void Parse_BadId_ReportsIdLine()
    {
        var p = ProblemAt("""
            # Cart recovery
            id: Cart Recovery
            version: 1
            trigger: { event: add_to_cart }
            steps:
              - delay: 30m
            """, "id");

        Assert.Equal(2, p.Line);
        Assert.Equal("must be lower-case letters, digits, _ or -, starting with a letter", p.Problem);
    }

    [Fact]
    public void Parse_BadDuration_ReportsValueAndLine()
    {
        var p = ProblemAt(Header + """
              - id: wait
                delay: 5x
            """, "steps[0].delay");

        Assert.Equal(7, p.Line);
        Assert.Equal("'5x' is not a duration such as 30m, 4h, 1h30m or 21d", p.Problem);
    }

    [Fact]
    public void Parse_ZeroDuration_ReportsMustBeLonger()
    {
        var p = ProblemAt(Header + """
              - id: wait
                delay: 1h
              - id: wait2
                delay: 0m
            """, "steps[1].delay");

        Assert.Equal(9, p.Line);
        Assert.Equal("must be longer than zero", p.Problem);
    }

    [Fact]
    public void Parse_UnknownChannel_ReportsChannelLine()
    {
        var p = ProblemAt(Header + """
              - id: push
                send:
                  channel: fax
            """, "steps[0].send.channel");

        Assert.Equal(8, p.Line);
        Assert.Equal("'fax' is not a channel; use push, sms or email", p.Problem);
    }

    [Fact]
    public void Parse_UpperCaseChannel_IsNotAChannel()
    {
        var p = ProblemAt(Header + """
              - send:
                  channels: [push, SMS]
                  push: { title: t, body: b }
            """, "steps[0].send.channels[1]");

        Assert.Equal(7, p.Line);
        Assert.Equal("'SMS' is not a channel; use push, sms or email", p.Problem);
    }

    [Fact]
    public void Parse_MissingPushTitle_ReportsTemplateLine()
    {
        var p = ProblemAt(Header + """
              - id: push
                send:
                  channel: push
                  push: { body: "b" }
            """, "steps[0].send.push.title");

        Assert.Equal(9, p.Line);
        Assert.Equal("is required", p.Problem);
    }

    [Fact]
    public void Parse_MissingChannelTemplate_ReportsIt()
    {
        var p = ProblemAt(Header + """
              - id: send
                send:
                  channels: [push, email]
                  push: { title: t, body: b }
            """, "steps[0].send.email");

        Assert.Equal(8, p.Line); // the first line of the send mapping
        Assert.Equal("is required: the email template (subject, html)", p.Problem);
    }

    [Fact]
    public void Parse_UnknownTemplateField_ReportsFieldLine()
    {
        var p = ProblemAt(Header + """
              - id: push
                send:
                  channel: push
                  push:
                    title: "t"
                    body: "b"
                    sound: ding
            """, "steps[0].send.push.sound");

        Assert.Equal(12, p.Line);
        Assert.Equal("unknown field; push templates have title, body, deep_link, image, collapse_key, data", p.Problem);
    }

    [Fact]
    public void Parse_TemplateThatDoesNotParse_ReportsField()
    {
        var p = ProblemAt(Header + """
              - send:
                  channel: sms
                  sms:
                    body: "{{ customer.first_name "
            """, "steps[0].send.sms.body");

        Assert.Equal(9, p.Line);
        Assert.StartsWith("template does not parse: ", p.Problem);
    }

    [Fact]
    public void Parse_NextNamingMissingStep_ReportsNextLine()
    {
        var p = ProblemAt(Header + """
              - id: wait
                delay: 30m
                next: nowhere
            """, "steps[0].next");

        Assert.Equal(8, p.Line);
        Assert.Equal("'nowhere' is not a step id in this journey (or 'end')", p.Problem);
    }

    [Fact]
    public void Parse_BranchTargetsMissing_ReportsThenAndElse()
    {
        var problems = Problems(Header + """
              - id: check
                branch:
                  if:
                    - { path: event.x, op: exists }
                  then: nowhere
                  else: also_missing
            """);

        Assert.Equal("steps[0].branch.then@10 | steps[0].branch.else@11", Where(problems));
        Assert.Equal("'also_missing' is not a step id in this journey (or 'end')", problems[1].Problem);
    }

    [Fact]
    public void Parse_WaitForTargetsMissing_ReportsOnEventAndOnTimeout()
    {
        var problems = Problems(Header + """
              - id: wait
                wait_for:
                  event: purchase
                  timeout: 1h
                  on_event: gone
                  on_timeout: lost
            """);

        Assert.Equal("steps[0].wait_for.on_event@10 | steps[0].wait_for.on_timeout@11", Where(problems));
        Assert.Equal("'gone' is not a step id in this journey (or 'end')", problems[0].Problem);
    }

    [Fact]
    public void Parse_TargetEnd_IsAllowed()
    {
        var j = Journey(Header + """
              - id: wait
                wait_for: { event: purchase, timeout: 1h, on_event: end, on_timeout: push }
              - id: push
                send: { channel: sms, sms: { body: hi } }
                next: end
            """);

        var wait = Assert.IsType<WaitForStep>(j.Steps[0]);
        Assert.Equal("end", wait.OnEvent);
        Assert.Equal("push", wait.OnTimeout);
        Assert.Equal(TimeSpan.FromHours(1), wait.Timeout);
        Assert.Equal("end", j.Steps[1].Next);
    }

    [Fact]
    public void Parse_StepIdEnd_IsReserved()
    {
        var p = ProblemAt(Header + """
              - id: end
                delay: 30m
            """, "steps[0].id");

        Assert.Equal(6, p.Line);
        Assert.Equal("'end' is reserved: it means the journey is complete", p.Problem);
    }

    [Fact]
    public void Parse_DuplicateStepIds_ReportsTheSecond()
    {
        var p = ProblemAt(Header + """
              - id: wait
                delay: 30m
              - id: wait
                delay: 1h
            """, "steps[1].id");

        Assert.Equal(8, p.Line);
        Assert.Equal("'wait' is used by another step", p.Problem);
    }

    [Fact]
    public void Parse_TwoKindsInOneStep_ReportsStep()
    {
        var p = ProblemAt(Header + """
              - id: ok
                delay: 1h
              - id: both
                delay: 30m
                exit: true
            """, "steps[1]");

        Assert.Equal(8, p.Line);
        Assert.Equal("has delay and exit; a step does one thing", p.Problem);
    }

    [Fact]
    public void Parse_BadConditionOp_ReportsOpLine()
    {
        var p = ProblemAt("""
            id: demo
            version: 1
            trigger:
              event: add_to_cart
              where:
                - { path: event.cart_id, op: exists }
                - { path: event.cart_id, op: like, value: x }
            steps:
              - delay: 30m
            """, "trigger.where[1].op");

        Assert.Equal(7, p.Line);
        Assert.Equal("'like' is not one of eq, ne, gt, gte, lt, lte, exists, not_exists, in, contains", p.Problem);
    }

    [Fact]
    public void Parse_BadConditionPath_ReportsPathLine()
    {
        var p = ProblemAt("""
            id: demo
            version: 1
            trigger:
              event: add_to_cart
              where:
                - path: cart_id
                  op: exists
            steps:
              - delay: 30m
            """, "trigger.where[0].path");

        Assert.Equal(6, p.Line);
        Assert.Equal("'cart_id' must start with event., trigger., customer. or steps.<id>.", p.Problem);
    }

    [Fact]
    public void Parse_InWithoutList_ReportsValueLine()
    {
        var p = ProblemAt("""
            id: demo
            version: 1
            trigger:
              event: purchase
              where:
                - path: event.category
                  op: in
                  value: coffee
            steps:
              - delay: 30m
            """, "trigger.where[0].value");

        Assert.Equal(8, p.Line);
        Assert.Equal("must be a list for op in", p.Problem);
    }

    [Fact]
    public void Parse_ConditionWithoutValue_ReportsIt()
    {
        var p = ProblemAt("""
            id: demo
            version: 1
            trigger:
              event: purchase
              where:
                - { path: event.total, op: gte }
            steps:
              - delay: 30m
            """, "trigger.where[0].value");

        Assert.Equal(6, p.Line);
        Assert.Equal("is required for op gte", p.Problem);
    }

    [Fact]
    public void Parse_BadReentry_ReportsReentryLine()
    {
        var p = ProblemAt(Header.Replace("version: 1\n", "version: 1\nreentry: sometimes\n", StringComparison.Ordinal) + "  - delay: 30m\n", "reentry");

        Assert.Equal(3, p.Line);
        Assert.Equal("'sometimes' is not once, every_time or { once_per: <duration> }", p.Problem);
    }

    [Fact]
    public void Parse_Holdout150_ReportsHoldoutLine()
    {
        var p = ProblemAt(Header.Replace("version: 1\n", "version: 1\nholdout: 150\n", StringComparison.Ordinal) + "  - delay: 30m\n", "holdout");

        Assert.Equal(3, p.Line);
        Assert.Equal("must be a percentage from 0 to 100", p.Problem);
    }

    [Fact]
    public void Parse_GoalWithin91Days_ReportsWithinLine()
    {
        var p = ProblemAt("""
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            goal:
              event: purchase
              within: 91d
            steps:
              - delay: 30m
            """, "goal.within");

        Assert.Equal(6, p.Line);
        Assert.Equal("must be at most 90d (Customer.io's longest conversion window)", p.Problem);
    }

    [Fact]
    public void Parse_GoalWithin90Days_Loads()
    {
        var j = Journey("""
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            goal: { event: purchase, within: 90d, exit: false }
            steps:
              - delay: 30m
            """);

        Assert.Equal(TimeSpan.FromDays(90), j.Goal!.Within);
        Assert.False(j.Goal.ExitOnConversion);
    }

    [Fact]
    public void Parse_InvalidYaml_ReportsLine()
    {
        var p = Assert.Single(Problems("""
            id: demo
            version: 1
            name: Cart: recovery: now
            trigger: { event: add_to_cart }
            steps:
              - delay: 30m
            """));

        Assert.Equal("test.yaml", p.File);
        Assert.Equal("", p.Path);
        Assert.StartsWith("not valid YAML: ", p.Problem);
        Assert.Equal(3, p.Line);
    }

    [Fact]
    public void Parse_UnclosedFlowMapping_ReportsProblemInsteadOfCrashing()
    {
        // YamlDotNet's scanner throws InvalidOperationException (not YamlException) here; start-up must still get a
        // JourneyValidationException naming the file.
        var p = Assert.Single(Problems("""
            id: demo
            version: 1
            trigger: { event: add_to_cart
            steps:
              - delay: 30m
            """));

        Assert.Equal("test.yaml", p.File);
        Assert.StartsWith("not valid YAML: ", p.Problem);
    }

    [Fact]
    public void Parse_DuplicateYamlKey_ReportsSecondKeyLine()
    {
        var p = Assert.Single(Problems("""
            id: demo
            version: 1
            trigger: { event: add_to_cart }
            version: 2
            steps:
              - delay: 30m
            """));

        Assert.Equal(4, p.Line);
        Assert.Equal("", p.Path);
        Assert.Contains("uplicate key", p.Problem, StringComparison.Ordinal);
        Assert.Contains("version", p.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_EmptyFile_ReportsNotAMapping()
    {
        var p = Assert.Single(Problems(""));

        Assert.Equal("", p.Path);
        Assert.Equal(1, p.Line);
        Assert.Equal("a journey file must be a mapping with id, version, trigger and steps", p.Problem);
    }

    [Fact]
    public void LoadAll_DuplicateJourneyIds_ReportsSecondFileAtIdLine()
    {
        var a = Header + "  - delay: 30m\n";
        var b = "# a copy of a.yaml\n" + a;

        var e = Assert.Throws<JourneyValidationException>(() => JourneyLoader.LoadAll([("a.yaml", a), ("b.yaml", b)]));

        var p = Assert.Single(e.Problems);
        Assert.Equal("b.yaml", p.File);
        Assert.Equal("id", p.Path);
        Assert.Equal("journey id 'demo' is also used by a.yaml", p.Problem);
        Assert.Equal(2, p.Line); // id: demo is on line 2 of b.yaml
    }

    [Fact]
    public void LoadAll_SeveralBadFiles_ReportsProblemsOfEach()
    {
        var e = Assert.Throws<JourneyValidationException>(() => JourneyLoader.LoadAll(
            [("a.yaml", Header + "  - delay: 5x\n"), ("ok.yaml", Header + "  - delay: 5m\n"), ("c.yaml", "name: x\n")]));

        Assert.Equal("a.yaml,c.yaml,c.yaml,c.yaml,c.yaml", string.Join(",", e.Problems.Select(p => p.File)));
        Assert.Contains("a.yaml:6: steps[0].delay: '5x' is not a duration", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SeveralProblems_ReportsAllInOnePass()
    {
        var problems = Problems("""
            id: Demo
            version: 0
            holdout: 150
            trigger:
              event: add_to_cart
            steps:
              - id: wait
                delay: 5x
              - id: push
                send:
                  channel: fax
              - id: later
                delay: 1h
                next: gone
            """);

        Assert.Equal("id@1 | version@2 | steps[0].delay@8 | steps[1].send.channel@11 | steps[2].next@14 | holdout@3", Where(problems));
        Assert.Equal("must be a whole number >= 1", problems[1].Problem);
    }

    // ---- Durations ----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("30m", 0, 0, 30, 0)]
    [InlineData("4h", 0, 4, 0, 0)]
    [InlineData("1h30m", 0, 1, 30, 0)]
    [InlineData("21d", 21, 0, 0, 0)]
    [InlineData("90s", 0, 0, 0, 90)]
    [InlineData("1d12h", 1, 12, 0, 0)]
    [InlineData(" 20h ", 0, 20, 0, 0)]
    [InlineData("0m", 0, 0, 0, 0)]
    public void TryParse_ValidDuration_ReturnsValue(string text, int days, int hours, int minutes, int seconds)
    {
        Assert.True(Durations.TryParse(text, out var t));

        Assert.Equal(new TimeSpan(days, hours, minutes, seconds), t);
    }

    [Fact]
    public void TryParse_NegativeDuration_ReturnsNegative()
    {
        Assert.True(Durations.TryParse("-24h", out var t));

        Assert.Equal(TimeSpan.FromHours(-24), t);
    }

    [Theory]
    [InlineData("5x")]
    [InlineData("")]
    [InlineData("-")]
    [InlineData("h")]
    [InlineData("30")]
    [InlineData("1.5h")]
    [InlineData("30 m")]
    [InlineData("30M")]
    [InlineData("30m1h")]
    [InlineData("+4h")]
    public void TryParse_BadValue_ReturnsFalse(string text)
    {
        Assert.False(Durations.TryParse(text, out var t));

        Assert.Equal(TimeSpan.Zero, t);
    }

    [Theory]
    [InlineData(0, 0, 30, 0, "30m")]
    [InlineData(0, 4, 0, 0, "4h")]
    [InlineData(0, 1, 30, 0, "1h30m")]
    [InlineData(21, 0, 0, 0, "21d")]
    [InlineData(0, 0, 1, 30, "1m30s")]
    [InlineData(0, 0, 0, 0, "0s")]
    [InlineData(1, 2, 3, 4, "1d2h3m4s")]
    public void Format_Duration_WritesShortestForm(int days, int hours, int minutes, int seconds, string expected)
    {
        Assert.Equal(expected, Durations.Format(new TimeSpan(days, hours, minutes, seconds)));
    }

    [Fact]
    public void Format_Minus24Hours_WritesMinusOneDay()
    {
        Assert.Equal("-1d", Durations.Format(TimeSpan.FromHours(-24)));
    }

    [Theory]
    [InlineData("1h30m")]
    [InlineData("-2d5h")]
    [InlineData("45s")]
    public void Format_AfterTryParse_RoundTrips(string text)
    {
        Assert.True(Durations.TryParse(text, out var t));

        Assert.Equal(text, Durations.Format(t));
    }

    [Theory]
    [InlineData("cart_recovery.yaml", "add_to_cart,cart_emptied,cart_updated,purchase")]
    [InlineData("checkout_dropoff.yaml", "checkout_started,purchase")]  // trigger, exit, goal and the wait-for step
    [InlineData("winback.yaml", "app_opened")]  // the inactivity trigger's event resets the wait
    public void EventNames_AreEveryEventTheJourneyReactsTo(string file, string names)
    {
        Assert.Equal(names, string.Join(",", Example(file).EventNames().Distinct().Order(StringComparer.Ordinal)));
    }
}
