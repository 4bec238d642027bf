using System.Security;
using System.Text.Json;
using Google.Apis.Auth.OAuth2;

namespace Nudge.Delivery.Fcm;

/// <summary>
/// Settings for <see cref="FcmProvider"/>, bound from <see cref="SectionName"/>. Exactly one of
/// <see cref="ServiceAccountJson"/> or <see cref="ServiceAccountPath"/> must be set. The key text never appears in
/// <see cref="ToString"/>, in <see cref="Validate"/> messages or in exceptions.
/// </summary>
public sealed class FcmOptions : IProviderOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Nudge:Providers:Fcm";

    /// <summary>The service-account key file's JSON text (as downloaded from the Firebase console). Secret.</summary>
    public string? ServiceAccountJson { get; set; }

    /// <summary>Path of the service-account key JSON file; used when <see cref="ServiceAccountJson"/> is empty.</summary>
    public string? ServiceAccountPath { get; set; }

    /// <summary>Firebase project id; default: the key's <c>project_id</c>.</summary>
    public string? ProjectId { get; set; }

    /// <summary>FCM API root. Default https://fcm.googleapis.com; tests point it at a loopback peer.</summary>
    public string BaseUrl { get; set; } = "https://fcm.googleapis.com";

    /// <summary>Per attempt limit covering the access-token fetch and the send, in seconds. Default 10, range 1..300.</summary>
    public int RequestTimeoutSeconds { get; set; } = 10;

    /// <summary>Returns every problem with these settings, each naming the setting; empty when the options are usable.</summary>
    /// <remarks>Reads <see cref="ServiceAccountPath"/> from disk when it is the key source.</remarks>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        Resolve(problems);
        return problems;
    }

    /// <summary>Names the key source and the other settings; never prints key text.</summary>
    public override string ToString() =>
        $"FcmOptions {{ ServiceAccountJson = {(string.IsNullOrWhiteSpace(ServiceAccountJson) ? "(not set)" : "(set, redacted)")}, "
        + $"ServiceAccountPath = {ServiceAccountPath ?? "(not set)"}, ProjectId = {ProjectId ?? "(from key)"}, BaseUrl = {BaseUrl}, "
        + $"RequestTimeoutSeconds = {RequestTimeoutSeconds} }}";

    /// <summary>Checks every setting and reads the service account; null when <paramref name="problems"/> got any.</summary>
    internal FcmServiceAccount? Resolve(List<string> problems)
    {
        if (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var baseUri) || (baseUri.Scheme != Uri.UriSchemeHttps && baseUri.Scheme != Uri.UriSchemeHttp))
        {
            problems.Add($"{SectionName}:BaseUrl must be an absolute http(s) URL (got '{BaseUrl}').");
        }

        if (RequestTimeoutSeconds is < 1 or > 300)
        {
            problems.Add($"{SectionName}:RequestTimeoutSeconds must be between 1 and 300 (got {RequestTimeoutSeconds}).");
        }

        if (ProjectId is not null && string.IsNullOrWhiteSpace(ProjectId))
        {
            problems.Add($"{SectionName}:ProjectId is blank: remove it to use the key's project_id, or set the project id.");
        }

        var account = ReadServiceAccount(problems);
        return problems.Count == 0 ? account : null;
    }

    private FcmServiceAccount? ReadServiceAccount(List<string> problems)
    {
        var hasJson = !string.IsNullOrWhiteSpace(ServiceAccountJson);
        var hasPath = !string.IsNullOrWhiteSpace(ServiceAccountPath);
        if (!hasJson && !hasPath)
        {
            problems.Add($"{SectionName}:ServiceAccountJson or {SectionName}:ServiceAccountPath is required (the service-account key JSON from the Firebase console).");
            return null;
        }

        if (hasJson && hasPath)
        {
            problems.Add($"{SectionName}:ServiceAccountJson and {SectionName}:ServiceAccountPath are both set: set only one.");
            return null;
        }

        string json;
        string source;
        if (hasJson)
        {
            json = ServiceAccountJson!;
            source = $"{SectionName}:ServiceAccountJson";
        }
        else
        {
            source = $"{SectionName}:ServiceAccountPath ('{ServiceAccountPath}')";
            try
            {
                json = File.ReadAllText(ServiceAccountPath!);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException or SecurityException)
            {
                problems.Add($"{source}: the file cannot be read ({ex.GetType().Name}).");
                return null;
            }
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            // The parser's own message can quote the offending character; the position is enough.
            problems.Add($"{source} is not valid JSON (line {ex.LineNumber}, byte {ex.BytePositionInLine}).");
            return null;
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{source} must be a JSON object (a service-account key file).");
                return null;
            }

            var type = Text(root, "type");
            if (type != "service_account")
            {
                problems.Add(type is null
                    ? $"{source}: \"type\" is missing; it must be \"service_account\"."
                    : $"{source}: \"type\" is \"{Shorten(type)}\"; it must be \"service_account\".");
            }

            var projectId = Text(root, "project_id");
            if (projectId is null && string.IsNullOrWhiteSpace(ProjectId))
            {
                problems.Add($"{source}: \"project_id\" is missing (or set {SectionName}:ProjectId).");
            }

            var clientEmail = Text(root, "client_email");
            if (clientEmail is null)
            {
                problems.Add($"{source}: \"client_email\" is missing.");
            }

            var tokenUri = Text(root, "token_uri");
            if (tokenUri is null)
            {
                problems.Add($"{source}: \"token_uri\" is missing.");
            }
            else if (!Uri.TryCreate(tokenUri, UriKind.Absolute, out var t) || (t.Scheme != Uri.UriSchemeHttps && t.Scheme != Uri.UriSchemeHttp))
            {
                problems.Add($"{source}: \"token_uri\" is not an absolute http(s) URL.");
            }

            var privateKey = Text(root, "private_key");
            if (privateKey is null)
            {
                problems.Add($"{source}: \"private_key\" is missing.");
            }
            else if (!IsUsablePrivateKey(privateKey))
            {
                problems.Add($"{source}: \"private_key\" is not a parseable PEM (PKCS#8) RSA private key.");
            }

            if (problems.Count > 0)
            {
                return null;
            }

            return new FcmServiceAccount(
                string.IsNullOrWhiteSpace(ProjectId) ? projectId! : ProjectId.Trim(),
                clientEmail!,
                Text(root, "private_key_id"),
                privateKey!,
                tokenUri!);
        }
    }

    /// <summary>Parses the key the way Google.Apis.Auth will, so a key that passes here also signs there.</summary>
    private static bool IsUsablePrivateKey(string pem)
    {
        try
        {
            using var key = new ServiceAccountCredential.Initializer("validation").FromPrivateKey(pem).Key;
            return key is not null;
        }
        catch (Exception)
        {
            // The parser throws several exception types whose messages may quote key material; none is surfaced.
            return false;
        }
    }

    private static string? Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(v.GetString())
            ? v.GetString()
            : null;

    /// <summary>A value quoted in an error message, cut to 40 characters.</summary>
    internal static string Shorten(string s) => s.Length <= 40 ? s : string.Concat(s.AsSpan(0, 40), "...");
}

/// <summary>The fields of a service-account key that <see cref="FcmProvider"/> uses. <see cref="ToString"/> omits the key.</summary>
internal sealed record FcmServiceAccount(string ProjectId, string ClientEmail, string? PrivateKeyId, string PrivateKeyPem, string TokenUri)
{
    public override string ToString() =>
        $"FcmServiceAccount {{ ProjectId = {ProjectId}, ClientEmail = {ClientEmail}, PrivateKeyId = {PrivateKeyId}, TokenUri = {TokenUri} }}";
}
