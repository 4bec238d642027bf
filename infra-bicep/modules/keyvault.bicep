// Key Vault with Azure RBAC authorization (no access policies) holding the provider and API secrets.
// A secret whose value is empty is not written, so a deployment never blanks a secret that was set out of band
// (az keyvault secret set); main.bicep only references the secrets that exist.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Key Vault name (3..24 letters, digits and hyphens).')
@minLength(3)
@maxLength(24)
param vaultName string

@description('Days a deleted vault or secret can be recovered (7..90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int

@description('Purge protection: once on it cannot be turned off (recommended for production).')
param enablePurgeProtection bool

@description('Names of the secrets this deployment manages (keys of secrets).')
param secretNames string[]

@description('Secret name -> value. Empty values are skipped.')
@secure()
param secrets object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: enablePurgeProtection ? true : null
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for secretName in secretNames: if (!empty(secrets[?secretName] ?? '')) {
    parent: vault
    name: secretName
    properties: {
      value: secrets[secretName]
      contentType: 'text/plain'
    }
  }
]

output vaultName string = vault.name
output vaultId string = vault.id
output vaultUri string = vault.properties.vaultUri
