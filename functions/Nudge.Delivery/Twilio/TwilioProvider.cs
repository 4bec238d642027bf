using System.Globalization;
using System.Net;
using Twilio.Clients;
using Twilio.Exceptions;
using Twilio.Rest.Api.V2010.Account;
using Twilio.Types;

namespace Nudge.Delivery.Twilio;

/// <summary>
/// Sends SMS through Twilio's Messages API with Twilio's own REST client (twilio-csharp <c>MessageResource</c>): it
/// builds and signs the call (POST {BaseUrl}/2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded, Basic auth)
/// and reads the answer, over <see cref="TwilioTransport"/>, which carries it on our HttpClient with our per-call
/// timeout, <see cref="TwilioOptions.BaseUrl"/> and Retry-After. Every failure comes back as a <see cref="SendOutcome"/>; the
/// only exception <see cref="SendAsync"/> throws is <see cref="OperationCanceledException"/> when the caller's token is
/// cancelled. Thread-safe; keep one instance per configuration and dispose it with the host.
/// </summary>
/// <remarks>
/// Twilio's Messages API has no idempotency key: a call that timed out may still have sent the SMS, so a retry after
/// <see cref="DeliveryReason.Timeout"/> can deliver twice.
/// </remarks>
public sealed class TwilioProvider : ISmsProvider, IDisposable
{
    private readonly TwilioTransport transport;
    private readonly TwilioRestClient client;
    private readonly TimeProvider time;
    private readonly PhoneNumber? from;
    private readonly string? messagingServiceSid;
    private readonly decimal pricePerSegment;
    private readonly TimeSpan requestTimeout;

    /// <summary>Creates the provider from a snapshot of <paramref name="options"/>; later changes to the options are not seen.</summary>
    /// <param name="options">Settings; must pass <see cref="TwilioOptions.Validate"/>.</param>
    /// <param name="time">Clock for the per-request timeout and Retry-After dates.</param>
    /// <param name="handler">HTTP handler to use (not disposed by the provider); null creates a pooled one the provider owns.</param>
    /// <exception cref="ArgumentException">The options are not valid; the message lists the problems (never the auth token).</exception>
    public TwilioProvider(TwilioOptions options, TimeProvider time, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Twilio options are not valid: " + string.Join("; ", problems), nameof(options));
        }

        this.time = time;
        transport = new TwilioTransport(new Uri(options.BaseUrl), handler);
        client = new TwilioRestClient(options.AccountSid, options.AuthToken, options.AccountSid, null, transport, null);
        (from, messagingServiceSid) = string.IsNullOrWhiteSpace(options.MessagingServiceSid)
            ? (new PhoneNumber(options.From), (string?)null)
            : ((PhoneNumber?)null, options.MessagingServiceSid);
        pricePerSegment = options.PricePerSegmentUsd;
        requestTimeout = TimeSpan.FromSeconds(options.RequestTimeoutSeconds);
    }

    /// <inheritdoc/>
    public string Name => "twilio";

    /// <summary>
    /// True when each SMS carries a status callback (<see cref="SmsRequest.StatusCallback"/>, set by the sender when Nudge
    /// has a public address): Twilio then posts delivered and undelivered to it. Default false.
    /// </summary>
    public bool ReportsDelivery { get; init; }

    /// <summary>
    /// Sends one SMS. <see cref="OutcomeKind.Sent"/> carries the message SID, the segment count and the estimated cost
    /// (segments x <see cref="TwilioOptions.PricePerSegmentUsd"/>) from <see cref="SmsSegments"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
    public async Task<SendOutcome> SendAsync(SmsRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var count = SmsSegments.Count(request.Body);
        var create = new CreateMessageOptions(new PhoneNumber(request.To))
        {
            From = from,
            MessagingServiceSid = messagingServiceSid,
            Body = request.Body,
            StatusCallback = request.StatusCallback,
        };

        using var timeout = new CancellationTokenSource(requestTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        var call = new TwilioTransport.Call(linked.Token);
        try
        {
            using (TwilioTransport.Begin(call))
            {
                var message = await MessageResource.CreateAsync(create, client);
                return SendOutcome.Sent(message.Sid) with { Segments = count.Segments, EstimatedCost = count.Segments * pricePerSegment };
            }
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            throw new OperationCanceledException(ct);
        }
        catch (Exception) when (call.Response is { IsSuccess: true } accepted)
        {
            // Twilio took the message but its answer could not be read: it was accepted all the same, and a retry would send it twice.
            return SendOutcome.Sent(TwilioTransport.SidOf(accepted.Body)) with { Segments = count.Segments, EstimatedCost = count.Segments * pricePerSegment };
        }
        catch (ApiException e) when (call.Response is { } answered)
        {
            return Map(answered, e.Code == 0 ? null : e.Code);
        }
        catch (Exception) when (call.Response is { } answered)
        {
            // An error answer the library could not read as Twilio's error JSON: judged by its status alone.
            return Map(answered, null);
        }
        catch (Exception) when (call.Failure is { } failure)
        {
            return failure switch
            {
                OperationCanceledException => SendOutcome.Transient(DeliveryReason.Timeout, $"no answer in {requestTimeout.TotalSeconds:0}s"),
                HttpRequestException h => SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "http_" + h.HttpRequestError.ToString().ToLowerInvariant()),
                _ => SendOutcome.Transient(DeliveryReason.ProviderUnavailable, "io_error"),
            };
        }
    }

    /// <inheritdoc/>
    public void Dispose() => transport.Dispose();

    private SendOutcome Map(TwilioTransport.Answer response, int? code)
    {
        var status = (int)response.Status;
        var detail = code?.ToString(CultureInfo.InvariantCulture) ?? $"http_{status}";
        if (response.Status == HttpStatusCode.TooManyRequests || code == TwilioErrors.TooManyRequests)
        {
            return SendOutcome.RateLimited(RetryAfter.Read(response.Headers, time.GetUtcNow()), detail);
        }

        if (status >= 500)
        {
            return SendOutcome.Transient(DeliveryReason.ProviderUnavailable, detail, RetryAfter.Read(response.Headers, time.GetUtcNow()));
        }

        if (code is { } c)
        {
            return SendOutcome.Permanent(TwilioErrors.Reason(c), detail);
        }

        return response.Status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
            ? SendOutcome.Permanent(DeliveryReason.ProviderAuth, detail)
            : SendOutcome.Permanent(DeliveryReason.ProviderRejected, detail);
    }
}
