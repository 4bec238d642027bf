using Nudge.Delivery.Twilio;

namespace Nudge.Delivery.Tests.Twilio;

public class TwilioErrorsTests
{
    [Theory]
    [InlineData(21610, DeliveryReason.RecipientUnsubscribed)]
    [InlineData(21211, DeliveryReason.InvalidRecipient)]
    [InlineData(21604, DeliveryReason.InvalidRecipient)]
    [InlineData(21614, DeliveryReason.InvalidRecipient)]
    [InlineData(30003, DeliveryReason.InvalidRecipient)]
    [InlineData(30006, DeliveryReason.InvalidRecipient)]
    [InlineData(30004, DeliveryReason.ProviderRejected)]
    [InlineData(30005, DeliveryReason.ProviderRejected)]
    [InlineData(30007, DeliveryReason.ProviderRejected)]
    [InlineData(30008, DeliveryReason.ProviderRejected)]
    [InlineData(30034, DeliveryReason.ProviderRejected)]
    [InlineData(21602, DeliveryReason.ProviderRejected)]
    [InlineData(20003, DeliveryReason.ProviderAuth)]
    [InlineData(20404, DeliveryReason.ProviderAuth)]
    [InlineData(21212, DeliveryReason.ProviderAuth)]
    [InlineData(21603, DeliveryReason.ProviderAuth)]
    [InlineData(21606, DeliveryReason.ProviderAuth)]
    [InlineData(30002, DeliveryReason.ProviderAuth)]
    [InlineData(20429, DeliveryReason.RateLimited)]
    [InlineData(21617, DeliveryReason.PayloadTooLarge)]
    [InlineData(12345, DeliveryReason.ProviderRejected)]
    [InlineData(0, DeliveryReason.ProviderRejected)]
    public void Reason_Code_MapsToDeliveryReason(int code, string reason)
    {
        Assert.Equal(reason, TwilioErrors.Reason(code));
    }
}
