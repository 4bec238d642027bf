using Nudge.Delivery.Email;

namespace Nudge.Delivery.Tests.Email;

public class EmailOptionsTests
{
    private const string Password = "smtp-Pa55word-secret";
    private const string ApiKey = "SG.abc123.secret-api-key";

    private static EmailOptions Smtp() => new()
    {
        Provider = "smtp",
        From = "news@example.com",
        Smtp = new SmtpEmailOptions { Host = "smtp.example.com", UserName = "nudge", Password = Password },
    };

    private static EmailOptions SendGrid() => new()
    {
        Provider = "sendgrid",
        From = "news@example.com",
        SendGrid = new SendGridEmailOptions { ApiKey = ApiKey },
    };

    [Fact]
    public void Defaults_are_the_documented_ones()
    {
        var options = new EmailOptions();

        Assert.Equal(587, options.Smtp.Port);
        Assert.Equal("starttls", options.Smtp.Security);
        Assert.Equal(1, options.Smtp.MaxConnections);
        Assert.Equal("https://api.sendgrid.com", options.SendGrid.BaseUrl);
        Assert.Equal(15, options.RequestTimeoutSeconds);
        Assert.Equal("Nudge:Providers:Email", EmailOptions.Section);
    }

    [Fact]
    public void Complete_settings_have_no_problems()
    {
        Assert.Empty(Smtp().Validate());
        Assert.Empty(SendGrid().Validate());
        var caseInsensitive = SendGrid();
        caseInsensitive.Provider = "SendGrid";
        Assert.Empty(caseInsensitive.Validate());
    }

    [Fact]
    public void Empty_settings_name_provider_and_from()
    {
        var problems = new EmailOptions().Validate();

        Assert.Equal(
            ["Nudge:Providers:Email:From is required", "Nudge:Providers:Email:Provider is required (\"smtp\" or \"sendgrid\")"],
            problems);
    }

    [Fact]
    public void Smtp_problems_name_each_setting()
    {
        var options = Smtp();
        options.From = "not an address";
        options.ReplyTo = "nope";
        options.RequestTimeoutSeconds = 0;
        options.Smtp = new SmtpEmailOptions { Host = " ", Port = 0, Security = "ssl", MaxConnections = 0, Password = Password };

        Assert.Equal(
            [
                "Nudge:Providers:Email:From is not a valid email address",
                "Nudge:Providers:Email:ReplyTo is not a valid email address",
                "Nudge:Providers:Email:RequestTimeoutSeconds must be between 1 and 300",
                "Nudge:Providers:Email:Smtp:Host is required when Provider is smtp",
                "Nudge:Providers:Email:Smtp:Port must be between 1 and 65535",
                "Nudge:Providers:Email:Smtp:Security must be \"none\", \"starttls\" or \"tls\"",
                "Nudge:Providers:Email:Smtp:MaxConnections must be between 1 and 16",
                "Nudge:Providers:Email:Smtp:UserName is required when Smtp:Password is set",
            ],
            options.Validate());
    }

    [Fact]
    public void Smtp_user_without_password_is_a_problem()
    {
        var options = Smtp();
        options.Smtp.Password = null;

        Assert.Equal(["Nudge:Providers:Email:Smtp:Password is required when Smtp:UserName is set"], options.Validate());
    }

    [Fact]
    public void SendGrid_problems_name_each_setting()
    {
        var options = SendGrid();
        options.SendGrid = new SendGridEmailOptions { ApiKey = "", BaseUrl = "api.sendgrid.com" };

        Assert.Equal(
            [
                "Nudge:Providers:Email:SendGrid:ApiKey is required when Provider is sendgrid",
                "Nudge:Providers:Email:SendGrid:BaseUrl must be an absolute http(s) URL",
            ],
            options.Validate());
    }

    [Fact]
    public void Unknown_provider_is_named_without_echoing_the_value()
    {
        var options = Smtp();
        options.Provider = ApiKey; // a secret pasted into the wrong setting

        var problem = Assert.Single(options.Validate());

        Assert.Equal("Nudge:Providers:Email:Provider must be \"smtp\" or \"sendgrid\"", problem);
    }

    [Fact]
    public void Only_the_chosen_provider_settings_are_checked()
    {
        var options = Smtp();
        options.SendGrid.ApiKey = null;
        Assert.Empty(options.Validate());
    }

    [Fact]
    public void Secrets_are_never_in_to_string_problems_or_exceptions()
    {
        var smtp = Smtp();
        smtp.Smtp.Host = null;
        smtp.Smtp.UserName = null;
        var sendGrid = SendGrid();
        sendGrid.From = null;
        sendGrid.SendGrid.ApiKey = ApiKey + "\n";

        var texts = new List<string> { Smtp().ToString(), SendGrid().ToString(), smtp.ToString(), sendGrid.ToString() };
        texts.AddRange(smtp.Validate());
        texts.AddRange(sendGrid.Validate());
        texts.Add(Assert.Throws<ArgumentException>(() => new SmtpEmailProvider(smtp)).Message);
        texts.Add(Assert.Throws<ArgumentException>(() => new SendGridEmailProvider(sendGrid, TimeProvider.System)).Message);

        Assert.All(texts, t =>
        {
            Assert.DoesNotContain(Password, t, StringComparison.Ordinal);
            Assert.DoesNotContain("secret", t, StringComparison.OrdinalIgnoreCase);
        });
        Assert.Contains("Password = (set)", Smtp().ToString(), StringComparison.Ordinal);
        Assert.Contains("ApiKey = (set)", SendGrid().ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Provider_constructors_refuse_unusable_settings_by_name()
    {
        var smtp = Smtp();
        smtp.Smtp.Host = null;

        var ex = Assert.Throws<ArgumentException>(() => new SmtpEmailProvider(smtp));

        Assert.Contains("Nudge:Providers:Email:Smtp:Host is required", ex.Message, StringComparison.Ordinal);
        Assert.Equal("options", ex.ParamName);
    }

    [Fact]
    public void From_name_and_address_forms_are_accepted()
    {
        var options = SendGrid();
        options.From = "Nudge <news@example.com>";
        options.ReplyTo = "help@example.com";
        Assert.Empty(options.Validate());
    }
}
