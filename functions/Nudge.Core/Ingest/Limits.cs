namespace Nudge.Core.Ingest;

/// <summary>
/// Ingest limits. Defaults are Customer.io's Track API and Segment's HTTP API documented limits; every size is in
/// UTF-8 bytes of the value as sent.
/// </summary>
public sealed record IngestLimits
{
    /// <summary>Longest customer id, anonymous id or device token: 150 bytes.</summary>
    public int MaxIdentifierBytes { get; init; } = 150;

    /// <summary>Longest attribute name: 150 bytes.</summary>
    public int MaxAttributeNameBytes { get; init; } = 150;

    /// <summary>Largest attribute value (JSON text for objects and arrays): 1,000 bytes.</summary>
    public int MaxAttributeValueBytes { get; init; } = 1000;

    /// <summary>Most attributes in one call and on one person: 300.</summary>
    public int MaxAttributes { get; init; } = 300;

    /// <summary>Longest event name: 100 bytes.</summary>
    public int MaxEventNameBytes { get; init; } = 100;

    /// <summary>Largest event data object (JSON text): 100,000 bytes.</summary>
    public int MaxEventDataBytes { get; init; } = 100_000;

    /// <summary>Largest Track API request body: 1 MiB (no single documented field can exceed it).</summary>
    public int MaxTrackBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Largest Segment call, and largest single call inside a batch: 32 KB.</summary>
    public int MaxSegmentCallBytes { get; init; } = 32 * 1024;

    /// <summary>Largest Segment batch request: 500 KB.</summary>
    public int MaxSegmentBatchBytes { get; init; } = 500 * 1024;

    /// <summary>Most devices kept per person; registering one more evicts the least recently used: 20.</summary>
    public int MaxDevicesPerPerson { get; init; } = 20;

    /// <summary>Longest email address (RFC 5321 path limit): 254 bytes.</summary>
    public int MaxEmailBytes { get; init; } = 254;
}
