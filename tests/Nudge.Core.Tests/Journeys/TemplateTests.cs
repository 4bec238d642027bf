using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using static Nudge.Core.Tests.Journeys.JourneyKit;

namespace Nudge.Core.Tests.Journeys;

public class TemplateTests
{
    private readonly Templates _templates = new();

    private static JsonObject Model() => Obj("""
        {
          "customer": { "id": "cust-1", "email": "ana@example.com", "first_name": "Ana", "plan": { "name": "gold" } },
          "event": {
            "cart_id": "c-123", "cart_value": 150, "price": 19.5, "whole": 150.0, "tiny": 0.1, "big": 12345678901,
            "items": [ { "name": "Shoe", "tags": ["red", "sale"] }, { "name": "Sock", "tags": [] } ],
            "grid": [[1, 2], [3, 4]]
          },
          "journey": { "id": "cart_recovery", "name": "Cart recovery", "version": 1, "step": "push" }
        }
        """);

    private string? Ok(string source)
    {
        var (text, error) = _templates.Render(source, Model());
        Assert.Null(error);
        return text;
    }

    private string Error(string source)
    {
        var (text, error) = _templates.Render(source, Model());
        Assert.Null(text);
        Assert.NotNull(error);
        return error;
    }

    [Theory]
    [InlineData("Hi {{ customer.first_name }}", "Hi Ana")]
    [InlineData("{{ customer.email }} / {{ customer.id }}", "ana@example.com / cust-1")]
    [InlineData("{{ customer.plan.name }}", "gold")]
    [InlineData("shop://cart/{{ event.cart_id }}", "shop://cart/c-123")]
    [InlineData("{{ journey.id }} v{{ journey.version }} at {{ journey.step }}", "cart_recovery v1 at push")]
    [InlineData("{{ journey.name | upcase }}", "CART RECOVERY")]
    [InlineData("no variables", "no variables")]
    public void Render_KnownVariables_Substitutes(string source, string expected)
    {
        Assert.Equal(expected, Ok(source));
    }

    [Theory]
    [InlineData("{{ customer.last_name }}", "customer.last_name")]
    [InlineData("{{ event.coupon }}", "event.coupon")]
    [InlineData("{{ customer.plan.tier }}", "customer.plan.tier")]
    [InlineData("{{ journey.owner }}", "journey.owner")]
    public void Render_MissingVariable_ErrorNamesIt(string source, string variable)
    {
        Assert.Equal("missing variable " + variable, Error(source));
    }

    [Fact]
    public void Render_TwoMissingVariables_NamesBoth()
    {
        Assert.Equal("missing variable customer.last_name, event.coupon", Error("{{ customer.last_name }} {{ event.coupon }}"));
    }

    [Fact]
    public void Render_MissingRoot_ErrorNamesIt()
    {
        var error = Error("{{ order.id }}");

        Assert.StartsWith("render failed: ", error);
        Assert.Contains("order", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Hi {{ customer.last_name | default: 'there' }}", "Hi there")]
    [InlineData("Hi {{ customer.last_name | default: \"there\" }}", "Hi there")]
    [InlineData("{{ customer.first_name | default: 'Hi' }}", "Ana")]
    [InlineData("{{ event.item_name | default: 'items' }}", "items")]
    [InlineData("{{ event.order_id | default: '' }}!", "!")]
    public void Render_MissingWithDefault_UsesDefault(string source, string expected)
    {
        Assert.Equal(expected, Ok(source));
    }

    [Fact]
    public void Render_MissingVariableSharingLastNameWithDefaultedOne_IsStillAnError()
    {
        // event.name has a default; customer.name does not. The second must still be reported, not rendered empty.
        var (text, error) = _templates.Render("{{ event.name | default: 'friend' }}, hi {{ customer.name }}", Model());

        Assert.Equal("missing variable customer.name", error);
        Assert.Null(text);
    }

    [Fact]
    public void Render_ParseError_ReportsIt()
    {
        var error = Error("Hi {{ customer.first_name ");

        Assert.StartsWith("template does not parse: ", error);
    }

    [Fact]
    public void ParseError_BadAndGoodTemplates()
    {
        Assert.NotNull(Templates.ParseError("{% if customer.vip %}unclosed"));
        Assert.Null(Templates.ParseError("{{ customer.first_name | default: 'x' }}"));
    }

    [Theory]
    [InlineData("{% for i in event.items %}{{ i.name }}:{{ i.tags | size }};{% endfor %}", "Shoe:2;Sock:0;")]
    [InlineData("{{ event.items[0].tags[1] }}", "sale")]
    [InlineData("{{ event.grid[1][0] }}", "3")]
    [InlineData("{% for row in event.grid %}{% for c in row %}{{ c }}{% endfor %}|{% endfor %}", "12|34|")]
    [InlineData("{{ event.items | size }}", "2")]
    public void Render_NestedArrays_Walk(string source, string expected)
    {
        Assert.Equal(expected, Ok(source));
    }

    [Theory]
    [InlineData("{{ event.cart_value }}", "150")]
    [InlineData("{{ event.whole }}", "150")]
    [InlineData("{{ event.price }}", "19.5")]
    [InlineData("{{ event.tiny }}", "0.1")]
    [InlineData("{{ event.big }}", "12345678901")]
    [InlineData("{{ journey.version }}", "1")]
    [InlineData("{{ event.cart_value | plus: 1 }}", "151")]
    [InlineData("{{ event.price | times: 2 }}", "39.0")]
    public void Render_Numbers_ActualText(string source, string expected)
    {
        Assert.Equal(expected, Ok(source));
    }

    [Fact]
    public void Render_CachedTemplate_RendersWithNewModel()
    {
        var model = Model();
        Assert.Equal("Ana", Ok("{{ customer.first_name }}"));
        model["customer"]!["first_name"] = "Bo";

        var (text, _) = _templates.Render("{{ customer.first_name }}", model);

        Assert.Equal("Bo", text);
    }

    [Fact]
    public void RenderAll_DataFields_GoUnderData()
    {
        var fields = new Dictionary<string, string>
        {
            ["title"] = "Your cart",
            ["deep_link"] = "shop://cart/{{ event.cart_id }}",
            ["data.cart_id"] = "{{ event.cart_id }}",
            ["data.value"] = "{{ event.cart_value }}",
        };

        var (content, error) = _templates.RenderAll(fields, Model());

        Assert.Null(error);
        Assert.Equal("""{"data":{"cart_id":"c-123","value":"150"},"deep_link":"shop://cart/c-123","title":"Your cart"}""", content!.ToJsonString());
    }

    [Fact]
    public void RenderAll_OneFieldFails_ReturnsFieldAndNoContent()
    {
        var fields = new Dictionary<string, string>
        {
            ["title"] = "Hi",
            ["body"] = "{{ customer.nickname }}",
        };

        var (content, error) = _templates.RenderAll(fields, Model());

        Assert.Null(content);
        Assert.Equal("body: missing variable customer.nickname", error);
    }
}
