// Drives Nudge with the official Customer.io and Segment Node clients, exactly as an app backend would.
// Env: NUDGE_URL, NUDGE_SITE_ID, NUDGE_API_KEY, NUDGE_WRITE_KEY, RUN (a unique prefix for ids).
import { TrackClient } from "customerio-node";
import { Analytics } from "@segment/analytics-node";

const url = process.env.NUDGE_URL;
const run = process.env.RUN;
const cio = new TrackClient(process.env.NUDGE_SITE_ID, process.env.NUDGE_API_KEY, { url: `${url}/api/v1` });
const out = {};

await cio.identify(`${run}-cio`, { email: `${run}@Example.com`, first_name: "Ada", plan: "pro", cart_value: 120.5 });
await cio.trackAnonymous(`${run}-anon`, { name: "viewed_product", data: { sku: "SKU-1" } });
await cio.identify(`${run}-cio`, { anonymous_id: `${run}-anon` });
await cio.addDevice(`${run}-cio`, `${run}-token-ios`, "ios", { last_used: 1763900000, app_version: "3.0", push_enabled: "true" });
await cio.track(`${run}-cio`, { name: "add_to_cart", id: `${run}-evt-1`, data: { cart_id: "cart-9", value: 120.5 } });
await cio.track(`${run}-cio`, { name: "add_to_cart", id: `${run}-evt-1`, data: { cart_id: "cart-9", value: 120.5 } }); // replay
await cio.identify(`${run}-other`, { loyalty: "gold" });
await cio.mergeCustomers("id", `${run}-cio`, "id", `${run}-other`);
try {
  await cio.track(`${run}-cio`, { name: "bad", timestamp: 1763900000000 });
  out.badEvent = "accepted";
} catch (e) {
  out.badEvent = { status: e.statusCode, message: e.message };
}

const wrong = new TrackClient("nobody", "wrong", { url: `${url}/api/v1` });
try {
  await wrong.identify(`${run}-intruder`, { a: 1 });
  out.wrongKey = "accepted";
} catch (e) {
  out.wrongKey = { status: e.statusCode };
}

const analytics = new Analytics({ writeKey: process.env.NUDGE_WRITE_KEY, host: url, flushAt: 10, maxRetries: 0 });
const errors = [];
analytics.on("error", (e) => errors.push(String(e?.reason ?? e?.message ?? e)));
analytics.identify({ userId: `${run}-seg`, anonymousId: `${run}-seg-anon`, traits: { email: `${run}-seg@example.com`, plan: "basic" } });
analytics.track({
  userId: `${run}-seg`, event: "Device Created or Updated",
  context: { device: { token: `${run}-token-android`, type: "android", id: `${run}-phone-1` }, app: { version: "5.1" } },
});
analytics.track({ userId: `${run}-seg`, event: "add_to_cart", messageId: `${run}-seg-msg-1`, properties: { cart_id: "c-1", value: 42 } });
analytics.screen({ userId: `${run}-seg`, name: "Cart" });
await analytics.closeAndFlush({ timeout: 10000 });
out.segmentErrors = errors;
console.log(JSON.stringify(out));
