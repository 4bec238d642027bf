using System.Text.Json.Nodes;

namespace Nudge.Infra.Tests;

/// <summary>
/// What a deployment of each .bicepparam would create, from `bicep snapshot` (offline: the template is evaluated with
/// made-up subscription, group and location; values known only at deployment, such as reference(), stay expressions).
/// Also the compiled main.json.
/// </summary>
public sealed class Snapshots : IAsyncLifetime
{
    public const string SubscriptionId = "00000000-0000-0000-0000-00000000a5b1";
    public const string TenantId = "00000000-0000-0000-0000-00000000e7a2";
    public const string ResourceGroup = "rg-nudge-test";
    public const string Location = "westeurope";

    private readonly TempDir _dir = Repo.NewTempDir();

    public Snapshot Dev { get; private set; } = null!;

    public Snapshot Prod { get; private set; } = null!;

    /// <summary>infra-bicep/main.bicep compiled to an ARM template (modules inlined as nested deployments).</summary>
    public string MainJson { get; private set; } = null!;

    public Snapshot this[string environment] => environment switch
    {
        "dev" => Dev,
        "prod" => Prod,
        _ => throw new ArgumentOutOfRangeException(nameof(environment)),
    };

    public async Task InitializeAsync()
    {
        // The snapshot is written beside the .bicepparam: work on a copy.
        Repo.CopyTree(Repo.InfraDir, _dir.Path);
        var dev = TakeAsync("dev");
        var prod = TakeAsync("prod");
        var main = Bicep.RunAsync(_dir.Path, "build", "main.bicep", "--stdout");
        (Dev, Prod) = (await dev, await prod);
        var built = await main;
        Bicep.AssertClean(built, "build main.bicep");
        MainJson = built.Output;
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    private async Task<Snapshot> TakeAsync(string environment)
    {
        var result = await Bicep.RunAsync(_dir.Path, "snapshot", $"{environment}.bicepparam", "--mode", "overwrite",
            "--subscription-id", SubscriptionId, "--tenant-id", TenantId, "--resource-group", ResourceGroup, "--location", Location);
        Bicep.AssertClean(result, $"snapshot {environment}.bicepparam");
        var json = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_dir.Path, $"{environment}.snapshot.json")))!;
        // Diagnostics name resources the snapshot could not predict (e.g. a loop count known only at deployment).
        Assert.True(json["diagnostics"]!.AsArray().Count == 0, $"snapshot {environment} has diagnostics: {json["diagnostics"]}");
        Assert.True(result.Output.Contains("diagnotics", StringComparison.OrdinalIgnoreCase) is false
            && result.Output.Contains("diagnostics", StringComparison.OrdinalIgnoreCase) is false,
            $"snapshot {environment} reported: {result.Output}");
        return new Snapshot(json);
    }
}

public sealed class Snapshot(JsonNode json)
{
    public JsonNode Json { get; } = json;

    public IReadOnlyList<JsonNode> Resources { get; } = json["predictedResources"]!.AsArray().Select(r => r!).ToList();

    public JsonNode Outputs => Json["outputs"]!;

    public IEnumerable<JsonNode> OfType(string type) =>
        Resources.Where(r => string.Equals(r["type"]!.GetValue<string>(), type, StringComparison.OrdinalIgnoreCase));

    public JsonNode Single(string type)
    {
        var found = OfType(type).ToList();
        Assert.True(found.Count == 1, $"expected one {type}, found {found.Count}");
        return found[0];
    }

    public static string Name(JsonNode resource) => resource["name"]!.GetValue<string>();

    public static string Id(JsonNode resource) => resource["id"]!.GetValue<string>();

    public static string? Str(JsonNode? node) => node?.GetValue<string>();
}
