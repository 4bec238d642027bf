// Nudge on Azure: a Flex Consumption Function App (custom handler) with Cosmos DB, Service Bus, Key Vault,
// Application Insights and the storage the Functions host needs. Deploy into a resource group:
//   az deployment group create -g <group> -f infra-bicep/main.bicep -p infra-bicep/dev.bicepparam
// Everything authenticates with the app's managed identity: no account keys or connection strings with secrets.
targetScope = 'resourceGroup'

// ---------- naming and placement ----------

@description('Short name of this installation, used in resource names (lowercase letters, digits, hyphens).')
@minLength(2)
@maxLength(12)
param name string = 'nudge'

@description('Environment name used in resource names, e.g. dev or prod (lowercase letters and digits).')
@minLength(2)
@maxLength(8)
param environmentName string

@description('Azure region of every resource. Must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Tags added to every resource.')
param tags object = {}

// ---------- Function App ----------

@description('Most instances the app scales out to (Flex Consumption: 40..1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Public https address of Nudge (Twilio callbacks, unsubscribe links). Empty: https://<app default host name>.')
param publicBaseUrl string = ''

@description('Region for phone numbers written without a country code (ISO 3166 alpha-2).')
@minLength(2)
@maxLength(2)
param defaultPhoneRegion string = 'US'

// ---------- data and messaging ----------

@description('Cosmos DB capacity: serverless (pay per request) or autoscale (provisioned, shared by the database).')
@allowed([
  'serverless'
  'autoscale'
])
param cosmosThroughputMode string = 'serverless'

@description('Highest RU/s the Cosmos database scales to when cosmosThroughputMode is autoscale (multiple of 1000).')
@minValue(1000)
@maxValue(1000000)
param cosmosAutoscaleMaxThroughput int = 1000

@description('Storage account SKU of the Functions host storage.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param storageSku string = 'Standard_LRS'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Days a deleted Key Vault or secret stays recoverable.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 90

@description('Key Vault purge protection (cannot be turned off again once on).')
param keyVaultPurgeProtection bool = false

// ---------- provider settings (not secret) ----------

@description('APNs key id (Nudge__Providers__Apns__KeyId). Empty with the other APNs values: iOS push stays in the sandbox.')
param apnsKeyId string = ''

@description('Apple developer team id (Nudge__Providers__Apns__TeamId).')
param apnsTeamId string = ''

@description('iOS app bundle id, the APNs topic (Nudge__Providers__Apns__BundleId).')
param apnsBundleId string = ''

@description('Twilio account SID (Nudge__Providers__Twilio__AccountSid).')
param twilioAccountSid string = ''

@description('Twilio messaging service SID (Nudge__Providers__Twilio__MessagingServiceSid).')
param twilioMessagingServiceSid string = ''

@description('Email provider: sendgrid or smtp (Nudge__Providers__Email__Provider). Empty: email stays in the sandbox.')
param emailProvider string = ''

@description('Sender address of email (Nudge__Providers__Email__From).')
param emailFrom string = ''

@description('SendGrid Event Webhook verification key, base64 DER P-256 (Nudge__Providers__Email__SendGrid__WebhookPublicKey). Empty: /webhooks/sendgrid accepts nothing.')
param sendGridWebhookPublicKey string = ''

@description('Where reporting webhooks go (Nudge__ReportingWebhooks__Url). Empty, or no reportingWebhookSecret: none are sent.')
param reportingWebhookUrl string = ''

// ---------- secrets: written to Key Vault, read by the app through Key Vault references ----------
// An empty value writes no secret. A secret created out of band (az keyvault secret set) is used when its name is
// listed in existingSecrets.

@description('Track API site id (secret nudge-auth-site-id).')
@secure()
param authSiteId string = ''

@description('Track API key (secret nudge-auth-api-key).')
@secure()
param authApiKey string = ''

@description('Segment write key (secret nudge-auth-segment-write-key).')
@secure()
param authSegmentWriteKey string = ''

@description('Admin API bearer key (secret nudge-auth-admin-key).')
@secure()
param authAdminKey string = ''

@description('Key that signs unsubscribe links, at least 32 characters (secret nudge-auth-link-key).')
@secure()
param authLinkKey string = ''

@description('APNs .p8 private key, PEM text (secret nudge-apns-private-key).')
@secure()
param apnsPrivateKey string = ''

@description('FCM service account JSON (secret nudge-fcm-service-account-json).')
@secure()
param fcmServiceAccountJson string = ''

@description('Slack-compatible webhook URL for delivery-rate alerts, a secret of its own (secret nudge-alerts-webhook-url). Empty: no alerts.')
@secure()
param alertsWebhookUrl string = ''

@description('Key that signs reporting webhooks, at least 16 characters (secret nudge-reporting-webhook-secret).')
@secure()
param reportingWebhookSecret string = ''

@description('Twilio auth token (secret nudge-twilio-auth-token).')
@secure()
param twilioAuthToken string = ''

@description('SendGrid API key (secret nudge-sendgrid-api-key).')
@secure()
param sendGridApiKey string = ''

@description('Names of secrets that already exist in the Key Vault and that the app should use even though this deployment passes no value for them.')
param existingSecrets string[] = []

// ---------- names ----------

var token = uniqueString(subscription().id, resourceGroup().id, name, environmentName)
var env = toLower(environmentName)
var compact = toLower(replace(name, '-', ''))
var suffix = toLower('${name}-${environmentName}')
var names = {
  plan: 'plan-${suffix}'
  app: 'func-${suffix}-${take(token, 6)}'
  storage: take('st${compact}${env}${token}', 24)
  cosmos: 'cosmos-${suffix}-${take(token, 6)}'
  serviceBus: 'sb-${suffix}-${take(token, 6)}'
  keyVault: 'kv${take(compact, 7)}${env}${take(token, 6)}'
  logAnalytics: 'log-${suffix}'
  appInsights: 'appi-${suffix}'
  deploymentContainer: 'app-package'
}
var allTags = union(tags, {
  application: 'nudge'
  environment: environmentName
})

// Deliveries of a Service Bus message before it is dead-lettered; the app is told the same number.
var maxDeliveryCount = 10

// ---------- resources ----------

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: allTags
    workspaceName: names.logAnalytics
    appInsightsName: names.appInsights
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: allTags
    storageAccountName: names.storage
    deploymentContainerName: names.deploymentContainer
    skuName: storageSku
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    location: location
    tags: allTags
    accountName: names.cosmos
    throughputMode: cosmosThroughputMode
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    tags: allTags
    namespaceName: names.serviceBus
    maxDeliveryCount: maxDeliveryCount
    // Duplicate detection drops a second message with the same MessageId within 10 minutes. Only event ids are
    // pure idempotency keys; steps and sends are retried on purpose with the same keys, and every handler
    // deduplicates in the store anyway.
    queues: [
      {
        name: 'events'
        duplicateDetection: true
      }
      {
        name: 'steps'
        duplicateDetection: false
      }
      {
        name: 'sends'
        duplicateDetection: false
      }
    ]
  }
}

// App setting -> Key Vault secret, with the value this deployment writes (empty: none).
var secretSettings = [
  {
    setting: 'Nudge__Auth__SiteId'
    secret: 'nudge-auth-site-id'
    given: !empty(authSiteId)
  }
  {
    setting: 'Nudge__Auth__ApiKey'
    secret: 'nudge-auth-api-key'
    given: !empty(authApiKey)
  }
  {
    setting: 'Nudge__Auth__SegmentWriteKey'
    secret: 'nudge-auth-segment-write-key'
    given: !empty(authSegmentWriteKey)
  }
  {
    setting: 'Nudge__Auth__AdminKey'
    secret: 'nudge-auth-admin-key'
    given: !empty(authAdminKey)
  }
  {
    setting: 'Nudge__Auth__LinkKey'
    secret: 'nudge-auth-link-key'
    given: !empty(authLinkKey)
  }
  {
    setting: 'Nudge__Providers__Apns__PrivateKey'
    secret: 'nudge-apns-private-key'
    given: !empty(apnsPrivateKey)
  }
  {
    setting: 'Nudge__Providers__Fcm__ServiceAccountJson'
    secret: 'nudge-fcm-service-account-json'
    given: !empty(fcmServiceAccountJson)
  }
  {
    setting: 'Nudge__Providers__Twilio__AuthToken'
    secret: 'nudge-twilio-auth-token'
    given: !empty(twilioAuthToken)
  }
  {
    setting: 'Nudge__Providers__Email__SendGrid__ApiKey'
    secret: 'nudge-sendgrid-api-key'
    given: !empty(sendGridApiKey)
  }
  {
    setting: 'Nudge__Alerts__WebhookUrl'
    secret: 'nudge-alerts-webhook-url'
    given: !empty(alertsWebhookUrl)
  }
  {
    setting: 'Nudge__ReportingWebhooks__Secret'
    secret: 'nudge-reporting-webhook-secret'
    given: !empty(reportingWebhookSecret)
  }
]

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: allTags
    vaultName: names.keyVault
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
    enablePurgeProtection: keyVaultPurgeProtection
    secretNames: map(secretSettings, s => s.secret)
    secrets: {
      'nudge-auth-site-id': authSiteId
      'nudge-auth-api-key': authApiKey
      'nudge-auth-segment-write-key': authSegmentWriteKey
      'nudge-auth-admin-key': authAdminKey
      'nudge-auth-link-key': authLinkKey
      'nudge-apns-private-key': apnsPrivateKey
      'nudge-fcm-service-account-json': fcmServiceAccountJson
      'nudge-twilio-auth-token': twilioAuthToken
      'nudge-sendgrid-api-key': sendGridApiKey
      'nudge-alerts-webhook-url': alertsWebhookUrl
      'nudge-reporting-webhook-secret': reportingWebhookSecret
    }
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: allTags
    planName: names.plan
    appName: names.app
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.storageAccountName
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    cosmosAccountName: cosmos.outputs.accountName
    keyVaultName: keyVault.outputs.vaultName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module appSettings 'modules/appsettings.bicep' = {
  name: 'appsettings'
  dependsOn: [
    roles
  ]
  params: {
    appName: functionApp.outputs.appName
    keyVaultName: keyVault.outputs.vaultName
    keyVaultSettings: map(
      filter(secretSettings, s => s.given || contains(existingSecrets, s.secret)),
      s => {
        setting: s.setting
        secret: s.secret
      }
    )
    settings: {
      // Functions host: identity-based storage, Service Bus and telemetry.
      AzureWebJobsStorage__accountName: storage.outputs.storageAccountName
      ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
      APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.appInsightsConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
      // Nudge.
      Nudge__Store__Kind: 'cosmos'
      Nudge__Cosmos__Endpoint: cosmos.outputs.endpoint
      Nudge__Cosmos__Database: cosmos.outputs.databaseName
      Nudge__Workers__Enabled: 'false'
      Nudge__PublicBaseUrl: empty(publicBaseUrl) ? 'https://${functionApp.outputs.defaultHostName}' : publicBaseUrl
      Nudge__Functions__MaxDeliveryCount: string(maxDeliveryCount)
      Nudge__DefaultPhoneRegion: defaultPhoneRegion
      Nudge__Providers__Apns__KeyId: apnsKeyId
      Nudge__Providers__Apns__TeamId: apnsTeamId
      Nudge__Providers__Apns__BundleId: apnsBundleId
      Nudge__Providers__Twilio__AccountSid: twilioAccountSid
      Nudge__Providers__Twilio__MessagingServiceSid: twilioMessagingServiceSid
      Nudge__Providers__Email__Provider: emailProvider
      Nudge__Providers__Email__From: emailFrom
      Nudge__Providers__Email__SendGrid__WebhookPublicKey: sendGridWebhookPublicKey
      Nudge__ReportingWebhooks__Url: reportingWebhookUrl
    }
  }
}

// ---------- outputs ----------

output functionAppName string = functionApp.outputs.appName
output defaultHostName string = functionApp.outputs.defaultHostName
output cosmosEndpoint string = cosmos.outputs.endpoint
output cosmosDatabase string = cosmos.outputs.databaseName
output serviceBusNamespace string = serviceBus.outputs.namespaceName
output serviceBusFullyQualifiedNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output keyVaultName string = keyVault.outputs.vaultName
output storageAccountName string = storage.outputs.storageAccountName
