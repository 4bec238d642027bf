// Cosmos DB (NoSQL API) account, the database and every container, all read from ../cosmos-containers.json: the one
// definition the C# Cosmos store embeds too. Data-plane roles cannot create containers, so they are all declared here.
// Keys are disabled (disableLocalAuth): the app reaches Cosmos with its managed identity only.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Cosmos DB account name (3..44 lowercase letters, digits and hyphens).')
@minLength(3)
@maxLength(44)
param accountName string

@description('serverless (pay per request, the default) or autoscale (provisioned throughput shared by the database).')
@allowed([
  'serverless'
  'autoscale'
])
param throughputMode string

@description('Highest RU/s the database may scale to in autoscale mode (1000..1000000, a multiple of 1000). Ignored when serverless.')
@minValue(1000)
@maxValue(1000000)
param autoscaleMaxThroughput int

var definition = loadJsonContent('../cosmos-containers.json')
var serverless = throughputMode == 'serverless'

resource account 'Microsoft.DocumentDB/databaseAccounts@2025-04-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: serverless
      ? [
          {
            name: 'EnableServerless'
          }
        ]
      : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    enableAutomaticFailover: false
    enableFreeTier: false
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2025-04-15' = {
  parent: account
  name: definition.database
  properties: {
    resource: {
      id: definition.database
    }
    options: serverless
      ? {}
      : {
          autoscaleSettings: {
            maxThroughput: autoscaleMaxThroughput
          }
        }
  }
}

resource containers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2025-04-15' = [
  for c in definition.containers: {
    parent: database
    name: c.name
    properties: {
      resource: union(
        {
          id: c.name
          partitionKey: {
            paths: [
              c.partitionKey
            ]
            kind: 'Hash'
            version: 2
          }
          indexingPolicy: c.indexingPolicy
        },
        contains(c, 'defaultTtlSeconds') ? { defaultTtl: c.defaultTtlSeconds } : {}
      )
    }
  }
]

output accountName string = account.name
output accountId string = account.id
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
output containerNames array = [for (c, i) in definition.containers: containers[i].name]
