namespace Nudge.Pipeline;

/// <summary>The pipeline's queues (docs/architecture.md, The pipeline): one per stage input.</summary>
public static class QueueNames
{
    public const string Events = "events";
    public const string Steps = "steps";
    public const string Sends = "sends";
}
