using System.ComponentModel.DataAnnotations;

namespace Nudge.Host.Hosting;

/// <summary>Settings under "Nudge:Journeys".</summary>
public sealed class JourneyOptions
{
    /// <summary>Folder of journey files (*.yaml). Default: ./journeys (relative to the working directory).</summary>
    [Required]
    public string Dir { get; set; } = "journeys";

    /// <summary>IANA zone for people without a "timezone" attribute. Default: UTC.</summary>
    [Required]
    public string DefaultTimeZone { get; set; } = "UTC";

    /// <summary>Local start of quiet hours (HH:mm), in each person's zone; empty disables quiet hours. Default: 21:00.</summary>
    public string QuietHoursStart { get; set; } = "21:00";

    /// <summary>Local end of quiet hours (HH:mm). Default: 08:00.</summary>
    public string QuietHoursEnd { get; set; } = "08:00";

    /// <summary>
    /// Global frequency caps as "channel:count/window" (e.g. "sms:1/24h"). Default: SMS 1 per 24 h and 4 per 30 days,
    /// push 3 per 24 h, email 3 per 24 h. Transactional journeys are exempt.
    /// </summary>
    /// <remarks>Null means the defaults: configuration binding appends to a pre-filled list, so defaults live apart.</remarks>
    public List<string>? Caps { get; set; }

    public static readonly IReadOnlyList<string> DefaultCaps = ["sms:1/24h", "sms:4/30d", "push:3/24h", "email:3/24h"];

    /// <summary>Most due timers fired in one store transaction: 256.</summary>
    [Range(1, 10_000)]
    public int TimerBatchSize { get; set; } = 256;
}
