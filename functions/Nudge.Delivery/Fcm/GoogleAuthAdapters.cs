using Google.Apis.Http;
using Google.Apis.Util;

namespace Nudge.Delivery.Fcm;

/// <summary>Google.Apis.Auth's clock over our <see cref="TimeProvider"/>, so token expiry follows injected time.</summary>
internal sealed class TimeProviderClock(TimeProvider time) : IClock
{
    public DateTime Now => time.GetLocalNow().DateTime;

    public DateTime UtcNow => time.GetUtcNow().UtcDateTime;
}

/// <summary>
/// Makes the credential's token requests go through a given handler (tests use one that trusts the loopback peer).
/// The handler is shared with the FCM client and is never disposed by the credential (ServiceCredential is not disposable).
/// </summary>
internal sealed class FixedHandlerHttpClientFactory(HttpMessageHandler handler) : HttpClientFactory
{
    protected override HttpMessageHandler CreateHandler(CreateHttpClientArgs args) => handler;
}
