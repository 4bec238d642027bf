using System.Net.Http.Headers;

namespace Nudge.Delivery.Tests;

public class RetryAfterTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Reads_seconds()
    {
        using var r = new HttpResponseMessage();
        r.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(30));
        Assert.Equal(TimeSpan.FromSeconds(30), RetryAfter.Read(r.Headers, Now));
    }

    [Fact]
    public void Reads_an_http_date_relative_to_now()
    {
        using var r = new HttpResponseMessage();
        r.Headers.RetryAfter = new RetryConditionHeaderValue(Now.AddMinutes(2));
        Assert.Equal(TimeSpan.FromMinutes(2), RetryAfter.Read(r.Headers, Now));
    }

    [Fact]
    public void A_date_in_the_past_means_now_and_no_header_means_null()
    {
        using var r = new HttpResponseMessage();
        Assert.Null(RetryAfter.Read(r.Headers, Now));
        r.Headers.RetryAfter = new RetryConditionHeaderValue(Now.AddMinutes(-2));
        Assert.Equal(TimeSpan.Zero, RetryAfter.Read(r.Headers, Now));
    }
}
