// The Function App's settings, written after its identity has its roles so Key Vault references resolve at once.
// This resource owns the complete set: a setting not listed here is removed on deployment.

@description('Function App name.')
param appName string

@description('Plain settings (no secrets: those come from Key Vault).')
param settings object

@description('Key Vault holding the secrets.')
param keyVaultName string

@description('Settings read from Key Vault: the setting name and the secret name.')
param keyVaultSettings {
  setting: string
  secret: string
}[]

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

var keyVaultReferences = toObject(
  keyVaultSettings,
  s => s.setting,
  s => '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${s.secret})'
)

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: union(settings, keyVaultReferences)
}

output settingNames array = objectKeys(union(settings, keyVaultReferences))
