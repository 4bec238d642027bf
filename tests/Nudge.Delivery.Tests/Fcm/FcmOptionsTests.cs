using System.Text.Json.Nodes;
using Nudge.Delivery.Fcm;

namespace Nudge.Delivery.Tests.Fcm;

public sealed class FcmOptionsTests(ServiceAccountKey key) : IClassFixture<ServiceAccountKey>
{
    private static readonly Uri TokenUri = new("http://127.0.0.1:9/token");

    [Fact]
    public void Validate_GoodJson_HasNoProblems()
    {
        var options = new FcmOptions { ServiceAccountJson = key.Json(TokenUri) };

        Assert.Empty(options.Validate());
        Assert.Equal("https://fcm.googleapis.com", options.BaseUrl);
        Assert.Equal(10, options.RequestTimeoutSeconds);
    }

    [Fact]
    public void Validate_GoodFile_HasNoProblemsAndTheProviderUsesIt()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fcm-sa-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, key.Json(TokenUri));
        try
        {
            var options = new FcmOptions { ServiceAccountPath = path };

            Assert.Empty(options.Validate());
            using var provider = new FcmProvider(options, TimeProvider.System);
            Assert.Equal(ServiceAccountKey.ProjectId, provider.ProjectId);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Validate_NothingSet_NamesBothSettings()
    {
        var problem = Assert.Single(new FcmOptions().Validate());

        Assert.Contains("Nudge:Providers:Fcm:ServiceAccountJson", problem, StringComparison.Ordinal);
        Assert.Contains("Nudge:Providers:Fcm:ServiceAccountPath", problem, StringComparison.Ordinal);
        Assert.Contains("required", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_BothSet_AsksForOne()
    {
        var problem = Assert.Single(new FcmOptions { ServiceAccountJson = key.Json(TokenUri), ServiceAccountPath = "/x.json" }.Validate());

        Assert.Contains("set only one", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_MissingFile_NamesThePathSetting()
    {
        var problem = Assert.Single(new FcmOptions { ServiceAccountPath = "/nonexistent/sa.json" }.Validate());

        Assert.Contains("Nudge:Providers:Fcm:ServiceAccountPath", problem, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/sa.json", problem, StringComparison.Ordinal);
        Assert.Contains("cannot be read", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_NotJson_SaysSoWithoutQuotingIt()
    {
        var secretish = key.PrivateKeyPem;

        var problem = Assert.Single(new FcmOptions { ServiceAccountJson = secretish }.Validate());

        Assert.Contains("Nudge:Providers:Fcm:ServiceAccountJson is not valid JSON", problem, StringComparison.Ordinal);
        AssertNoKeyText(problem);
    }

    [Fact]
    public void Validate_JsonArray_IsNotAServiceAccount()
    {
        var problem = Assert.Single(new FcmOptions { ServiceAccountJson = "[1,2]" }.Validate());

        Assert.Contains("must be a JSON object", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_WrongType_NamesTypeAndServiceAccount()
    {
        var doc = key.Document(TokenUri);
        doc["type"] = "authorized_user";

        var problem = Assert.Single(new FcmOptions { ServiceAccountJson = doc.ToJsonString() }.Validate());

        Assert.Contains("\"type\" is \"authorized_user\"; it must be \"service_account\"", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("type")]
    [InlineData("project_id")]
    [InlineData("client_email")]
    [InlineData("private_key")]
    [InlineData("token_uri")]
    public void Validate_MissingField_NamesIt(string field)
    {
        var doc = key.Document(TokenUri);
        doc.Remove(field);

        var problem = Assert.Single(new FcmOptions { ServiceAccountJson = doc.ToJsonString() }.Validate());

        Assert.Contains($"\"{field}\" is missing", problem, StringComparison.Ordinal);
        Assert.StartsWith("Nudge:Providers:Fcm:ServiceAccountJson", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_MissingProjectIdWithOverride_IsFineAndTheOverrideWins()
    {
        var doc = key.Document(TokenUri);
        doc.Remove("project_id");
        var options = new FcmOptions { ServiceAccountJson = doc.ToJsonString(), ProjectId = "override" };

        Assert.Empty(options.Validate());
        using var provider = new FcmProvider(options, TimeProvider.System);
        Assert.Equal("override", provider.ProjectId);
    }

    [Fact]
    public void Validate_SeveralProblems_ReportsEach()
    {
        var doc = new JsonObject { ["type"] = "service_account" };

        var problems = new FcmOptions { ServiceAccountJson = doc.ToJsonString(), RequestTimeoutSeconds = 0, BaseUrl = "fcm" }.Validate();

        Assert.Equal(6, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("Nudge:Providers:Fcm:RequestTimeoutSeconds", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Nudge:Providers:Fcm:BaseUrl", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n")]
    [InlineData("-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n")]
    [InlineData("just some text")]
    public void Validate_UnparseablePrivateKey_SaysSoWithoutQuotingIt(string pem)
    {
        var doc = key.Document(TokenUri, pem);

        var problem = Assert.Single(new FcmOptions { ServiceAccountJson = doc.ToJsonString() }.Validate());

        Assert.Contains("\"private_key\" is not a parseable PEM (PKCS#8) RSA private key", problem, StringComparison.Ordinal);
        Assert.DoesNotContain("MIIBVQ", problem, StringComparison.Ordinal);
        Assert.DoesNotContain("not base64", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TruncatedRealKey_IsUnparseableAndNotQuoted()
    {
        var truncated = key.PrivateKeyPem[..(key.PrivateKeyPem.Length / 2)] + "\n-----END PRIVATE KEY-----\n";

        var problem = Assert.Single(new FcmOptions { ServiceAccountJson = key.Document(TokenUri, truncated).ToJsonString() }.Validate());

        Assert.Contains("private_key", problem, StringComparison.Ordinal);
        AssertNoKeyText(problem);
    }

    [Fact]
    public void Constructor_InvalidOptions_ThrowsListingProblemsWithoutKeyText()
    {
        var doc = key.Document(TokenUri);
        doc["type"] = "user";
        doc.Remove("client_email");

        var ex = Assert.Throws<ArgumentException>(() => new FcmProvider(new FcmOptions { ServiceAccountJson = doc.ToJsonString() }, TimeProvider.System));

        Assert.Contains("\"type\"", ex.Message, StringComparison.Ordinal);
        Assert.Contains("\"client_email\" is missing", ex.Message, StringComparison.Ordinal);
        AssertNoKeyText(ex.ToString());
    }

    [Fact]
    public void ToString_RedactsTheJson()
    {
        var options = new FcmOptions { ServiceAccountJson = key.Json(TokenUri), ProjectId = "p" };

        var text = options.ToString();

        Assert.Contains("(set, redacted)", text, StringComparison.Ordinal);
        Assert.Contains("ProjectId = p", text, StringComparison.Ordinal);
        AssertNoKeyText(text);
    }

    private void AssertNoKeyText(string text)
    {
        Assert.DoesNotContain("PRIVATE KEY", text, StringComparison.Ordinal);
        var b64 = key.PrivateKeyBase64;
        for (var i = 0; i + 16 <= b64.Length; i += 16)
        {
            Assert.DoesNotContain(b64.Substring(i, 16), text, StringComparison.Ordinal);
        }
    }
}
