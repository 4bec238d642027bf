using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Nudge.Infra.Tests;

/// <summary>What main.bicep declares, checked on the evaluated snapshot of each environment's deployment.</summary>
public sealed class TemplateTests(Snapshots snapshots) : IClassFixture<Snapshots>
{
    private static readonly JsonNode CosmosDefinition =
        JsonNode.Parse(File.ReadAllText(Path.Combine(Repo.InfraDir, "cosmos-containers.json")))!;

    /// <summary>App setting -> Key Vault secret name, for every secret the app reads.</summary>
    public static readonly IReadOnlyDictionary<string, string> SecretSettings = new Dictionary<string, string>
    {
        ["Nudge__Auth__SiteId"] = "nudge-auth-site-id",
        ["Nudge__Auth__ApiKey"] = "nudge-auth-api-key",
        ["Nudge__Auth__SegmentWriteKey"] = "nudge-auth-segment-write-key",
        ["Nudge__Auth__AdminKey"] = "nudge-auth-admin-key",
        ["Nudge__Auth__LinkKey"] = "nudge-auth-link-key",
        ["Nudge__Providers__Apns__PrivateKey"] = "nudge-apns-private-key",
        ["Nudge__Providers__Fcm__ServiceAccountJson"] = "nudge-fcm-service-account-json",
        ["Nudge__Providers__Twilio__AuthToken"] = "nudge-twilio-auth-token",
        ["Nudge__Providers__Email__SendGrid__ApiKey"] = "nudge-sendgrid-api-key",
        ["Nudge__Alerts__WebhookUrl"] = "nudge-alerts-webhook-url",
        ["Nudge__ReportingWebhooks__Secret"] = "nudge-reporting-webhook-secret",
    };

    /// <summary>Plain app settings the app reads; a value is the literal expected in dev (null: computed at deployment).</summary>
    public static readonly IReadOnlyDictionary<string, string?> PlainSettings = new Dictionary<string, string?>
    {
        ["AzureWebJobsStorage__accountName"] = null,
        ["ServiceBusConnection__fullyQualifiedNamespace"] = null,
        ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = null,
        ["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] = "Authorization=AAD",
        ["Nudge__Store__Kind"] = "cosmos",
        ["Nudge__Cosmos__Endpoint"] = null,
        ["Nudge__Cosmos__Database"] = CosmosDefinition["database"]!.GetValue<string>(),
        ["Nudge__Workers__Enabled"] = "false",
        ["Nudge__PublicBaseUrl"] = null,
        ["Nudge__Functions__MaxDeliveryCount"] = "10",
        ["Nudge__DefaultPhoneRegion"] = "US",
        ["Nudge__Providers__Apns__KeyId"] = "",
        ["Nudge__Providers__Apns__TeamId"] = "",
        ["Nudge__Providers__Apns__BundleId"] = "",
        ["Nudge__Providers__Twilio__AccountSid"] = "",
        ["Nudge__Providers__Twilio__MessagingServiceSid"] = "",
        ["Nudge__Providers__Email__Provider"] = "",
        ["Nudge__Providers__Email__From"] = "",
        ["Nudge__Providers__Email__SendGrid__WebhookPublicKey"] = "",
        ["Nudge__ReportingWebhooks__Url"] = "",
    };

    public static TheoryData<string> Environments => new() { "dev", "prod" };

    [Theory]
    [MemberData(nameof(Environments))]
    public void EveryCosmosContainer_IsDeclared_AsDefinedInCosmosContainersJson(string environment)
    {
        var s = snapshots[environment];
        var database = CosmosDefinition["database"]!.GetValue<string>();
        var account = Snapshot.Name(s.Single("Microsoft.DocumentDB/databaseAccounts"));
        Assert.Equal($"{account}/{database}", Snapshot.Name(s.Single("Microsoft.DocumentDB/databaseAccounts/sqlDatabases")));

        var declared = s.OfType("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")
            .ToDictionary(r => Snapshot.Name(r), r => r["properties"]!["resource"]!);
        var expected = CosmosDefinition["containers"]!.AsArray().Select(c => c!).ToList();
        Assert.Equal(expected.Select(c => $"{account}/{database}/{c["name"]}").Order(), declared.Keys.Order());
        foreach (var c in expected)
        {
            var name = c["name"]!.GetValue<string>();
            var r = declared[$"{account}/{database}/{name}"];
            Assert.Equal(name, Snapshot.Str(r["id"]));
            Assert.Equal([c["partitionKey"]!.GetValue<string>()], r["partitionKey"]!["paths"]!.AsArray().Select(p => p!.GetValue<string>()));
            Assert.Equal("Hash", Snapshot.Str(r["partitionKey"]!["kind"]));
            Assert.True(JsonNode.DeepEquals(c["indexingPolicy"], r["indexingPolicy"]), $"{name}: indexingPolicy {r["indexingPolicy"]} != {c["indexingPolicy"]}");
            if (c["defaultTtlSeconds"] is { } ttl)
            {
                Assert.Equal(ttl.GetValue<int>(), r["defaultTtl"]!.GetValue<int>());
            }
            else
            {
                Assert.Null(r["defaultTtl"]);
            }
        }
    }

    [Fact]
    public void Cosmos_IsServerlessInDev_AutoscaleInProd_AndKeyless()
    {
        foreach (var env in new[] { "dev", "prod" })
        {
            var account = snapshots[env].Single("Microsoft.DocumentDB/databaseAccounts")["properties"]!;
            Assert.True(account["disableLocalAuth"]!.GetValue<bool>(), $"{env}: Cosmos keys must be disabled");
            Assert.Equal("Tls12", Snapshot.Str(account["minimalTlsVersion"]));
        }

        var devAccount = snapshots.Dev.Single("Microsoft.DocumentDB/databaseAccounts")["properties"]!;
        Assert.Contains("EnableServerless", devAccount["capabilities"]!.AsArray().Select(c => Snapshot.Str(c!["name"])));
        Assert.Null(snapshots.Dev.Single("Microsoft.DocumentDB/databaseAccounts/sqlDatabases")["properties"]!["options"]!["autoscaleSettings"]);

        var prodAccount = snapshots.Prod.Single("Microsoft.DocumentDB/databaseAccounts")["properties"]!;
        Assert.DoesNotContain("EnableServerless", prodAccount["capabilities"]!.AsArray().Select(c => Snapshot.Str(c!["name"])));
        var autoscale = snapshots.Prod.Single("Microsoft.DocumentDB/databaseAccounts/sqlDatabases")["properties"]!["options"]!["autoscaleSettings"]!;
        Assert.Equal(4000, autoscale["maxThroughput"]!.GetValue<int>());
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void ServiceBus_HasThePipelineQueues_WithDeadLettering(string environment)
    {
        var s = snapshots[environment];
        var ns = s.Single("Microsoft.ServiceBus/namespaces");
        Assert.Equal("Standard", Snapshot.Str(ns["sku"]!["name"]));
        Assert.True(ns["properties"]!["disableLocalAuth"]!.GetValue<bool>(), "Service Bus SAS keys must be disabled");

        var queues = s.OfType("Microsoft.ServiceBus/namespaces/queues").ToDictionary(q => Snapshot.Name(q).Split('/')[^1], q => q["properties"]!);
        Assert.Equal(["events", "sends", "steps"], queues.Keys.Order());
        foreach (var (name, q) in queues)
        {
            Assert.True(q["maxDeliveryCount"]!.GetValue<int>() == 10, $"{name}: maxDeliveryCount");
            Assert.True(q["deadLetteringOnMessageExpiration"]!.GetValue<bool>(), $"{name}: deadLetteringOnMessageExpiration");
            Assert.Equal("PT5M", Snapshot.Str(q["lockDuration"]));
            Assert.Equal("P14D", Snapshot.Str(q["defaultMessageTimeToLive"]));
        }

        // Event ids are idempotency keys: a repeat within the window is a duplicate.
        Assert.True(queues["events"]["requiresDuplicateDetection"]!.GetValue<bool>());
        Assert.Equal("PT10M", Snapshot.Str(queues["events"]["duplicateDetectionHistoryTimeWindow"]));
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public async Task FunctionApp_IsFlexConsumption_CustomHandler_WithManagedIdentity(string environment)
    {
        var s = snapshots[environment];
        var plan = s.Single("Microsoft.Web/serverfarms");
        Assert.Equal("FC1", Snapshot.Str(plan["sku"]!["name"]));
        Assert.Equal("FlexConsumption", Snapshot.Str(plan["sku"]!["tier"]));
        Assert.True(plan["properties"]!["reserved"]!.GetValue<bool>());

        var site = s.Single("Microsoft.Web/sites");
        Assert.Equal("functionapp,linux", Snapshot.Str(site["kind"]));
        Assert.Equal("SystemAssigned", Snapshot.Str(site["identity"]!["type"]));
        Assert.Equal(Snapshot.Id(plan), Snapshot.Str(site["properties"]!["serverFarmId"]));
        Assert.True(site["properties"]!["httpsOnly"]!.GetValue<bool>());

        var config = site["properties"]!["functionAppConfig"]!;
        var storage = config["deployment"]!["storage"]!;
        Assert.Equal("blobContainer", Snapshot.Str(storage["type"]));
        Assert.Equal("SystemAssignedIdentity", Snapshot.Str(storage["authentication"]!["type"]));
        var account = s.Single("Microsoft.Storage/storageAccounts");
        var container = Snapshot.Name(s.Single("Microsoft.Storage/storageAccounts/blobServices/containers")).Split('/')[^1];
        Assert.Contains(Snapshot.Id(account), Snapshot.Str(storage["value"]), StringComparison.Ordinal);
        Assert.Contains("primaryEndpoints.blob", Snapshot.Str(storage["value"]), StringComparison.Ordinal);
        Assert.EndsWith($"'{container}')]", Snapshot.Str(storage["value"]), StringComparison.Ordinal);

        var parameters = await BuildParamsAsync(environment);
        Assert.Equal(parameters["maximumInstanceCount"]!["value"]!.GetValue<int>(), config["scaleAndConcurrency"]!["maximumInstanceCount"]!.GetValue<int>());
        Assert.Equal(parameters["instanceMemoryMB"]!["value"]!.GetValue<int>(), config["scaleAndConcurrency"]!["instanceMemoryMB"]!.GetValue<int>());
        Assert.Equal("custom", Snapshot.Str(config["runtime"]!["name"]));
        Assert.Equal("1.0", Snapshot.Str(config["runtime"]!["version"]));
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void Storage_HasNoSharedKeys_AndTls12(string environment)
    {
        var props = snapshots[environment].Single("Microsoft.Storage/storageAccounts")["properties"]!;
        Assert.False(props["allowSharedKeyAccess"]!.GetValue<bool>());
        Assert.False(props["allowBlobPublicAccess"]!.GetValue<bool>());
        Assert.Equal("TLS1_2", Snapshot.Str(props["minimumTlsVersion"]));
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void ManagedIdentity_GetsEveryRole_OnItsResource(string environment)
    {
        var s = snapshots[environment];
        string IdOf(string type) => Snapshot.Id(s.Single(type));
        var expected = new (string Role, string Scope)[]
        {
            ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", IdOf("Microsoft.Storage/storageAccounts")), // Storage Blob Data Owner
            ("974c5e8b-45b9-4653-ba55-5f855dd0fb88", IdOf("Microsoft.Storage/storageAccounts")), // Storage Queue Data Contributor
            ("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", IdOf("Microsoft.Storage/storageAccounts")), // Storage Table Data Contributor
            ("69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", IdOf("Microsoft.ServiceBus/namespaces")), // Service Bus Data Sender
            ("4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", IdOf("Microsoft.ServiceBus/namespaces")), // Service Bus Data Receiver
            ("4633458b-17de-408a-b874-0445c86b69e6", IdOf("Microsoft.KeyVault/vaults")), // Key Vault Secrets User
            ("3913510d-42f4-4e42-8a64-420c390055eb", IdOf("Microsoft.Insights/components")), // Monitoring Metrics Publisher
        };
        var site = s.Single("Microsoft.Web/sites");
        var principal = $"reference('{Snapshot.Id(site)}', '{site["apiVersion"]}', 'full').identity.principalId";

        var assignments = s.OfType("Microsoft.Authorization/roleAssignments").ToList();
        Assert.Equal(expected.Length, assignments.Count);
        foreach (var (role, scope) in expected)
        {
            var a = assignments.SingleOrDefault(a => Snapshot.Str(a["properties"]!["roleDefinitionId"]) ==
                $"/subscriptions/{Snapshots.SubscriptionId}/providers/Microsoft.Authorization/roleDefinitions/{role}");
            Assert.True(a is not null, $"no role assignment of {role}");
            Assert.Equal($"[{principal}]", Snapshot.Str(a["properties"]!["principalId"]));
            Assert.Equal("ServicePrincipal", Snapshot.Str(a["properties"]!["principalType"]));
            // Scoped to the resource, named guid(scope, principal, role) so redeployments find the same assignment.
            Assert.StartsWith($"[extensionResourceId('{scope}', 'Microsoft.Authorization/roleAssignments', guid(", Snapshot.Id(a), StringComparison.Ordinal);
            Assert.StartsWith("[guid(", Snapshot.Name(a), StringComparison.Ordinal);
            Assert.Contains(principal, Snapshot.Name(a), StringComparison.Ordinal);
            Assert.Contains($"'{role}')", Snapshot.Name(a), StringComparison.Ordinal);
        }

        // Cosmos DB Built-in Data Contributor is a data-plane role of the account.
        var cosmos = IdOf("Microsoft.DocumentDB/databaseAccounts");
        var sql = s.Single("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments")["properties"]!;
        Assert.Equal($"{cosmos}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000002", Snapshot.Str(sql["roleDefinitionId"]));
        Assert.Equal(cosmos, Snapshot.Str(sql["scope"]));
        Assert.Equal($"[{principal}]", Snapshot.Str(sql["principalId"]));
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void KeyVault_UsesRbac_AndHoldsEverySecret_SkippingEmptyOnes(string environment)
    {
        var s = snapshots[environment];
        var vault = s.Single("Microsoft.KeyVault/vaults");
        Assert.True(vault["properties"]!["enableRbacAuthorization"]!.GetValue<bool>());
        Assert.Equal(environment == "prod", vault["properties"]!["enablePurgeProtection"]?.GetValue<bool>() ?? false);

        var secrets = s.OfType("Microsoft.KeyVault/vaults/secrets").ToDictionary(r => Snapshot.Name(r).Split('/')[^1]);
        Assert.Equal(SecretSettings.Values.Order(), secrets.Keys.Order());
        foreach (var (name, secret) in secrets)
        {
            Assert.StartsWith(Snapshot.Name(vault) + "/", Snapshot.Name(secret), StringComparison.Ordinal);
            // Written only when a value was given: an empty value never blanks a secret set out of band.
            Assert.Equal($"[not(empty(coalesce(tryGet(parameters('secrets'), '{name}'), '')))]", Snapshot.Str(secret["condition"]));
        }
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void AppSettings_AreTheOnesTheAppReads(string environment)
    {
        var s = snapshots[environment];
        var settings = AppSettingsExpression(s);

        Assert.Equal($"'AzureWebJobsStorage__accountName', '{Snapshot.Name(s.Single("Microsoft.Storage/storageAccounts"))}'",
            Arg(settings, "AzureWebJobsStorage__accountName"));
        Assert.StartsWith($"'ServiceBusConnection__fullyQualifiedNamespace', split(split(reference('{Snapshot.Id(s.Single("Microsoft.ServiceBus/namespaces"))}'",
            Arg(settings, "ServiceBusConnection__fullyQualifiedNamespace"), StringComparison.Ordinal);
        Assert.Contains($"reference('{Snapshot.Id(s.Single("Microsoft.Insights/components"))}', '2020-02-02').ConnectionString",
            Arg(settings, "APPLICATIONINSIGHTS_CONNECTION_STRING"), StringComparison.Ordinal);
        Assert.Contains($"reference('{Snapshot.Id(s.Single("Microsoft.DocumentDB/databaseAccounts"))}'",
            Arg(settings, "Nudge__Cosmos__Endpoint"), StringComparison.Ordinal);
        Assert.EndsWith(".documentEndpoint", Arg(settings, "Nudge__Cosmos__Endpoint"), StringComparison.Ordinal);
        Assert.Equal($"'Nudge__PublicBaseUrl', format('https://{{0}}', reference('{Snapshot.Id(s.Single("Microsoft.Web/sites"))}', '2024-04-01').defaultHostName)",
            Arg(settings, "Nudge__PublicBaseUrl"));
        foreach (var (name, value) in PlainSettings.Where(p => p.Value is not null))
        {
            Assert.Equal($"'{name}', '{value}'", Arg(settings, name));
        }
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void SecretSettings_AreKeyVaultReferences_ToTheSecretsTheDeploymentWrites(string environment)
    {
        var settings = AppSettingsExpression(snapshots[environment]);
        Assert.Contains("'@Microsoft.KeyVault(VaultName={0};SecretName={1})', parameters('keyVaultName'), lambdaVariables('s').secret)", settings, StringComparison.Ordinal);
        foreach (var (setting, secret) in SecretSettings)
        {
            Assert.Contains($"createObject('setting', '{setting}', 'secret', '{secret}', 'given', ", settings, StringComparison.Ordinal);
            // Named nowhere else: never a plain value.
            Assert.Single(Regex.Matches(settings, Regex.Escape($"'{setting}'")));
        }

        // A reference is emitted only for a secret that exists: one given to this deployment or listed as existing.
        Assert.Contains("lambda('s', or(lambdaVariables('s').given, contains(parameters('existingSecrets'), lambdaVariables('s').secret)))", settings, StringComparison.Ordinal);

        // The vault name handed to the settings module is the vault's.
        // (main.json uses symbolic names: resources is an object keyed by the Bicep symbol.)
        var resources = JsonNode.Parse(snapshots.MainJson)!["resources"]!.AsObject();
        Assert.Equal("keyvault", Snapshot.Name(resources["keyVault"]!));
        Assert.Equal("[reference('keyVault').outputs.vaultName.value]",
            Snapshot.Str(resources["appSettings"]!["properties"]!["parameters"]!["keyVaultName"]!["value"]));
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void SecureParameters_NeverReachAppSettings(string environment)
    {
        var settings = AppSettingsExpression(snapshots[environment]);
        var secure = new[]
        {
            "authSiteId", "authApiKey", "authSegmentWriteKey", "authAdminKey", "authLinkKey", "apnsPrivateKey",
            "fcmServiceAccountJson", "twilioAuthToken", "sendGridApiKey",
        };
        var main = JsonNode.Parse(snapshots.MainJson)!;
        foreach (var p in secure)
        {
            Assert.Equal("securestring", Snapshot.Str(main["parameters"]![p]!["type"]));
            // Only whether a value was given (not(empty(...))) is used; the value itself goes to Key Vault only.
            Assert.DoesNotContain($"parameters('{p}')", settings.Replace($"not(empty(parameters('{p}')))", "", StringComparison.Ordinal), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void NoKeysOrConnectionStringsWithSecrets_AnywhereInTheTemplate()
    {
        // Keys would come from list*() functions or literal connection strings; the identity needs neither.
        var forbidden = new Regex(@"list(Keys|ConnectionStrings|AccountSas|ServiceSas|Secrets)\(|AccountKey|SharedAccessKey|key=|primaryMasterKey|primaryKey|InstrumentationKey",
            RegexOptions.IgnoreCase);
        Assert.DoesNotMatch(forbidden, snapshots.MainJson);
        foreach (var env in new[] { "dev", "prod" })
        {
            var settings = AppSettingsExpression(snapshots[env]);
            Assert.DoesNotMatch(forbidden, settings);
            Assert.DoesNotMatch(forbidden, snapshots[env].Single("Microsoft.Web/sites").ToJsonString());
        }
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void Monitoring_IsWorkspaceBased(string environment)
    {
        var s = snapshots[environment];
        var workspace = s.Single("Microsoft.OperationalInsights/workspaces");
        var ai = s.Single("Microsoft.Insights/components")["properties"]!;
        Assert.Equal(Snapshot.Id(workspace), Snapshot.Str(ai["WorkspaceResourceId"]));
        Assert.True(ai["DisableLocalAuth"]!.GetValue<bool>());
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public void Outputs_NameWhatTheDeployWorkflowNeeds(string environment)
    {
        var outputs = snapshots[environment].Outputs;
        var s = snapshots[environment];
        Assert.Equal(Snapshot.Name(s.Single("Microsoft.Web/sites")), Snapshot.Str(outputs["functionAppName"]));
        Assert.Equal(Snapshot.Name(s.Single("Microsoft.ServiceBus/namespaces")), Snapshot.Str(outputs["serviceBusNamespace"]));
        Assert.Equal(Snapshot.Name(s.Single("Microsoft.KeyVault/vaults")), Snapshot.Str(outputs["keyVaultName"]));
        Assert.Contains(".defaultHostName", Snapshot.Str(outputs["defaultHostName"]), StringComparison.Ordinal);
        Assert.Contains(".documentEndpoint", Snapshot.Str(outputs["cosmosEndpoint"]), StringComparison.Ordinal);
    }

    [Fact]
    public void EnvironmentsGetDistinctGloballyUniqueNames()
    {
        foreach (var type in new[] { "Microsoft.Web/sites", "Microsoft.Storage/storageAccounts", "Microsoft.KeyVault/vaults", "Microsoft.DocumentDB/databaseAccounts", "Microsoft.ServiceBus/namespaces" })
        {
            Assert.NotEqual(Snapshot.Name(snapshots.Dev.Single(type)), Snapshot.Name(snapshots.Prod.Single(type)));
        }

        foreach (var env in new[] { "dev", "prod" })
        {
            Assert.Matches("^[a-z0-9]{3,24}$", Snapshot.Name(snapshots[env].Single("Microsoft.Storage/storageAccounts")));
            Assert.Matches("^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", Snapshot.Name(snapshots[env].Single("Microsoft.KeyVault/vaults")));
        }
    }

    /// <summary>The app settings resource's properties: one ARM expression (values such as reference() are known only at deployment).</summary>
    private static string AppSettingsExpression(Snapshot s)
    {
        var config = s.OfType("Microsoft.Web/sites/config").Single(r => Snapshot.Name(r).EndsWith("/appsettings", StringComparison.Ordinal));
        Assert.Equal($"{Snapshot.Name(s.Single("Microsoft.Web/sites"))}/appsettings", Snapshot.Name(config));
        var text = config["properties"]!.GetValue<string>();
        foreach (var name in PlainSettings.Keys)
        {
            Assert.Contains($"'{name}', ", text, StringComparison.Ordinal);
        }

        return text;
    }

    /// <summary>"'name', value" of a createObject argument pair, up to the next setting name or the end of the object.</summary>
    private static string Arg(string expression, string name)
    {
        var start = expression.IndexOf($"'{name}', ", StringComparison.Ordinal);
        Assert.True(start >= 0, $"setting {name} is missing");
        var depth = 0;
        var inString = false;
        var seenComma = false;
        for (var i = start; i < expression.Length; i++)
        {
            var ch = expression[i];
            if (ch == '\'')
            {
                inString = !inString;
            }
            else if (!inString && ch is '(' or '[')
            {
                depth++;
            }
            else if (!inString && ch is ')' or ']')
            {
                if (depth == 0)
                {
                    return expression[start..i];
                }

                depth--;
            }
            else if (!inString && depth == 0 && ch == ',')
            {
                if (seenComma)
                {
                    return expression[start..i];
                }

                seenComma = true;
            }
        }

        return expression[start..];
    }

    private static async Task<JsonNode> BuildParamsAsync(string environment)
    {
        var result = await Bicep.RunAsync(Repo.InfraDir, "build-params", $"{environment}.bicepparam", "--stdout");
        Bicep.AssertClean(result, "build-params");
        return JsonNode.Parse(JsonNode.Parse(result.Output)!["parametersJson"]!.GetValue<string>())!["parameters"]!;
    }
}
