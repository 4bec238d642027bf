using System.Text.Json.Nodes;
using Nudge.Core.Journeys;
using Nudge.Core.Messages;
using Nudge.Core.Profiles;
using Nudge.Core.Storage;

namespace Nudge.Delivery.Tests.Support;

/// <summary>A person with one push device and one push drafted and ready for it: what the send stage's harnesses and benchmark start from.</summary>
public static class ReadyPush
{
    /// <summary>
    /// Stores person <paramref name="key"/> (customer-<paramref name="n"/>, c<paramref name="n"/>@example.com), the device
    /// <paramref name="token"/> on <paramref name="platform"/>, and message <paramref name="messageId"/> of
    /// <paramref name="journeyId"/> (instance {journey}:{key}, step push) with <paramref name="content"/>, drafted at <paramref name="now"/>.
    /// </summary>
    public static async Task SeedAsync(IStoreSession s, string key, int n, string token, string platform, string messageId, string journeyId,
        JsonObject content, DateTimeOffset now)
    {
        await s.PutProfileAsync(new Profile { Key = key, Id = "customer-" + n, Email = $"c{n}@example.com", CreatedAt = now, UpdatedAt = now });
        await s.PutDeviceAsync(new Device { Token = token, ProfileKey = key, Platform = platform, LastUsed = now, CreatedAt = now, UpdatedAt = now });
        await s.TryAddMessageAsync(new Message
        {
            Id = messageId,
            ProfileKey = key,
            InstanceId = $"{journeyId}:{key}",
            JourneyId = journeyId,
            StepId = "push",
            Channel = Channel.Push,
            Status = MessageStatus.Drafted,
            Ready = true,
            CreatedAt = now,
            Content = content,
            Recipients = [token],
            Platforms = [platform],
            History = [new StatusChange(MessageStatus.Drafted, now, null)],
        });
    }
}
