using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Nudge.Delivery.Tests.Fcm;

/// <summary>A fresh RSA 2048 service-account key per test class, and the key file JSON built around it.</summary>
public sealed class ServiceAccountKey : IDisposable
{
    public const string ClientEmail = "nudge-push@nudge-test.iam.gserviceaccount.com";
    public const string ProjectId = "nudge-test";

    public ServiceAccountKey()
    {
        Key = RSA.Create(2048);
        PrivateKeyPem = Key.ExportPkcs8PrivateKeyPem();
        PrivateKeyId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
    }

    public RSA Key { get; }

    public string PrivateKeyPem { get; }

    public string PrivateKeyId { get; }

    /// <summary>The base64 body of the PEM (no armour): any slice of it showing up in text is a leak.</summary>
    public string PrivateKeyBase64 => string.Concat(PrivateKeyPem.Split('\n').Where(l => !l.StartsWith("-----", StringComparison.Ordinal)));

    /// <summary>The public half, for the peer that verifies assertion signatures.</summary>
    public RSA PublicKey()
    {
        var rsa = RSA.Create();
        rsa.ImportSubjectPublicKeyInfo(Key.ExportSubjectPublicKeyInfo(), out _);
        return rsa;
    }

    /// <summary>The key file as the Firebase console writes it, with token_uri pointing wherever the test wants.</summary>
    public JsonObject Document(Uri tokenUri, string? privateKeyPem = null) => new()
    {
        ["type"] = "service_account",
        ["project_id"] = ProjectId,
        ["private_key_id"] = PrivateKeyId,
        ["private_key"] = privateKeyPem ?? PrivateKeyPem,
        ["client_email"] = ClientEmail,
        ["client_id"] = "100000000000000000001",
        ["auth_uri"] = "https://accounts.google.com/o/oauth2/auth",
        ["token_uri"] = tokenUri.AbsoluteUri,
        ["auth_provider_x509_cert_url"] = "https://www.googleapis.com/oauth2/v1/certs",
        ["client_x509_cert_url"] = "https://www.googleapis.com/robot/v1/metadata/x509/nudge-push%40nudge-test.iam.gserviceaccount.com",
        ["universe_domain"] = "googleapis.com",
    };

    public string Json(Uri tokenUri) => Document(tokenUri).ToJsonString();

    public void Dispose() => Key.Dispose();
}
