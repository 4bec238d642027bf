using System.Globalization;
using System.Net.Http.Headers;

namespace Nudge.Delivery;

/// <summary>Reads an HTTP Retry-After header (seconds or an HTTP date) as a delay from now.</summary>
public static class RetryAfter
{
    public static TimeSpan? Read(HttpResponseHeaders headers, DateTimeOffset now)
    {
        if (headers.RetryAfter is { } r)
        {
            if (r.Delta is { } d)
            {
                return d < TimeSpan.Zero ? TimeSpan.Zero : d;
            }

            if (r.Date is { } at)
            {
                var wait = at - now;
                return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
            }
        }

        return headers.TryGetValues("Retry-After", out var values)
            && int.TryParse(values.FirstOrDefault(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var secs) && secs >= 0
            ? TimeSpan.FromSeconds(secs)
            : null;
    }
}
