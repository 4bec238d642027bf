using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;

namespace Nudge.Host.Hosting;

/// <summary>
/// Reads the Nudge section and checks what the options classes declare about themselves, collecting every problem by
/// its full configuration key: values that do not convert to the setting's type, DataAnnotations at every depth
/// (ValidateDataAnnotations looks at the top level only, so [Range] on Nudge:Workers:BatchSize was never checked), and
/// the groups' own Validate methods.
/// </summary>
public static partial class NudgeSettings
{
    /// <summary>Longest part of a value quoted in a problem; only values of non-secret settings are quoted.</summary>
    private const int MaxQuoted = 40;

    /// <summary>Binds <see cref="NudgeOptions"/> and adds every problem to <paramref name="problems"/>.</summary>
    /// <returns>The options; a setting whose value did not convert keeps its default (the problem names it).</returns>
    public static NudgeOptions Read(IConfiguration config, List<string> problems)
    {
        var options = Bind<NudgeOptions>(config, NudgeOptions.Section, problems);
        Annotations(options, NudgeOptions.Section, problems);
        problems.AddRange(options.RateLimits.Validate());
        problems.AddRange(options.Alerts.Validate());
        problems.AddRange(options.ReportingWebhooks.Validate());
        problems.AddRange(options.Retention.Validate());
        if (options.Auth.LinkKey is { Length: > 0 and < 32 })
        {
            problems.Add("Nudge:Auth:LinkKey must be at least 32 characters (it signs unsubscribe links)");
        }

        return options;
    }

    /// <summary>
    /// Binds <paramref name="section"/> to a new <typeparamref name="T"/>. When a value does not convert (the binder
    /// stops at the first), names it in <paramref name="problems"/> and binds again without it, so every such value is
    /// reported at once; those settings keep their defaults.
    /// </summary>
    internal static T Bind<T>(IConfiguration config, string section, List<string> problems)
        where T : class, new()
    {
        var without = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        while (true)
        {
            var source = without.Count == 0 ? config : new ConfigurationBuilder().AddConfiguration(config).AddInMemoryCollection(without).Build();
            try
            {
                return source.GetSection(section).Get<T>() ?? new T();
            }
            catch (InvalidOperationException e) when (ConversionFailure().Match(e.Message) is { Success: true } m && !without.ContainsKey(m.Groups["key"].Value))
            {
                // Only settings of value types fail to convert (numbers, true/false, durations): none is a secret, so the value is quoted.
                var key = m.Groups["key"].Value;
                problems.Add($"{key}: '{Quote(config[key])}' is not {TypeName(m.Groups["type"].Value)}");

                // The default, added last in the chain, hides the bad value; the problem above is then the only one about it.
                without[key] = DefaultText(new T(), key[(section.Length + 1)..]);
            }
        }
    }

    /// <summary>The default value of the setting at <paramref name="path"/> below <paramref name="root"/>, as configuration text; null when there is none.</summary>
    private static string? DefaultText(object root, string path)
    {
        object? value = root;
        foreach (var name in path.Split(':'))
        {
            var property = value?.GetType().GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            value = property?.GetValue(value);
        }

        return value switch
        {
            TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value?.ToString(),
        };
    }

    /// <summary>Checks the DataAnnotations of <paramref name="o"/>'s properties, and of every Nudge options object below it.</summary>
    internal static void Annotations(object o, string path, List<string> problems)
    {
        foreach (var property in o.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!property.CanRead || property.GetIndexParameters().Length > 0)
            {
                continue;
            }

            var key = $"{path}:{property.Name}";
            var value = property.GetValue(o);
            foreach (var rule in property.GetCustomAttributes<ValidationAttribute>())
            {
                if (!rule.IsValid(value))
                {
                    problems.Add($"{key}: {Explain(rule, value)}");
                }
            }

            if (value is not null && property.PropertyType.IsClass && property.PropertyType.Namespace?.StartsWith("Nudge.", StringComparison.Ordinal) == true)
            {
                Annotations(value, key, problems);
            }
        }
    }

    /// <summary>What is wrong, in the rule's terms. Only numbers and short patterned codes are quoted; free text is described by length.</summary>
    private static string Explain(ValidationAttribute rule, object? value) => rule switch
    {
        RequiredAttribute => "is required",
        RangeAttribute r => string.Create(CultureInfo.InvariantCulture, $"{value} is not between {r.Minimum} and {r.Maximum}"),
        StringLengthAttribute s => $"must be {s.MinimumLength} to {s.MaximumLength} characters long (it is {(value as string)?.Length ?? 0})",
        RegularExpressionAttribute x => $"'{Quote(value as string)}' does not match {x.Pattern}",
        _ => rule.FormatErrorMessage("value"),
    };

    private static string Quote(string? value) =>
        value is null ? "" : value.Length <= MaxQuoted ? value : string.Concat(value.AsSpan(0, MaxQuoted), "...");

    private static string TypeName(string clrType) => clrType switch
    {
        "System.Int32" or "System.Int64" => "a whole number",
        "System.Boolean" => "true or false",
        "System.Double" or "System.Decimal" => "a number",
        "System.TimeSpan" => "a duration as [d.]hh:mm:ss",
        _ => $"a value of type {clrType}",
    };

    [GeneratedRegex("^Failed to convert configuration value '.*' at '(?<key>[^']+)' to type '(?<type>[^']+)'", RegexOptions.Singleline)]
    private static partial Regex ConversionFailure();
}
