using System.ComponentModel.DataAnnotations;
using Nudge.Cosmos;
using Nudge.Host.Auth;

namespace Nudge.Host.Hosting;

/// <summary>Settings under the "Nudge" configuration section (appsettings, environment Nudge__*, or --Nudge:*).</summary>
public sealed class NudgeOptions
{
    public const string Section = "Nudge";

    /// <summary>Folder for the SQLite files and generated credentials. Default: ./nudge-data (relative to the working directory).</summary>
    [Required]
    public string DataDir { get; set; } = "nudge-data";

    /// <summary>Region used to read phone numbers written without a country code (ISO 3166 alpha-2). Default: US.</summary>
    [Required]
    [RegularExpression("^[A-Z]{2}$")]
    public string DefaultPhoneRegion { get; set; } = "US";

    /// <summary>
    /// Nudge's public address as providers and recipients reach it (Twilio status callbacks, email unsubscribe links),
    /// e.g. https://nudge.example.com. Default: none (no status callbacks; unsubscribe links use the listening address).
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    public AuthOptions Auth { get; set; } = new();

    /// <summary>Request limits per credential and for failed authentication (Nudge:RateLimits).</summary>
    public RateLimitOptions RateLimits { get; set; } = new();

    public WorkerOptions Workers { get; set; } = new();

    public JourneyOptions Journeys { get; set; } = new();

    public StoreOptions Store { get; set; } = new();

    /// <summary>The Cosmos DB store's settings (Nudge:Cosmos), read when <see cref="StoreOptions.Kind"/> is "cosmos".</summary>
    public CosmosStoreOptions Cosmos { get; set; } = new();

    public FunctionsOptions Functions { get; set; } = new();

    public ReportsOptions Reports { get; set; } = new();

    public AlertOptions Alerts { get; set; } = new();

    public ReportingWebhookOptions ReportingWebhooks { get; set; } = new();

    public SmsOptions Sms { get; set; } = new();

    public TelemetryOptions Telemetry { get; set; } = new();

    /// <summary>How long events and messages are kept (Nudge:Retention).</summary>
    public RetentionOptions Retention { get; set; } = new();
}

/// <summary>Settings under "Nudge:Telemetry": OpenTelemetry export (see the README's Observability section).</summary>
public sealed class TelemetryOptions
{
    /// <summary>
    /// Export traces and metrics by OTLP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4317, gRPC; set
    /// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf for port 4318). Default: false (nothing is exported).
    /// </summary>
    public bool Otlp { get; set; }
}

/// <summary>Settings under "Nudge:Sms": how Nudge answers people's SMS replies.</summary>
public sealed class SmsOptions
{
    /// <summary>Default <see cref="HelpReply"/>.</summary>
    public const string DefaultHelpReply = "Reply STOP to unsubscribe or START to subscribe again. Msg & data rates may apply.";

    /// <summary>The answer to an inbound HELP or INFO (TwiML &lt;Message&gt;); at most 1,600 characters (Twilio's body limit).</summary>
    [Required]
    [StringLength(1600, MinimumLength = 1)]
    public string HelpReply { get; set; } = DefaultHelpReply;
}

/// <summary>Settings under "Nudge:Store": which profile store Nudge uses.</summary>
public sealed class StoreOptions
{
    /// <summary>"sqlite" (default: a file in <see cref="NudgeOptions.DataDir"/>) or "cosmos" (Azure Cosmos DB, NoSQL API).</summary>
    [Required]
    public string Kind { get; set; } = "sqlite";
}

/// <summary>Settings under "Nudge:Functions", read when the Azure Functions host runs Nudge as its custom handler.</summary>
public sealed class FunctionsOptions
{
    /// <summary>
    /// The Service Bus queues' MaxDeliveryCount (Service Bus default: 10; keep both equal). On the last delivery a failing
    /// send or run-step invocation records its message or journey instance as failed before Service Bus dead-letters it.
    /// </summary>
    [Range(1, 2000)]
    public int MaxDeliveryCount { get; set; } = 10;

    /// <summary>
    /// Most due journey instances, and most ready messages, one journey-timers run emits: 1000. At one run per 10 s this
    /// caps timer-driven steps at 100/s; a larger backlog fires late rather than flooding the queues.
    /// </summary>
    [Range(1, 50_000)]
    public int SweepLimit { get; set; } = 1000;
}

/// <summary>
/// API credentials. Embedded: any left empty is generated on first run and kept in {DataDir}/credentials.json.
/// Functions mode: every one is required (Key Vault references in Azure); nothing is generated or written.
/// </summary>
public sealed class AuthOptions
{
    /// <summary>Track API user name (Customer.io site id).</summary>
    public string? SiteId { get; set; }

    /// <summary>Track API password (Customer.io tracking API key).</summary>
    public string? ApiKey { get; set; }

    /// <summary>Segment write key (Basic user name, or "writeKey" in the body).</summary>
    public string? SegmentWriteKey { get; set; }

    /// <summary>Bearer token for the admin API.</summary>
    public string? AdminKey { get; set; }

    /// <summary>Key that signs the links Nudge puts in messages (one-click unsubscribe); at least 32 characters.</summary>
    public string? LinkKey { get; set; }
}

/// <summary>Embedded pipeline workers.</summary>
public sealed class WorkerOptions
{
    /// <summary>Run the queue workers in this process. Default: true (false leaves accepted work queued).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Most queue messages processed in one store transaction: 1,024. Each transaction costs an fsync, so under load larger
    /// batches process more events per second (the ingest benchmark: about 13,800/s at 256, 17,500/s at 1,024); when the
    /// queue is short a batch is whatever is there.
    /// </summary>
    [Range(1, 4096)]
    public int BatchSize { get; set; } = 1024;

    /// <summary>How long a received message stays hidden before another worker may take it: 300 s.</summary>
    [Range(5, 3600)]
    public int LeaseSeconds { get; set; } = 300;

    /// <summary>
    /// How long a message the send stage took for a provider call stays away from other send stages: 300 s. If the
    /// process dies during the call, the message is sent again once this has passed (a provider call in flight at a
    /// crash may reach the recipient twice); it must stay well above the slowest provider call, or a slow call is
    /// repeated while the first is still out. Used by the embedded send worker and the Functions send trigger alike.
    /// </summary>
    [Range(5, 3600)]
    public int SendClaimSeconds { get; set; } = 300;
}
