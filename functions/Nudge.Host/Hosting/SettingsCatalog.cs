using System.Collections;
using System.Globalization;
using System.Reflection;
using Nudge.Delivery;

namespace Nudge.Host.Hosting;

/// <summary>A setting Nudge reads, by its full name (<c>Nudge:Workers:BatchSize</c>; a list's entries as <c>Name:{i}</c>).</summary>
/// <param name="Name">Full configuration key.</param>
/// <param name="Simple">A single value (number, text, flag, duration); false for a list.</param>
/// <param name="Default">The configuration value that gives the class's default; null when unset.</param>
public sealed record KnownSetting(string Name, bool Simple, string? Default);

/// <summary>
/// Every setting the options classes bind: <see cref="NudgeOptions"/> walked recursively, then each provider's options
/// (found by <see cref="IProviderOptions"/>) under its section. docs/configuration.md is checked against it, and
/// start-up names any Nudge:* key that is not in it (a misspelt setting would otherwise be ignored without a word).
/// </summary>
public static class SettingsCatalog
{
    private static readonly Lazy<IReadOnlyList<KnownSetting>> Settings = new(Build);

    /// <summary>Every setting, in the order of the classes.</summary>
    public static IReadOnlyList<KnownSetting> All => Settings.Value;

    /// <summary>One problem per Nudge:* key in <paramref name="config"/> that names no setting, with the closest one when a typo is likely.</summary>
    public static IEnumerable<string> UnknownKeys(IConfiguration config)
    {
        var exact = All.Where(s => s.Simple).Select(s => s.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var lists = All.Where(s => !s.Simple).Select(s => s.Name[..^"{i}".Length]).ToList();
        foreach (var (key, value) in config.GetSection(NudgeOptions.Section).AsEnumerable().OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase))
        {
            // Sections have no value of their own; a list's entries are Name:0, Name:1 ...
            if (value is null || exact.Contains(key) || lists.Any(l => key.StartsWith(l, StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            // Sections given an empty value (a placeholder such as "Nudge__Providers__Fcm": "") hold no setting: nothing to name.
            if (value.Length == 0 && All.Any(s => s.Name.StartsWith(key + ":", StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            var closest = All.Select(s => s.Name).MinBy(n => Distance(n.ToLowerInvariant(), key.ToLowerInvariant()));
            var hint = closest is not null && Distance(closest.ToLowerInvariant(), key.ToLowerInvariant()) <= Math.Max(2, key.Length / 8)
                ? $" (did you mean {closest}?)"
                : "";
            yield return $"{key}: no such setting{hint}; docs/configuration.md lists them all";
        }
    }

    /// <summary>
    /// One problem per setting whose value is still an App Service Key Vault reference (<c>@Microsoft.KeyVault(...)</c>):
    /// when App Service cannot resolve one (no access for the app's identity, a missing secret, a firewall) it passes the
    /// reference through as the literal text, which must never become a credential. The reference is not quoted.
    /// </summary>
    public static IEnumerable<string> UnresolvedKeyVaultReferences(IConfiguration config) =>
        config.AsEnumerable()
            .Where(kv => kv.Value?.TrimStart().StartsWith("@Microsoft.KeyVault(", StringComparison.OrdinalIgnoreCase) == true)
            .OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase)
            .Select(kv => $"{kv.Key}: is an unresolved Key Vault reference (App Service could not read the secret: give the app's "
                + "managed identity the Key Vault Secrets User role on the vault, check the secret exists and the vault's network "
                + "rules let the app in); it is not used as the value");

    private static List<KnownSetting> Build()
    {
        var settings = new List<KnownSetting>();
        Walk(NudgeOptions.Section, new NudgeOptions(), settings);

        // Providers are bound by DeliverySetup from their own sections; finding them by interface covers a new one.
        var providers = typeof(IProviderOptions).Assembly.GetTypes()
            .Where(t => typeof(IProviderOptions).IsAssignableFrom(t) && t is { IsClass: true, IsAbstract: false })
            .OrderBy(t => t.FullName, StringComparer.Ordinal);
        foreach (var type in providers)
        {
            var section = SectionOf(type) ?? throw new InvalidOperationException($"{type.Name} implements IProviderOptions but has no Section or SectionName constant");
            Walk(section, Activator.CreateInstance(type)!, settings);
        }

        return settings;
    }

    private static void Walk(string prefix, object options, List<KnownSetting> into)
    {
        // A class that declares its own section must be reached at that section.
        if (SectionOf(options.GetType()) is { } declared && declared != prefix)
        {
            throw new InvalidOperationException($"{options.GetType().Name} declares section {declared} but is bound at {prefix}");
        }

        // What the configuration binder sets: public instance properties with a public setter.
        var properties = options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true } && p.GetIndexParameters().Length == 0);
        foreach (var p in properties)
        {
            var name = $"{prefix}:{p.Name}";
            var type = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
            var value = p.GetValue(options);
            if (IsSimple(type))
            {
                into.Add(new KnownSetting(name, true, Format(value)));
            }
            else if (typeof(IEnumerable).IsAssignableFrom(type))
            {
                // Lists bind one entry per index (Caps:0, Caps:1, ...).
                into.Add(new KnownSetting(name + ":{i}", false, null));
            }
            else
            {
                Walk(name, value ?? Activator.CreateInstance(type)!, into);
            }
        }
    }

    private static string? SectionOf(Type type) =>
        type.GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string) && f.Name is "Section" or "SectionName")
            .Select(f => (string?)f.GetRawConstantValue())
            .FirstOrDefault();

    private static bool IsSimple(Type t) =>
        t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan) || t == typeof(Uri)
        || t == typeof(DateTimeOffset) || t == typeof(Guid);

    /// <summary>A default as configuration writes it: the value that gives it, or null for unset (null or empty).</summary>
    private static string? Format(object? value) => value switch
    {
        null or "" => null,
        bool b => b ? "true" : "false",
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };

    /// <summary>Levenshtein distance, for the "did you mean" hint.</summary>
    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var diagonal = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }

        return row[b.Length];
    }
}
