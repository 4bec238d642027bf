using System.Security.Cryptography;

namespace Nudge.Delivery.Apns;

/// <summary>
/// Settings under <c>Nudge:Providers:Apns</c> for token-based (.p8 key) APNs authentication. Call <see cref="Validate"/>
/// at start-up: it names every bad setting. The key's text never appears in a message, an exception or
/// <see cref="ToString"/>.
/// </summary>
public sealed class ApnsOptions : IProviderOptions
{
    public const string Section = "Nudge:Providers:Apns";

    /// <summary>The "production" environment name.</summary>
    public const string Production = "production";

    /// <summary>The "sandbox" (development) environment name.</summary>
    public const string Sandbox = "sandbox";

    /// <summary>APNs refuses payloads over 4096 bytes (5120 for VoIP, which Nudge does not send).</summary>
    public const int MaxPayloadBytes = 4096;

    /// <summary>APNs refuses an apns-collapse-id over 64 bytes.</summary>
    public const int MaxCollapseIdBytes = 64;

    /// <summary>The 10-character key id Apple shows next to the .p8 key (the JWT "kid"). Required.</summary>
    public string? KeyId { get; set; }

    /// <summary>The 10-character Apple developer team id (the JWT "iss"). Required.</summary>
    public string? TeamId { get; set; }

    /// <summary>The app's bundle id, sent as apns-topic. Required.</summary>
    public string? BundleId { get; set; }

    /// <summary>The .p8 key as PEM text (PKCS#8 "BEGIN PRIVATE KEY"); literal "\n" sequences are read as line breaks. Set this or <see cref="PrivateKeyPath"/>.</summary>
    public string? PrivateKey { get; set; }

    /// <summary>Path of the .p8 key file. Set this or <see cref="PrivateKey"/>.</summary>
    public string? PrivateKeyPath { get; set; }

    /// <summary>Environment for devices whose registration does not say: "production" or "sandbox". Default: production.</summary>
    public string DefaultEnvironment { get; set; } = Production;

    /// <summary>Production host. Default: https://api.push.apple.com.</summary>
    public string ProductionUrl { get; set; } = "https://api.push.apple.com";

    /// <summary>Sandbox (development) host. Default: https://api.sandbox.push.apple.com.</summary>
    public string SandboxUrl { get; set; } = "https://api.sandbox.push.apple.com";

    /// <summary>Most time one request to APNs may take, in seconds (1-300). Default: 10 s.</summary>
    public int RequestTimeoutSeconds { get; set; } = 10;

    /// <summary>
    /// Age at which the provider token (JWT) is re-signed, in minutes (20-55). Default: 50 min. APNs rejects a token
    /// older than 60 min (ExpiredProviderToken) and one refreshed more often than every 20 min (TooManyProviderTokenUpdates).
    /// </summary>
    public int TokenRefreshMinutes { get; set; } = 50;

    /// <summary>Most HTTP/2 connections per APNs host with the default handler (1-32). Default: 4.</summary>
    public int MaxConnectionsPerHost { get; set; } = 4;

    /// <summary>Returns every problem with these settings, each naming the setting; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!IsAppleId(KeyId))
        {
            problems.Add($"{Section}:KeyId must be the 10-character key id from Apple (letters and digits), shown next to the .p8 key.");
        }

        if (!IsAppleId(TeamId))
        {
            problems.Add($"{Section}:TeamId must be the 10-character team id from Apple (letters and digits).");
        }

        if (string.IsNullOrWhiteSpace(BundleId) || BundleId.Any(char.IsWhiteSpace))
        {
            problems.Add($"{Section}:BundleId must be the app's bundle id (sent as apns-topic), e.g. com.example.app.");
        }

        var hasText = !string.IsNullOrWhiteSpace(PrivateKey);
        var hasPath = !string.IsNullOrWhiteSpace(PrivateKeyPath);
        if (hasText && hasPath)
        {
            problems.Add($"{Section}: set PrivateKey or PrivateKeyPath, not both.");
        }
        else if (!hasText && !hasPath)
        {
            problems.Add($"{Section}:PrivateKey (the .p8 PEM text) or {Section}:PrivateKeyPath (the .p8 file) is required.");
        }
        else if (TryLoadKey(out var problem) is { } key)
        {
            key.Dispose();
        }
        else
        {
            problems.Add(problem!);
        }

        if (NormalizeEnvironment(DefaultEnvironment, allowDevelopment: false) is null)
        {
            problems.Add($"{Section}:DefaultEnvironment must be \"production\" or \"sandbox\".");
        }

        CheckUrl(ProductionUrl, nameof(ProductionUrl), problems);
        CheckUrl(SandboxUrl, nameof(SandboxUrl), problems);

        if (RequestTimeoutSeconds is < 1 or > 300)
        {
            problems.Add($"{Section}:RequestTimeoutSeconds must be between 1 and 300 seconds.");
        }

        if (TokenRefreshMinutes is < 20 or > 55)
        {
            problems.Add($"{Section}:TokenRefreshMinutes must be between 20 and 55 minutes (APNs rejects tokens older than 60 minutes and refreshes more often than every 20).");
        }

        if (MaxConnectionsPerHost is < 1 or > 32)
        {
            problems.Add($"{Section}:MaxConnectionsPerHost must be between 1 and 32.");
        }

        return problems;
    }

    /// <summary>Lists the settings with the key redacted.</summary>
    public override string ToString() =>
        $"ApnsOptions {{ KeyId = {KeyId}, TeamId = {TeamId}, BundleId = {BundleId}, PrivateKey = {(string.IsNullOrEmpty(PrivateKey) ? "(not set)" : "(redacted)")}, " +
        $"PrivateKeyPath = {PrivateKeyPath}, DefaultEnvironment = {DefaultEnvironment}, ProductionUrl = {ProductionUrl}, SandboxUrl = {SandboxUrl}, " +
        $"RequestTimeoutSeconds = {RequestTimeoutSeconds}, TokenRefreshMinutes = {TokenRefreshMinutes}, MaxConnectionsPerHost = {MaxConnectionsPerHost} }}";

    /// <summary>
    /// "production" or "sandbox" for an environment name (case-insensitive); "development" (the iOS aps-environment
    /// entitlement value) means sandbox when <paramref name="allowDevelopment"/>. Null for anything else.
    /// </summary>
    internal static string? NormalizeEnvironment(string? name, bool allowDevelopment) => name?.Trim().ToLowerInvariant() switch
    {
        Production => Production,
        Sandbox => Sandbox,
        "development" when allowDevelopment => Sandbox,
        _ => null,
    };

    /// <summary>Loads the configured key as a P-256 ECDsa, or returns null and a problem that never quotes the key.</summary>
    internal ECDsa? TryLoadKey(out string? problem)
    {
        string pem;
        string setting;
        if (!string.IsNullOrWhiteSpace(PrivateKeyPath))
        {
            setting = $"{Section}:PrivateKeyPath";
            try
            {
                pem = File.ReadAllText(PrivateKeyPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
            {
                problem = $"{setting}: cannot read '{PrivateKeyPath}' ({e.GetType().Name}).";
                return null;
            }
        }
        else
        {
            setting = $"{Section}:PrivateKey";
            pem = PrivateKey ?? "";
        }

        // Keys pasted into environment variables often arrive with escaped line breaks.
        pem = pem.Replace("\\n", "\n", StringComparison.Ordinal).Trim();
        var key = ECDsa.Create();
        try
        {
            if (pem.StartsWith("-----BEGIN", StringComparison.Ordinal))
            {
                key.ImportFromPem(pem);
            }
            else
            {
                // The base64 body of the .p8 without its BEGIN/END lines.
                key.ImportPkcs8PrivateKey(Convert.FromBase64String(pem), out _);
            }

            var parameters = key.ExportParameters(includePrivateParameters: false);
            if (parameters.Curve.Oid?.Value != "1.2.840.10045.3.1.7" || key.KeySize != 256)
            {
                key.Dispose();
                problem = $"{setting} must be a P-256 (ES256) EC private key; this key uses another curve.";
                return null;
            }

            problem = null;
            return key;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or FormatException)
        {
            // The exception text is not used: parsers may echo input.
            key.Dispose();
            problem = $"{setting} must be the .p8 key from Apple: a PEM-encoded P-256 EC private key (-----BEGIN PRIVATE KEY-----).";
            return null;
        }
    }

    private static bool IsAppleId(string? value) => value is { Length: 10 } && value.All(char.IsAsciiLetterOrDigit);

    private static void CheckUrl(string? value, string name, List<string> problems)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.Query.Length > 0)
        {
            problems.Add($"{Section}:{name} must be an absolute https URL such as https://api.push.apple.com.");
        }
    }
}
