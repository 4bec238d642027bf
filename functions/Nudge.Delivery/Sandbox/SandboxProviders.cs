namespace Nudge.Delivery.Sandbox;

/// <summary>
/// The channel used when a provider has no credentials: nothing leaves the machine. The send stage records each
/// sandbox send, rendered, in the outbox, so people can see exactly what would have gone out.
/// </summary>
public sealed class SandboxProvider : IPushProvider, ISmsProvider, IEmailProvider
{
    public const string ProviderName = "sandbox";

    public string Name => ProviderName;

    public Task<SendOutcome> SendAsync(PushRequest request, CancellationToken ct) => Task.FromResult(SendOutcome.Sent($"sandbox-{request.MessageId}"));

    public Task<SendOutcome> SendAsync(SmsRequest request, CancellationToken ct) => Task.FromResult(SendOutcome.Sent($"sandbox-{request.MessageId}"));

    public Task<SendOutcome> SendAsync(EmailRequest request, CancellationToken ct) => Task.FromResult(SendOutcome.Sent($"sandbox-{request.MessageId}"));
}
