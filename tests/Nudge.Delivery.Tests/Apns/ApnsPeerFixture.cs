using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Nudge.Delivery.Apns;
using Nudge.Delivery.Tests.Support;

namespace Nudge.Delivery.Tests.Apns;

/// <summary>
/// A production and a sandbox <see cref="ApnsPeer"/> sharing a freshly generated P-256 key, for one test class.
/// Tests in a class run one at a time, so each resets the peers first (<see cref="Fresh"/>).
/// </summary>
public sealed class ApnsPeerFixture : IAsyncLifetime
{
    public const string KeyId = "ABC123DEFG";
    public const string TeamId = "TEAM123456";
    public const string BundleId = "com.example.nudge";

    public static readonly DateTimeOffset Start = new(2026, 5, 4, 9, 0, 0, TimeSpan.Zero);

    public ECDsa Key { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The key as Apple's .p8 holds it: PKCS#8 PEM.</summary>
    public string PrivateKeyPem => Key.ExportPkcs8PrivateKeyPem();

    public ApnsPeer Production { get; private set; } = null!;

    public ApnsPeer Sandbox { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Production = await ApnsPeer.StartAsync(Key, KeyId, TeamId, BundleId);
        Sandbox = await ApnsPeer.StartAsync(Key, KeyId, TeamId, BundleId);
    }

    public async Task DisposeAsync()
    {
        await Production.DisposeAsync();
        await Sandbox.DisposeAsync();
        Key.Dispose();
    }

    /// <summary>Resets both peers and returns a fake clock both they and the provider use.</summary>
    public FakeTimeProvider Fresh()
    {
        Production.Reset();
        Sandbox.Reset();
        var time = new FakeTimeProvider(Start);
        Production.Clock = time;
        Sandbox.Clock = time;
        return time;
    }

    public ApnsOptions Options(Action<ApnsOptions>? configure = null)
    {
        var options = new ApnsOptions
        {
            KeyId = KeyId,
            TeamId = TeamId,
            BundleId = BundleId,
            PrivateKey = PrivateKeyPem,
            ProductionUrl = Production.Url,
            SandboxUrl = Sandbox.Url,
        };
        configure?.Invoke(options);
        return options;
    }

    public ApnsProvider Provider(TimeProvider time, Action<ApnsOptions>? configure = null) =>
        new(Options(configure), time, TestCertificate.TrustingHandler());

    /// <summary><see cref="ApnsProvider.CreateHandler"/> (the production connection settings) trusting the test certificate.</summary>
    public static SocketsHttpHandler DefaultHandlerTrustingTestCertificate(ApnsOptions options)
    {
        var handler = ApnsProvider.CreateHandler(options);
        using var trusting = TestCertificate.TrustingHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = trusting.SslOptions.RemoteCertificateValidationCallback;
        return handler;
    }

    /// <summary>A valid-looking 64-hex-character device token, distinct per <paramref name="n"/>.</summary>
    public static string Token(int n) => n.ToString("x8") + new string('a', 56);
}
