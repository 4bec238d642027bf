using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Nudge.Cosmos;

/// <summary>Document ids and partition key values built from Nudge's own ids.</summary>
internal static class CosmosIds
{
    /// <summary>Partition of events that belong to nobody. Profile keys are hex, so no person's partition has this name.</summary>
    public const string Unattached = "~unattached";

    /// <summary>Id of the profile document in its person's partition (one per partition).</summary>
    public const string Profile = "profile";

    /// <summary>Longest id kept readable: Cosmos DB allows 1,023 bytes; longer values are hashed.</summary>
    private const int MaxReadable = 1000;

    /// <summary>
    /// A valid Cosmos DB id for any string, injective: ids may not contain / \ ? #, travel in URL paths, and a trailing
    /// dot does not survive every URL parser, so only letters, digits and - _ . : @ are kept as they are; every other
    /// UTF-8 byte (and a final '.') is written as ~XX. Values whose escaped form would be too long become ~h + SHA-256.
    /// </summary>
    public static string Escape(string value)
    {
        var sb = new StringBuilder(value.Length + 8);
        var bytes = Encoding.UTF8.GetBytes(value);
        for (var i = 0; i < bytes.Length; i++)
        {
            var b = bytes[i];
            var keep = b is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= (byte)'0' and <= (byte)'9'
                or (byte)'-' or (byte)'_' or (byte)':' or (byte)'@' || (b == (byte)'.' && i < bytes.Length - 1);
            if (keep)
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append('~').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return sb.Length <= MaxReadable ? sb.ToString() : "~h" + Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    public static string Device(string token) => "device:" + Escape(token);

    public static string Event(string eventId) => "event:" + Escape(eventId);

    public static string Instance(string id) => "instance:" + Escape(id);

    public static string Message(string id) => "message:" + Escape(id);

    public static string Outbox(string messageId) => "outbox:" + Escape(messageId);

    /// <summary>Identifier document id (and partition): kind and value, as the SQLite store keys them.</summary>
    public static string Identifier(string kind, string value) => Escape(kind + ":" + value);

    /// <summary>Timer bucket: the UTC hour of the due time, so a sweep's entries sit in few partitions.</summary>
    public static string Bucket(long dueMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(dueMs, -62_135_596_800_000L, 253_402_300_799_999L))
            .UtcDateTime.ToString("yyyy-MM-dd'T'HH", CultureInfo.InvariantCulture);
}
