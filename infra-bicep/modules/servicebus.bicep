// Service Bus namespace (Standard) and the pipeline's queues: events -> steps -> sends.
// Shared access keys are disabled: the app sends and receives with its managed identity.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Namespace name (6..50 characters).')
@minLength(6)
@maxLength(50)
param namespaceName string

@description('Deliveries before a message is dead-lettered. The app reads the same number (Nudge__Functions__MaxDeliveryCount).')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int

@description('The queues, each with whether duplicate detection (by MessageId, 10 minute window) is on.')
param queues {
  name: string
  duplicateDetection: bool
}[]

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [
  for q in queues: {
    parent: namespace
    name: q.name
    properties: {
      maxDeliveryCount: maxDeliveryCount
      deadLetteringOnMessageExpiration: true
      lockDuration: 'PT5M'
      defaultMessageTimeToLive: 'P14D'
      requiresDuplicateDetection: q.duplicateDetection
      duplicateDetectionHistoryTimeWindow: q.duplicateDetection ? 'PT10M' : null
      requiresSession: false
      enablePartitioning: false
      enableBatchedOperations: true
      maxSizeInMegabytes: 1024
    }
  }
]

output namespaceName string = namespace.name
output namespaceId string = namespace.id
// <name>.servicebus.windows.net, the value of ServiceBusConnection__fullyQualifiedNamespace.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '/')[2], ':')[0]
output queueNames array = [for (q, i) in queues: queue[i].name]
