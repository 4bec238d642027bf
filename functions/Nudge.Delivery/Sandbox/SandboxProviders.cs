namespace Nudge.Delivery.Sandbox;

/// <summary>
/// The channel used when a provider has no credentials: nothing leaves the machine. The send stage records each
/// sandbox send, rendered, in the outbox, so people can see exactly what would have gone out. Every message it accepts
/// is reported delivered with its answer (<see cref="SendOutcome.Delivered"/>), so a sandbox's reports, message log and
/// statuses read as a working provider's would; push only when no app reports push delivery itself.
/// </summary>
/// <param name="reportPushDelivered">
/// Report push delivered at once (default). False when the apps report push delivery through their SDK
/// (Nudge:Reports:PushSentCountsAsDelivered false): a sandbox push then waits for the app's report, as a real one does.
/// </param>
public sealed class SandboxProvider(bool reportPushDelivered = true) : IPushProvider, ISmsProvider, IEmailProvider
{
    public const string ProviderName = "sandbox";

    public string Name => ProviderName;

    /// <summary>True: the sandbox reports delivered with each message it accepts (push: or the app does).</summary>
    public bool ReportsDelivery => true;

    public Task<SendOutcome> SendAsync(PushRequest request, CancellationToken ct) => Accepted(request.MessageId, reportPushDelivered);

    public Task<SendOutcome> SendAsync(SmsRequest request, CancellationToken ct) => Accepted(request.MessageId, delivered: true);

    public Task<SendOutcome> SendAsync(EmailRequest request, CancellationToken ct) => Accepted(request.MessageId, delivered: true);

    private static Task<SendOutcome> Accepted(string messageId, bool delivered) =>
        Task.FromResult(SendOutcome.Sent($"sandbox-{messageId}") with { Delivered = delivered });
}
