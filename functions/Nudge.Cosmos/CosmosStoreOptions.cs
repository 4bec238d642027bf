using System.Net;

namespace Nudge.Cosmos;

/// <summary>
/// Settings of the Cosmos DB store (configuration section <c>Nudge:Cosmos</c>). <see cref="Validate"/> lists every
/// problem by setting name; <see cref="CosmosStore.OpenAsync(CosmosStoreOptions, TimeProvider?, CancellationToken)"/>
/// refuses options that have any. <see cref="Key"/> is a secret: <see cref="ToString"/> and the store's logs never show it.
/// </summary>
public sealed class CosmosStoreOptions
{
    /// <summary>The configuration section these settings are read from.</summary>
    public const string Section = "Nudge:Cosmos";

    /// <summary>The account endpoint, e.g. <c>https://nudge.documents.azure.com:443/</c>. Required.</summary>
    public string? Endpoint { get; set; }

    /// <summary>
    /// The account key. Empty or null: authenticate with the Function App's system-assigned managed identity
    /// (Azure.Identity's ManagedIdentityCredential, which is what the Bicep deployment grants the data role to; not
    /// DefaultAzureCredential, whose chain of local fallbacks has no place in Azure). A key is for the local emulator
    /// and for tools.
    /// </summary>
    public string? Key { get; set; }

    /// <summary>The database holding Nudge's containers: "nudge" (the name infra-bicep/cosmos-containers.json declares).</summary>
    public string Database { get; set; } = "nudge";

    /// <summary>
    /// Create the database and the containers (as infra-bicep/cosmos-containers.json defines them) when they are
    /// missing: true for the emulator and local runs. In Azure the Bicep deployment declares them and this stays false;
    /// the store then only checks that they exist. Existing containers are never changed.
    /// </summary>
    public bool CreateContainers { get; set; }

    /// <summary>How long one request to Cosmos DB may take before it fails: 10 s (1 s to 5 min).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Accept whatever TLS certificate the endpoint shows. Only for the local emulator, whose certificate is
    /// self-signed; allowed only with a loopback endpoint (127.0.0.1, ::1 or localhost). Default false.
    /// </summary>
    public bool AcceptAnyServerCertificate { get; set; }

    /// <summary>
    /// How long a half-written index entry (an identifier claimed before its profile is written, a timer entry written
    /// before the journey instance or message it wakes) is given to be completed before the store treats it as left
    /// behind by a crash: 5 min (at least 30 s). A writer finishes its steps within a few request timeouts, so an entry
    /// this old that its document still does not confirm will never be confirmed: it may be taken over or removed.
    /// </summary>
    public TimeSpan HalfWriteGrace { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Every problem with these settings, each naming its setting; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Endpoint))
        {
            errors.Add($"{Section}:Endpoint is required (the account endpoint, e.g. https://<account>.documents.azure.com:443/)");
        }
        else if (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            // Not quoted: a pasted connection string would carry the account key.
            errors.Add($"{Section}:Endpoint must be an absolute https URL such as https://<account>.documents.azure.com:443/ (a connection string goes in as Endpoint and Key)");
        }
        else if (AcceptAnyServerCertificate && !IsLoopback(uri))
        {
            errors.Add($"{Section}:AcceptAnyServerCertificate is only allowed for a loopback endpoint (the local emulator), not {uri.Host}");
        }

        if (!string.IsNullOrEmpty(Key) && !IsBase64(Key))
        {
            // The value itself is a secret: say what is wrong with it, never what it is.
            errors.Add($"{Section}:Key is not a base64 account key (leave it empty to use managed identity)");
        }

        if (string.IsNullOrWhiteSpace(Database))
        {
            errors.Add($"{Section}:Database is required");
        }
        else if (Database.Length > 255 || Database.IndexOfAny(['/', '\\', '#', '?']) >= 0 || Database.EndsWith(' '))
        {
            errors.Add($"{Section}:Database '{Database}' is not a valid Cosmos DB name (at most 255 characters, none of / \\ # ?, no trailing space)");
        }

        if (RequestTimeout < TimeSpan.FromSeconds(1) || RequestTimeout > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{Section}:RequestTimeout must be between 00:00:01 and 00:05:00, not {RequestTimeout}");
        }

        if (HalfWriteGrace < TimeSpan.FromSeconds(30))
        {
            errors.Add($"{Section}:HalfWriteGrace must be at least 00:00:30, not {HalfWriteGrace}");
        }

        return errors;
    }

    /// <summary>The settings for logs and errors, with the key shown only as present or absent.</summary>
    public override string ToString() =>
        $"Endpoint={Endpoint}, Database={Database}, Auth={(string.IsNullOrEmpty(Key) ? "managed identity" : "key (hidden)")}, " +
        $"CreateContainers={CreateContainers}, RequestTimeout={RequestTimeout}, AcceptAnyServerCertificate={AcceptAnyServerCertificate}";

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    private static bool IsBase64(string value)
    {
        var buffer = new byte[value.Length];
        return Convert.TryFromBase64String(value, buffer, out var written) && written > 0;
    }
}
