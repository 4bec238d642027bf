using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Nudge.Delivery.Email;

/// <summary>
/// The signed tokens of Nudge's email links (one-click unsubscribe, open pixel, click redirect): base64url without
/// padding of (version byte, 2-byte length of the first part, the first part, the second part, HMAC-SHA256 under the
/// link key of a purpose string followed by everything before the MAC). The purpose binds a token to its use, so one
/// key signs every kind without a token of one kind reading as another. Reading checks the MAC in constant time before
/// trusting anything, accepts only the canonical base64 spelling (one link, one token), and never throws.
/// </summary>
internal sealed class SignedPairToken(byte[] key)
{
    private const byte Version = 1;
    private const int MacSize = 32;

    private readonly byte[] _key = (byte[])key.Clone();

    /// <summary>The longest token for parts of at most these many UTF-8 bytes: anything longer was not made here.</summary>
    public static int MaxChars(int maxFirstBytes, int maxSecondBytes) => ((1 + 2 + maxFirstBytes + maxSecondBytes + MacSize + 2) * 4 / 3) + 4;

    /// <summary>A token for the two parts (the first non-empty and under 64 KiB; the caller checks its own limits).</summary>
    public string Create(ReadOnlySpan<byte> purpose, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        var token = new byte[1 + 2 + first.Length + second.Length + MacSize];
        token[0] = Version;
        BinaryPrimitives.WriteUInt16BigEndian(token.AsSpan(1), (ushort)first.Length);
        first.CopyTo(token.AsSpan(3));
        second.CopyTo(token.AsSpan(3 + first.Length));
        var payloadLength = token.Length - MacSize;
        Mac(purpose, token.AsSpan(0, payloadLength), token.AsSpan(payloadLength));
        return Base64Url.EncodeToString(token);
    }

    /// <summary>Reads a token made by <see cref="Create"/> for <paramref name="purpose"/> with the same key; false for anything else.</summary>
    public bool TryRead(ReadOnlySpan<byte> purpose, string? token, int maxChars, out string first, out string second)
    {
        first = "";
        second = "";
        if (string.IsNullOrEmpty(token) || token.Length > maxChars)
        {
            return false;
        }

        var bytes = new byte[Base64Url.GetMaxDecodedLength(token.Length)];
        if (Base64Url.DecodeFromChars(token, bytes, out _, out var length) != OperationStatus.Done || length < 1 + 2 + 1 + MacSize)
        {
            return false;
        }

        // Base64 has several spellings of the same bytes (unused low bits of the last character): only ours is valid.
        var data = bytes.AsSpan(0, length);
        if (!string.Equals(Base64Url.EncodeToString(data), token, StringComparison.Ordinal))
        {
            return false;
        }

        var payload = data[..^MacSize];
        Span<byte> expected = stackalloc byte[MacSize];
        Mac(purpose, payload, expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, data[^MacSize..]) || payload[0] != Version)
        {
            return false;
        }

        var firstLength = BinaryPrimitives.ReadUInt16BigEndian(payload[1..]);
        if (firstLength == 0 || 3 + firstLength > payload.Length)
        {
            return false;
        }

        first = Encoding.UTF8.GetString(payload.Slice(3, firstLength));
        second = Encoding.UTF8.GetString(payload[(3 + firstLength)..]);
        return true;
    }

    private void Mac(ReadOnlySpan<byte> purpose, ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        hmac.AppendData(purpose);
        hmac.AppendData(payload);
        hmac.GetHashAndReset(destination);
    }
}
