using System.Text.Json.Nodes;

namespace Nudge.Core.Profiles;

/// <summary>Push platforms a device token can belong to.</summary>
public static class Platforms
{
    public const string Ios = "ios";
    public const string Android = "android";

    /// <summary>Returns the canonical platform name, or null when the value is not a known platform.</summary>
    public static string? Normalize(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "ios" or "ipados" or "apns" => Ios,
        "android" or "fcm" => Android,
        _ => null,
    };
}

/// <summary>
/// A push device. A token belongs to exactly one person at a time (<see cref="ProfileKey"/>); registering it for
/// another person moves it. <see cref="DeviceId"/> is the physical device id when the client sends one.
/// </summary>
public sealed class Device
{
    public required string Token { get; init; }

    public required string ProfileKey { get; set; }

    public required string Platform { get; set; }

    public string? DeviceId { get; set; }

    public DateTimeOffset LastUsed { get; set; }

    public JsonObject Attributes { get; set; } = [];

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>False when the app reported push_enabled "false" (permission revoked).</summary>
    public bool PushEnabled =>
        Attributes["push_enabled"] is not JsonValue v
        || !(v.TryGetValue<string>(out var s) ? string.Equals(s, "false", StringComparison.OrdinalIgnoreCase)
            : v.TryGetValue<bool>(out var b) && !b);

    /// <summary>The last characters of the token, safe to show and log.</summary>
    public string TokenTail => TokenTailOf(Token);

    public static string TokenTailOf(string token) => token.Length <= 8 ? token : "…" + token[^8..];
}
