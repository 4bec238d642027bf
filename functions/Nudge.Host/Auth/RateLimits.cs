using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Nudge.Host.CustomHandler;

namespace Nudge.Host.Auth;

/// <summary>Settings under "Nudge:RateLimits": a token bucket per credential, and one per client address for failed authentication.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Turns every limit off (a host behind a gateway that already limits). Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Track API, per API key: 3,000 requests/s with bursts of 6,000. Customer.io allows about 100/s; this is set so a
    /// backend's batch import and the repository's own load tests never meet it, while a runaway client still does.
    /// </summary>
    public RateLimit Track { get; set; } = new() { PerSecond = 3000, Burst = 6000 };

    /// <summary>Segment API, per write key: 3,000 requests/s with bursts of 6,000 (a batch call carries many events).</summary>
    public RateLimit Segment { get; set; } = new() { PerSecond = 3000, Burst = 6000 };

    /// <summary>Admin API, per admin key: 200 requests/s with bursts of 400 (the dashboard, scripts and test harnesses polling).</summary>
    public RateLimit Admin { get; set; } = new() { PerSecond = 200, Burst = 400 };

    /// <summary>
    /// Failed authentication (wrong or missing key, webhook signature that does not verify), per client address (IPv4, or
    /// IPv6 /64): 10/s with bursts of 100. Once spent, every authenticated call from that address answers 429 without its
    /// key being checked, so a key cannot be guessed faster than this.
    /// </summary>
    public RateLimit AuthFailures { get; set; } = new() { PerSecond = 10, Burst = 100 };

    /// <summary>Every problem with the settings, named (empty when valid).</summary>
    public IReadOnlyList<string> Validate() =>
    [
        .. Track.Validate("Track"), .. Segment.Validate("Segment"), .. Admin.Validate("Admin"), .. AuthFailures.Validate("AuthFailures"),
    ];
}

/// <summary>A token bucket: <see cref="Burst"/> tokens, refilled continuously at <see cref="PerSecond"/> (in steps of 100 ms); a request takes one.</summary>
public sealed class RateLimit
{
    /// <summary>Requests per second sustained (tokens added each second), 1 to 1,000,000.</summary>
    public int PerSecond { get; set; }

    /// <summary>Bucket size: requests allowed at once after a quiet period, at least <see cref="PerSecond"/>, at most 10,000,000.</summary>
    public int Burst { get; set; }

    internal IEnumerable<string> Validate(string name)
    {
        if (PerSecond is < 1 or > 1_000_000)
        {
            yield return $"Nudge:RateLimits:{name}:PerSecond: {PerSecond} is not between 1 and 1000000";
        }

        if (Burst < PerSecond || Burst > 10_000_000)
        {
            yield return $"Nudge:RateLimits:{name}:Burst: {Burst} is not between PerSecond ({PerSecond}) and 10000000";
        }
    }
}

/// <summary>The API families with a credential, each with its own bucket.</summary>
public enum ApiFamily
{
    Track,
    Segment,
    Admin,
}

/// <summary>
/// Rate limits for the credentialed APIs, enforced where each API checks its credential (endpoint filters and handlers),
/// so Functions mode, which runs dispatched requests through the same endpoints, enforces them too. Order per request:
/// (1) a client address that spent its failed-authentication budget gets 429 before its credential is looked at; (2) a
/// wrong or missing credential gets 401 (or the webhook's 403) and spends one token of that budget; (3) a right one
/// spends one token of its credential's bucket, else 429. A 429 changes nothing: the call is neither queued nor stored.
/// Limits are per process (per instance in Functions mode).
/// </summary>
public sealed class RateLimits : IDisposable
{
    private readonly RateLimitOptions _options;
    private readonly PartitionedRateLimiter<ApiFamily> _keys;
    private readonly PartitionedRateLimiter<string> _failures;

    public RateLimits(RateLimitOptions options)
    {
        _options = options;

        // Each family has one credential, so a bucket per family is a bucket per key.
        _keys = PartitionedRateLimiter.Create<ApiFamily, ApiFamily>(f => RateLimitPartition.GetTokenBucketLimiter(f, f => Bucket(Limit(f))));
        _failures = PartitionedRateLimiter.Create<string, string>(a => RateLimitPartition.GetTokenBucketLimiter(a, _ => Bucket(options.AuthFailures)));
    }

    /// <summary>The 429 for a client address whose failed-authentication budget is spent, else null (go on and check the credential).</summary>
    public IResult? Blocked(HttpContext c)
    {
        if (!_options.Enabled)
        {
            return null;
        }

        // Looks without taking: the bucket refills continuously, so a whole token must be there, not a fraction of one
        // (which is all a zero-permit acquire would ask for). One token takes at most a second to come back.
        return _failures.GetStatistics(ClientAddress(c)) is { CurrentAvailablePermits: < 1 }
            ? TooMany(c, TimeSpan.FromSeconds(1), "AuthFailures", "too many failed authentication attempts from this address")
            : null;
    }

    /// <summary>Records a failed authentication; answers <paramref name="rejection"/>, or 429 once this address is over its budget.</summary>
    public IResult Failed(HttpContext c, IResult rejection)
    {
        if (!_options.Enabled)
        {
            return rejection;
        }

        using var lease = _failures.AttemptAcquire(ClientAddress(c));
        return lease.IsAcquired ? rejection : TooMany(c, RetryAfter(lease), "AuthFailures", "too many failed authentication attempts from this address");
    }

    /// <summary>Spends one token of an authenticated credential's bucket: null to go on, else the 429 to answer.</summary>
    public IResult? Admit(HttpContext c, ApiFamily family)
    {
        if (!_options.Enabled)
        {
            return null;
        }

        using var lease = _keys.AttemptAcquire(family);
        return lease.IsAcquired ? null : TooMany(c, RetryAfter(lease), family.ToString(), $"too many requests for this {family} credential");
    }

    public void Dispose()
    {
        _keys.Dispose();
        _failures.Dispose();
    }

    /// <summary>
    /// The address failed authentications are counted against: the TCP peer (IPv6 by /64, the block one host usually
    /// holds). In Functions mode the handler's peer is the local Functions host, so the client is the last
    /// X-Forwarded-For entry, the one Azure's front end appends (earlier entries come from the client and prove nothing).
    /// </summary>
    public static string ClientAddress(HttpContext c)
    {
        IPAddress? ip;
        if (c.Items.ContainsKey(HttpDispatch.InnerRequestItem))
        {
            var last = c.Request.Headers["X-Forwarded-For"].ToString().Split(',').Select(s => s.Trim()).LastOrDefault(s => s.Length > 0);
            ip = last is null ? null
                : IPEndPoint.TryParse(last, out var ep) ? ep.Address
                : IPAddress.TryParse(last.Trim('[', ']'), out var a) ? a : null;
        }
        else
        {
            ip = c.Connection.RemoteIpAddress;
        }

        if (ip is null)
        {
            return "unknown";
        }

        if (ip.IsIPv4MappedToIPv6)
        {
            ip = ip.MapToIPv4();
        }

        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var bytes = ip.GetAddressBytes();
            Array.Clear(bytes, 8, 8);
            return new IPAddress(bytes) + "/64";
        }

        return ip.ToString();
    }

    private RateLimit Limit(ApiFamily f) => f switch
    {
        ApiFamily.Track => _options.Track,
        ApiFamily.Segment => _options.Segment,
        _ => _options.Admin,
    };

    private static TokenBucketRateLimiterOptions Bucket(RateLimit l) => new()
    {
        TokenLimit = l.Burst,
        TokensPerPeriod = l.PerSecond,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        AutoReplenishment = true,

        // The partitioned limiter refills every bucket from one 100 ms timer, in proportion to the time elapsed.
        // Never queued: a call over the limit is answered at once and not kept.
        QueueLimit = 0,
    };

    private static TimeSpan RetryAfter(RateLimitLease lease) => lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);

    private static IResult TooMany(HttpContext c, TimeSpan wait, string limit, string message)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
        c.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return Results.Json(new { error = $"rate limited: {message}; retry after {seconds} s", limit = "Nudge:RateLimits:" + limit, retry_after = seconds },
            statusCode: StatusCodes.Status429TooManyRequests);
    }
}

/// <summary>The credential check every endpoint of a route group passes through, with its rate limits.</summary>
public static class CredentialFilter
{
    /// <summary>
    /// Every endpoint of <paramref name="group"/> needs the credential <paramref name="authorized"/> accepts: an address
    /// out of failed-authentication budget gets 429 first, a refused credential gets <paramref name="unauthorized"/> (and
    /// spends that budget), and an accepted one takes a token from <paramref name="family"/>'s bucket (429 when it is empty).
    /// </summary>
    public static RouteGroupBuilder RequireCredential(this RouteGroupBuilder group, ApiFamily family,
        Func<HttpRequest, Credentials, bool> authorized, Func<HttpContext, IResult> unauthorized) =>
        group.AddEndpointFilter(async (ctx, next) =>
        {
            var c = ctx.HttpContext;
            var limits = c.RequestServices.GetRequiredService<RateLimits>();
            if (limits.Blocked(c) is { } blocked)
            {
                return blocked;
            }

            if (!authorized(c.Request, c.RequestServices.GetRequiredService<Credentials>()))
            {
                return limits.Failed(c, unauthorized(c));
            }

            return limits.Admit(c, family) ?? await next(ctx);
        });
}
