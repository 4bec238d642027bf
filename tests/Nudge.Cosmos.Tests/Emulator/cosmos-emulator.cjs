// The Cosmos DB emulator for Nudge's tests: @vercel/cosmosdb-server 1.0.1 with four fixes the .NET SDK on Linux needs.
// usage: node cosmos-emulator.cjs --port N --cert cert.pem --key key.pem --modules <folder holding node_modules>
// Listens on 127.0.0.1 only; prints "Ready on https://127.0.0.1:N/" when it accepts requests; exits when its standard
// input closes, so it never outlives the test process that started it.
// (CommonJS on purpose: tests/clients/package.json says "type": "module", and the server's internals are patched
// through require's module cache.)
"use strict";
const fs = require("fs");
const path = require("path");

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    console.error(`missing --${name}`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const port = parseInt(arg("port"), 10);
const cert = arg("cert");
const key = arg("key");
const base = path.dirname(require.resolve("@vercel/cosmosdb-server/package.json", { paths: [arg("modules")] }));

// 1) Reading a missing document throws a TypeError inside the server (a 500); Cosmos DB answers 404.
const readDocument = require(path.join(base, "lib/handler/read-document"));
const originalRead = readDocument.default;
readDocument.default = (account, req, res, params) => {
  try {
    return originalRead(account, req, res, params);
  } catch (e) {
    if (e instanceof TypeError) {
      res.statusCode = 404;
      return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
    }
    throw e;
  }
};

// 2) Change feed: stamp every document write with a global, increasing _lsn and serve incremental feed reads
//    (A-IM: Incremental Feed) from it; the stock server answers etag "1" / 304 for ever.
let lsn = 0;
const Documents = require(path.join(base, "lib/account/documents")).default;
const originalSet = Documents.prototype._set;
Documents.prototype._set = function (data) {
  return originalSet.call(this, { ...data, _lsn: ++lsn });
};
const readDocuments = require(path.join(base, "lib/handler/read-documents"));
const originalReadDocuments = readDocuments.default;
readDocuments.default = async (account, req, res, params) => {
  if (!req.headers["a-im"]) return originalReadDocuments(account, req, res, params);
  delete req.headers["a-im"]; // keeps the server's index.js from forcing etag "1" / 304
  const collection = account.database(params.dbId).collection(params.collId);
  if (!collection.read()) {
    res.statusCode = 404;
    return {};
  }
  const ifNoneMatch = String(req.headers["if-none-match"] || "").replace(/"/g, "");
  const since = ifNoneMatch === "*" ? lsn : parseInt(ifNoneMatch, 10) || 0;
  const max = parseInt(req.headers["x-ms-max-item-count"] || "-1", 10);
  let docs = [...collection.documents._data.values()].map((i) => i.read()).filter((d) => d._lsn > since).sort((a, b) => a._lsn - b._lsn);
  if (max > 0) docs = docs.slice(0, max);
  res.setHeader("etag", String(docs.length ? docs[docs.length - 1]._lsn : since));
  res.setHeader("x-ms-item-count", String(docs.length));
  if (!docs.length) {
    res.statusCode = 304;
    return {};
  }
  return { Documents: docs, _count: docs.length };
};

// 3) Resource ids are base64, and the server writes them with '/', which the SDK then puts in URL paths
//    (dbs/{rid}/colls/{rid}/pkranges): every 64th database got a rid the router split in two (404 "stale cache").
//    Cosmos DB writes '-' for '/' in resource ids; do the same, and read both.
const ResourceId = require(path.join(base, "lib/account/resource-id")).default;
ResourceId.toBase64String = (buffer) => buffer.toString("base64").replace(/\//g, "-");
ResourceId.fromBase64String = (s) => Buffer.from(s.replace(/-/g, "/"), "base64");

// The patches above must be in place before the server module builds its routes from them.
const { createHttpsServer } = require(base);
const server = createHttpsServer({ keepAlive: true, cert: fs.readFileSync(cert), key: fs.readFileSync(key) });

// 4) Without native ServiceInterop (Linux), the .NET SDK asks the gateway for a query plan
//    (x-ms-cosmos-is-query-plan-request). The server has none: answer with a pass-through plan over the one partition
//    key range, so the server runs the whole query itself (ORDER BY, TOP and aggregates included).
const inner = server.listeners("request");
server.removeAllListeners("request");
server.on("request", (req, res) => {
  if (String(req.headers["x-ms-cosmos-is-query-plan-request"]).toLowerCase() === "true") {
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({
        partitionedQueryExecutionInfoVersion: 2,
        queryInfo: {
          distinctType: "None", top: null, offset: null, limit: null, orderBy: [], orderByExpressions: [],
          groupByExpressions: [], groupByAliases: [], aggregates: [], groupByAliasToAggregateType: {},
          rewrittenQuery: "", hasSelectValue: false, dCountInfo: null, hasNonStreamingOrderBy: false,
        },
        queryRanges: [{ min: "", max: "FF", isMinInclusive: true, isMaxInclusive: false }],
      }));
    });
    return;
  }
  for (const listener of inner) listener.call(server, req, res);
});

process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();

server.listen(port, "127.0.0.1", () => console.log(`Ready on https://127.0.0.1:${port}/`));
