namespace Nudge.Delivery;

/// <summary>Checks rendered content before it is sent; findings are kept with the message as warnings.</summary>
public static class PushLint
{
    /// <summary>Characters of a push title an iOS lock screen shows: about 65.</summary>
    public const int VisibleTitle = 65;

    /// <summary>Characters of a push body an iOS lock screen shows: about 178.</summary>
    public const int VisibleBody = 178;

    public static List<string> Check(PushContent c)
    {
        var warnings = new List<string>();
        if (c.Title is { Length: > VisibleTitle } t)
        {
            warnings.Add($"push_title_truncated: the title has {t.Length} characters; iOS lock screens show about {VisibleTitle}");
        }

        if (c.Body is { Length: > VisibleBody } b)
        {
            warnings.Add($"push_body_truncated: the body has {b.Length} characters; iOS lock screens show about {VisibleBody}");
        }

        if (string.IsNullOrWhiteSpace(c.Title) && string.IsNullOrWhiteSpace(c.Body))
        {
            warnings.Add("push_empty: neither title nor body; it goes as a background push");
        }

        return warnings;
    }
}
