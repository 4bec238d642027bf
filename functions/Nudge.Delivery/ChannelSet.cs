using Nudge.Delivery.Resilience;
using Nudge.Delivery.Sandbox;

namespace Nudge.Delivery;

/// <summary>
/// The providers each channel sends through (the sandbox for any channel without credentials), with one circuit
/// breaker per provider.
/// </summary>
public sealed class ChannelSet
{
    private readonly Dictionary<string, CircuitBreaker> _breakers = new(StringComparer.Ordinal);

    public ChannelSet(IPushProvider ios, IPushProvider android, ISmsProvider sms, IEmailProvider email, TimeProvider time)
    {
        (Ios, Android, Sms, Email, Time) = (ios, android, sms, email, time);
        foreach (var name in new[] { ios.Name, android.Name, sms.Name, email.Name }.Distinct())
        {
            _breakers[name] = new CircuitBreaker(name, time);
        }
    }

    /// <summary>Every channel in the sandbox.</summary>
    public static ChannelSet Sandbox(TimeProvider time)
    {
        var s = new SandboxProvider();
        return new ChannelSet(s, s, s, s, time);
    }

    /// <summary>The clock of the circuit breakers, also the send stage's for when a provider answered.</summary>
    public TimeProvider Time { get; }

    public IPushProvider Ios { get; }

    public IPushProvider Android { get; }

    public ISmsProvider Sms { get; }

    public IEmailProvider Email { get; }

    public IReadOnlyDictionary<string, CircuitBreaker> Breakers => _breakers;

    public IPushProvider Push(string platform) => platform == Core.Profiles.Platforms.Ios ? Ios : Android;

    public CircuitBreaker Breaker(string provider) => _breakers[provider];
}
