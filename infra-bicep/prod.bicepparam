// Production: autoscale Cosmos DB, larger scale-out, purge-protected Key Vault. Secrets come from environment
// variables (empty: not written;// a secret already in the vault is kept and used when its name is in NUDGE_EXISTING_SECRETS, comma-separated).
using 'main.bicep'

param name = 'nudge'
param environmentName = 'prod'
param maximumInstanceCount = 200
param instanceMemoryMB = 2048
param cosmosThroughputMode = 'autoscale'
param cosmosAutoscaleMaxThroughput = 4000
param storageSku = 'Standard_ZRS'
param logRetentionDays = 90
param keyVaultSoftDeleteRetentionDays = 90
param keyVaultPurgeProtection = true
param defaultPhoneRegion = readEnvironmentVariable('NUDGE_DEFAULT_PHONE_REGION', 'US')
param publicBaseUrl = readEnvironmentVariable('NUDGE_PUBLIC_BASE_URL', '')

param apnsKeyId = readEnvironmentVariable('NUDGE_APNS_KEY_ID', '')
param apnsTeamId = readEnvironmentVariable('NUDGE_APNS_TEAM_ID', '')
param apnsBundleId = readEnvironmentVariable('NUDGE_APNS_BUNDLE_ID', '')
param twilioAccountSid = readEnvironmentVariable('NUDGE_TWILIO_ACCOUNT_SID', '')
param twilioMessagingServiceSid = readEnvironmentVariable('NUDGE_TWILIO_MESSAGING_SERVICE_SID', '')
param emailProvider = readEnvironmentVariable('NUDGE_EMAIL_PROVIDER', '')
param emailFrom = readEnvironmentVariable('NUDGE_EMAIL_FROM', '')
param sendGridWebhookPublicKey = readEnvironmentVariable('NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY', '')
param reportingWebhookUrl = readEnvironmentVariable('NUDGE_REPORTING_WEBHOOK_URL', '')

param authSiteId = readEnvironmentVariable('NUDGE_AUTH_SITE_ID', '')
param authApiKey = readEnvironmentVariable('NUDGE_AUTH_API_KEY', '')
param authSegmentWriteKey = readEnvironmentVariable('NUDGE_AUTH_SEGMENT_WRITE_KEY', '')
param authAdminKey = readEnvironmentVariable('NUDGE_AUTH_ADMIN_KEY', '')
param authLinkKey = readEnvironmentVariable('NUDGE_AUTH_LINK_KEY', '')
param apnsPrivateKey = readEnvironmentVariable('NUDGE_APNS_PRIVATE_KEY', '')
param fcmServiceAccountJson = readEnvironmentVariable('NUDGE_FCM_SERVICE_ACCOUNT_JSON', '')
param twilioAuthToken = readEnvironmentVariable('NUDGE_TWILIO_AUTH_TOKEN', '')
param sendGridApiKey = readEnvironmentVariable('NUDGE_SENDGRID_API_KEY', '')
param alertsWebhookUrl = readEnvironmentVariable('NUDGE_ALERTS_WEBHOOK_URL', '')
param reportingWebhookSecret = readEnvironmentVariable('NUDGE_REPORTING_WEBHOOK_SECRET', '')
param existingSecrets = map(
  filter(split(readEnvironmentVariable('NUDGE_EXISTING_SECRETS', ''), ','), s => !empty(trim(s))),
  s => trim(s)
)
