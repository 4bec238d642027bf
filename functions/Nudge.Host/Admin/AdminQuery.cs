using System.Globalization;

namespace Nudge.Host.Admin;

/// <summary>
/// Query-string parsing shared by the admin list endpoints (reports, message log): time ranges, keyset cursors and the
/// 400 answer that names the parameter and why.
/// </summary>
public static class AdminQuery
{
    /// <summary>Range used when ?from= is not given: the 7 days before ?to= (default now).</summary>
    public static readonly TimeSpan DefaultRange = TimeSpan.FromDays(7);

    /// <summary>Longest range one request covers: 400 days.</summary>
    public static readonly TimeSpan MaxRange = TimeSpan.FromDays(400);

    /// <summary>[from, to) from ISO-8601 times or Unix seconds; to defaults to now, from to 7 days before to. Error names the parameter.</summary>
    public static (DateTimeOffset? From, DateTimeOffset? To, string? Error) Range(TimeProvider time, string? from, string? to)
    {
        var t = to is null ? time.GetUtcNow() : Parse(to);
        var f = from is null ? t - DefaultRange : Parse(from);
        return (f, t) switch
        {
            (_, null) => (null, null, "to: not a time (ISO-8601 or Unix seconds)"),
            (null, _) => (null, null, "from: not a time (ISO-8601 or Unix seconds)"),
            ({ } a, { } b) when a >= b => (null, null, "from: must be before to"),
            ({ } a, { } b) when b - a > MaxRange => (null, null, "to: at most 400 days after from"),
            _ => (f, t, null),
        };
    }

    /// <summary>An opaque keyset cursor for ?after=: a time (to the tick) and an id.</summary>
    public static string Cursor(DateTimeOffset time, string id) =>
        Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(time.UtcTicks.ToString(CultureInfo.InvariantCulture) + "|" + id))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The time and id of a cursor made by <see cref="Cursor(DateTimeOffset, string)"/>, or null when it is not one.</summary>
    public static (DateTimeOffset Time, string Id)? Cursor(string s)
    {
        try
        {
            var b64 = s.Replace('-', '+').Replace('_', '/');
            var text = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(b64.PadRight(b64.Length + ((4 - (b64.Length % 4)) % 4), '=')));
            var bar = text.IndexOf('|', StringComparison.Ordinal);
            return bar > 0 && long.TryParse(text[..bar], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) && ticks <= DateTimeOffset.MaxValue.UtcTicks && bar < text.Length - 1
                ? (new DateTimeOffset(ticks, TimeSpan.Zero), text[(bar + 1)..])
                : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>A 400 with <c>{"error": "name: why"}</c>.</summary>
    public static IResult Bad(string error) => Results.Json(new { error }, statusCode: 400);

    private static DateTimeOffset? Parse(string s) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var secs) && secs < 100_000_000_000
            ? DateTimeOffset.FromUnixTimeSeconds(secs)
            : DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var v) ? v : null;
}
