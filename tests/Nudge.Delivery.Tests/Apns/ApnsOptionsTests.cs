using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Apns;

namespace Nudge.Delivery.Tests.Apns;

public sealed class ApnsOptionsTests : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly List<string> _files = [];

    public void Dispose()
    {
        _key.Dispose();
        foreach (var file in _files)
        {
            File.Delete(file);
        }
    }

    private ApnsOptions Valid(Action<ApnsOptions>? configure = null)
    {
        var options = new ApnsOptions
        {
            KeyId = "ABC123DEFG",
            TeamId = "TEAM123456",
            BundleId = "com.example.nudge",
            PrivateKey = _key.ExportPkcs8PrivateKeyPem(),
        };
        configure?.Invoke(options);
        return options;
    }

    private string TempFile(string text)
    {
        var path = Path.Combine(Path.GetTempPath(), $"apns-{Guid.NewGuid():N}.p8");
        File.WriteAllText(path, text);
        _files.Add(path);
        return path;
    }

    [Fact]
    public void Defaults_are_production_apple_hosts_10_s_and_50_min()
    {
        var options = new ApnsOptions();

        Assert.Equal("production", options.DefaultEnvironment);
        Assert.Equal("https://api.push.apple.com", options.ProductionUrl);
        Assert.Equal("https://api.sandbox.push.apple.com", options.SandboxUrl);
        Assert.Equal(10, options.RequestTimeoutSeconds);
        Assert.Equal(50, options.TokenRefreshMinutes);
        Assert.Equal("Nudge:Providers:Apns", ApnsOptions.Section);
    }

    [Fact]
    public void Validate_accepts_complete_settings()
    {
        Assert.Empty(Valid().Validate());
    }

    [Fact]
    public void Validate_on_empty_settings_names_every_required_setting()
    {
        var problems = new ApnsOptions().Validate();

        Assert.Contains(problems, p => p.StartsWith("Nudge:Providers:Apns:KeyId must be the 10-character key id from Apple", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Providers:Apns:TeamId must be the 10-character team id", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Providers:Apns:BundleId", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Nudge:Providers:Apns:PrivateKey", StringComparison.Ordinal) && p.Contains("PrivateKeyPath", StringComparison.Ordinal));
        Assert.Equal(4, problems.Count);
    }

    [Theory]
    [InlineData("ABC123DEF")]
    [InlineData("ABC123DEFGH")]
    [InlineData("ABC-23DEFG")]
    public void Validate_rejects_a_key_id_that_is_not_10_letters_or_digits(string keyId)
    {
        var problem = Assert.Single(Valid(o => o.KeyId = keyId).Validate());

        Assert.StartsWith("Nudge:Providers:Apns:KeyId must be the 10-character key id from Apple", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_rejects_text_that_is_not_a_key_without_quoting_it()
    {
        const string Secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETbutNOTAKEY==\n-----END PRIVATE KEY-----";

        var problem = Assert.Single(Valid(o => o.PrivateKey = Secret).Validate());

        Assert.StartsWith("Nudge:Providers:Apns:PrivateKey must be the .p8 key", problem, StringComparison.Ordinal);
        Assert.DoesNotContain("TOPSECRET", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_rejects_an_rsa_key()
    {
        using var rsa = RSA.Create(2048);

        var problem = Assert.Single(Valid(o => o.PrivateKey = rsa.ExportPkcs8PrivateKeyPem()).Validate());

        Assert.StartsWith("Nudge:Providers:Apns:PrivateKey", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_rejects_an_ec_key_on_another_curve()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);

        var problem = Assert.Single(Valid(o => o.PrivateKey = p384.ExportPkcs8PrivateKeyPem()).Validate());

        Assert.Contains("P-256", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_accepts_a_key_with_escaped_line_breaks_or_without_pem_lines()
    {
        var pem = _key.ExportPkcs8PrivateKeyPem();

        Assert.Empty(Valid(o => o.PrivateKey = pem.Replace("\n", "\\n", StringComparison.Ordinal)).Validate());
        Assert.Empty(Valid(o => o.PrivateKey = Convert.ToBase64String(_key.ExportPkcs8PrivateKey())).Validate());
    }

    [Fact]
    public void Validate_reads_the_key_from_a_file()
    {
        var path = TempFile(_key.ExportPkcs8PrivateKeyPem());

        Assert.Empty(Valid(o => { o.PrivateKey = null; o.PrivateKeyPath = path; }).Validate());
    }

    [Fact]
    public void Validate_names_a_missing_key_file()
    {
        var problem = Assert.Single(Valid(o => { o.PrivateKey = null; o.PrivateKeyPath = "/nonexistent/AuthKey.p8"; }).Validate());

        Assert.StartsWith("Nudge:Providers:Apns:PrivateKeyPath: cannot read '/nonexistent/AuthKey.p8'", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_rejects_both_key_and_key_path()
    {
        var path = TempFile(_key.ExportPkcs8PrivateKeyPem());

        var problem = Assert.Single(Valid(o => o.PrivateKeyPath = path).Validate());

        Assert.Contains("not both", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_rejects_bad_environment_urls_and_limits()
    {
        var problems = Valid(o =>
        {
            o.DefaultEnvironment = "staging";
            o.ProductionUrl = "http://api.push.apple.com";
            o.SandboxUrl = "not a url";
            o.RequestTimeoutSeconds = 0;
            o.TokenRefreshMinutes = 19;
            o.MaxConnectionsPerHost = 0;
        }).Validate();

        Assert.Equal(
            [
                "Nudge:Providers:Apns:DefaultEnvironment",
                "Nudge:Providers:Apns:ProductionUrl",
                "Nudge:Providers:Apns:SandboxUrl",
                "Nudge:Providers:Apns:RequestTimeoutSeconds",
                "Nudge:Providers:Apns:TokenRefreshMinutes",
                "Nudge:Providers:Apns:MaxConnectionsPerHost",
            ],
            problems.Select(p => p.Split(' ')[0]));
    }

    [Theory]
    [InlineData(19)]
    [InlineData(56)]
    [InlineData(60)]
    public void Validate_keeps_the_refresh_age_between_20_and_55_minutes(int minutes)
    {
        var problem = Assert.Single(Valid(o => o.TokenRefreshMinutes = minutes).Validate());

        Assert.StartsWith("Nudge:Providers:Apns:TokenRefreshMinutes must be between 20 and 55", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ToString_and_constructor_errors_never_contain_the_key()
    {
        var pem = _key.ExportPkcs8PrivateKeyPem();
        var body = pem.Split('\n')[1];
        var options = Valid(o => o.TeamId = "short");

        var text = options.ToString();
        var error = Assert.Throws<ArgumentException>(() => new ApnsProvider(options, new FakeTimeProvider()));

        Assert.DoesNotContain(body, text, StringComparison.Ordinal);
        Assert.Contains("(redacted)", text, StringComparison.Ordinal);
        Assert.DoesNotContain(body, error.Message, StringComparison.Ordinal);
        Assert.Contains("Nudge:Providers:Apns:TeamId", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_with_an_unparseable_key_names_the_setting_but_not_the_text()
    {
        const string Secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
        var options = Valid(o => o.PrivateKey = Secret);

        var error = Assert.Throws<ArgumentException>(() => new ApnsTokenSigner(options, new FakeTimeProvider()));

        Assert.Contains("Nudge:Providers:Apns:PrivateKey", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, options.ToString(), StringComparison.Ordinal);
    }
}
