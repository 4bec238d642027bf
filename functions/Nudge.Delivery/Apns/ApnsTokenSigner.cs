using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Nudge.Delivery.Apns;

/// <summary>
/// Signs and caches the APNs provider token: an ES256 JWT with header {"alg":"ES256","kid":KeyId} and claims
/// {"iss":TeamId,"iat":now}. One token is shared by every request (and both environments) until it is
/// <see cref="ApnsOptions.TokenRefreshMinutes"/> old. Thread-safe.
/// </summary>
/// <remarks>
/// APNs answers 429 TooManyProviderTokenUpdates when a token is replaced more often than every 20 minutes, so no token is
/// ever replaced before it is <see cref="MinimumRefreshAge"/> old, not even by <see cref="TryRefreshAfterRejection"/>.
/// </remarks>
public sealed class ApnsTokenSigner : IDisposable
{
    /// <summary>APNs throttles token updates more frequent than this.</summary>
    public static readonly TimeSpan MinimumRefreshAge = TimeSpan.FromMinutes(20);

    private readonly ECDsa _key;
    private readonly TimeProvider _time;
    private readonly TimeSpan _refreshAge;
    private readonly byte[] _header;
    private readonly string _teamId;
    private readonly Lock _gate = new();
    private volatile Issued? _current;

    /// <summary>Loads the key named by <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">The options are not valid (the message lists the problems, never the key).</exception>
    public ApnsTokenSigner(ApnsOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid APNs settings: " + string.Join(" ", problems), nameof(options));
        }

        _key = options.TryLoadKey(out var problem) ?? throw new ArgumentException(problem, nameof(options));
        _time = time;
        _refreshAge = TimeSpan.FromMinutes(options.TokenRefreshMinutes);
        _teamId = options.TeamId!;
        _header = Encoding.UTF8.GetBytes(Base64Url.EncodeToString(
            JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["alg"] = "ES256", ["kid"] = options.KeyId! })));
    }

    /// <summary>When the current token was signed; null before the first <see cref="GetToken"/>.</summary>
    public DateTimeOffset? IssuedAt => _current?.At;

    /// <summary>The current token, signing a new one first if there is none or it is at least the refresh age old.</summary>
    public string GetToken()
    {
        var now = _time.GetUtcNow();
        var current = _current;
        if (current is not null && now - current.At < _refreshAge)
        {
            return current.Jwt;
        }

        lock (_gate)
        {
            current = _current;
            if (current is null || now - current.At >= _refreshAge)
            {
                current = Sign(now);
                _current = current;
            }

            return current.Jwt;
        }
    }

    /// <summary>
    /// Called after APNs answered ExpiredProviderToken for <paramref name="rejected"/>. Returns true when a retry should
    /// use a different token: another caller already replaced it, or it was at least <see cref="MinimumRefreshAge"/> old
    /// and has now been re-signed. Returns false when the rejected token is younger than that: re-signing would be
    /// throttled (TooManyProviderTokenUpdates), and a young token called expired points at clock skew, not at its age.
    /// </summary>
    public bool TryRefreshAfterRejection(string rejected)
    {
        lock (_gate)
        {
            var current = _current;
            if (current is null || current.Jwt != rejected)
            {
                return true;
            }

            var now = _time.GetUtcNow();
            if (now - current.At < MinimumRefreshAge)
            {
                return false;
            }

            _current = Sign(now);
            return true;
        }
    }

    public void Dispose() => _key.Dispose();

    private Issued Sign(DateTimeOffset now)
    {
        var claims = Encoding.UTF8.GetBytes(Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(
            new Dictionary<string, object> { ["iss"] = _teamId, ["iat"] = now.ToUnixTimeSeconds() })));
        var signingInput = new byte[_header.Length + 1 + claims.Length];
        _header.CopyTo(signingInput, 0);
        signingInput[_header.Length] = (byte)'.';
        claims.CopyTo(signingInput, _header.Length + 1);

        // JWS wants r||s (IEEE P1363), not the DER sequence some platforms produce by default.
        var signature = _key.SignData(signingInput, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var jwt = Encoding.ASCII.GetString(signingInput) + "." + Base64Url.EncodeToString(signature);

        // The issue time is truncated to whole seconds like iat, so ages are measured as APNs measures them.
        return new Issued(jwt, DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds()));
    }

    private sealed record Issued(string Jwt, DateTimeOffset At);
}
