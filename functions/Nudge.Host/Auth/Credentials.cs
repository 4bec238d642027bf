using System.Security.Cryptography;
using System.Text.Json;
using Nudge.Host.Hosting;

namespace Nudge.Host.Auth;

/// <summary>The API credentials in force. Secrets are never logged; generated ones are printed once, when made.</summary>
/// <param name="SiteId">Track API user name.</param>
/// <param name="ApiKey">Track API password.</param>
/// <param name="SegmentWriteKey">Segment write key.</param>
/// <param name="AdminKey">Admin API bearer token.</param>
/// <param name="LinkKey">Signs the links Nudge puts in messages (one-click unsubscribe): 32 random bytes as hex.</param>
public sealed record Credentials(string SiteId, string ApiKey, string SegmentWriteKey, string AdminKey, string LinkKey = "")
{
    public const string FileName = "credentials.json";

    private static readonly JsonSerializerOptions FileJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>
    /// Takes configured values, fills the rest from {dataDir}/credentials.json, and generates any still missing
    /// (saving them with owner-only permissions). <paramref name="generated"/> is true when something new was made.
    /// </summary>
    /// <exception cref="NudgeConfigurationException">Nudge:Auth:LinkKey is set but shorter than 32 characters.</exception>
    /// <exception cref="NudgeSetupException">The credentials file is empty or is not JSON.</exception>
    public static Credentials LoadOrCreate(AuthOptions configured, string dataDir, out bool generated)
    {
        var path = Path.Combine(dataDir, FileName);
        Credentials? stored = null;
        if (File.Exists(path))
        {
            try
            {
                stored = JsonSerializer.Deserialize<Credentials>(File.ReadAllText(path), FileJson);
            }
            catch (JsonException e)
            {
                // The parser's message may quote the file's content, which holds secrets: the position is enough.
                throw new NudgeSetupException($"{path} is not a credentials file (invalid JSON at line {(e.LineNumber ?? 0) + 1}); fix it, or move it away to have new credentials generated", e);
            }

            if (stored is null)
            {
                throw new NudgeSetupException($"{path} is empty; fix it, or move it away to have new credentials generated");
            }
        }

        var made = false;
        string Pick(string? fromConfig, string? fromFile, int bytes)
        {
            if (!string.IsNullOrEmpty(fromConfig))
            {
                return fromConfig;
            }

            if (!string.IsNullOrEmpty(fromFile))
            {
                return fromFile;
            }

            made = true;
            return Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(bytes));
        }

        if (configured.LinkKey is { Length: > 0 and < 32 })
        {
            throw new NudgeConfigurationException("Nudge:Auth:LinkKey must be at least 32 characters (it signs unsubscribe links)");
        }

        var result = new Credentials(
            Pick(configured.SiteId, stored?.SiteId, 10),
            Pick(configured.ApiKey, stored?.ApiKey, 20),
            Pick(configured.SegmentWriteKey, stored?.SegmentWriteKey, 20),
            Pick(configured.AdminKey, stored?.AdminKey, 24),
            "");
        generated = made;

        // The link key is never shown; one made for an older credentials file is saved without re-announcing the others.
        result = result with { LinkKey = Pick(configured.LinkKey, stored?.LinkKey, 32) };
        if (made)
        {
            // Only what Nudge made (or found) goes to the file; configured secrets stay where they were configured.
            static string Keep(string? configured, string value) => string.IsNullOrEmpty(configured) ? value : "";
            var file = new Credentials(Keep(configured.SiteId, result.SiteId), Keep(configured.ApiKey, result.ApiKey),
                Keep(configured.SegmentWriteKey, result.SegmentWriteKey), Keep(configured.AdminKey, result.AdminKey),
                Keep(configured.LinkKey, result.LinkKey));
            // Created owner-only (0600) rather than chmod-ed after writing: the secrets are never readable by others, even briefly.
            using (var f = new FileStream(path, Sqlite.SqliteDb.OwnerOnlyFile(FileMode.Create, FileAccess.Write)))
            {
                JsonSerializer.Serialize(f, file, FileJson);
            }

            if (!OperatingSystem.IsWindows())
            {
                // An existing file keeps its mode on truncation: tightened too.
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        return result;
    }

    /// <summary>
    /// The credentials of Functions mode: every one comes from settings (Key Vault references in Azure), because a
    /// scaled-out app has no place to keep generated ones and every instance must agree.
    /// </summary>
    /// <exception cref="NudgeConfigurationException">Settings are missing or too short; each problem names one (never a value).</exception>
    public static Credentials FromSettings(AuthOptions configured)
    {
        var problems = new List<string>();
        string Require(string? value, string name, int minLength = 1)
        {
            if (string.IsNullOrEmpty(value))
            {
                problems.Add($"Nudge:{name} is required in Functions mode, where nothing is generated (app setting Nudge__{name.Replace(":", "__", StringComparison.Ordinal)})");
            }
            else if (value.Length < minLength)
            {
                problems.Add($"Nudge:{name} must be at least {minLength} characters (it signs unsubscribe links)");
            }

            return value ?? "";
        }

        var result = new Credentials(
            Require(configured.SiteId, "Auth:SiteId"),
            Require(configured.ApiKey, "Auth:ApiKey"),
            Require(configured.SegmentWriteKey, "Auth:SegmentWriteKey"),
            Require(configured.AdminKey, "Auth:AdminKey"),
            Require(configured.LinkKey, "Auth:LinkKey", 32));
        NudgeConfigurationException.ThrowIfAny(problems);
        return result;
    }

    public override string ToString() => $"Credentials(site {SiteId}, secrets hidden)";
}
