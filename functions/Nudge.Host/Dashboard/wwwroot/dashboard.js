// Nudge dashboard: vanilla JS, no dependencies. Every value from the API is written with textContent (never innerHTML),
// so a person's attributes or a message's content cannot inject markup into this page. Sandbox emails render in a
// sandboxed iframe without scripts.
"use strict";

const KEY = "nudge-admin-key";
const api = document.documentElement.dataset.api || "/admin/v1";
const $ = (id) => document.getElementById(id);

/** Creates an element: el("td", {class: "num"}, "text", child, ...). */
function el(tag, attrs, ...children) {
  const svg = ["svg", "path", "line", "text", "rect", "circle", "g", "polyline", "title"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function table(headers, rows, numeric = [], cls = null) {
  return el("table", { class: cls },
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { class: numeric.includes(i) ? "num" : null }, h)))),
    el("tbody", {}, rows.length === 0
      ? el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "none"))
      : rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: numeric.includes(i) ? "num" : null }, c))))));
}

const time = (t) => (t ? new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
const pct = (r) => (r === null || r === undefined ? "–" : (r * 100).toFixed(1) + " %");

// ---- badges: one meaning, one colour --------------------------------------------------------------------------------

/**
 * Every badge's colour, in one place: good is green, bad is red, anything else neutral grey. A value is judged for what
 * it means to the person being reached, never by how its word looks ("undeliverable" is bad; "unsubscribed: false" good).
 */
const tones = {
  // Message statuses and metrics: on the way is neutral, reached is good, not reached is bad.
  status: {
    drafted: "neutral", attempted: "neutral", sent: "neutral", delivered: "good", opened: "good", clicked: "good", converted: "good",
    bounced: "bad", dropped: "bad", failed: "bad", undeliverable: "bad", spammed: "bad", unsubscribed: "bad",
  },
  // Journey instances: a conversion is the goal; waiting, running, done or left are facts, neither good nor bad.
  instance: { pending: "neutral", active: "neutral", completed: "neutral", exited: "neutral", converted: "good" },
  device: { active: "good", "push disabled": "bad" },
  // The delivery-rate alert: quiet is good; firing, being posted, or about to be are bad.
  alert: { ok: "good", fires: "bad", posting: "bad", firing: "bad" },
  // Consent, each field by whether it lets Nudge reach the person.
  sms_consent: { true: "good", false: "bad" },
  push_opt_in: { true: "good", false: "bad" },
  email_unsubscribed: { true: "bad", false: "good" },
  person: { suppressed: "bad" },
};

/** A badge for <paramref name="value"/> of <paramref name="kind"/> (a key of tones), coloured by what it means. */
function badge(kind, value, text = String(value)) {
  const tone = (tones[kind] || {})[String(value)] || "neutral";
  return el("span", { class: "pill " + tone, "data-tone": tone }, text);
}

/** A delivery rate, or "not reported" where the channel's provider does not report delivery (never a false 0 %). */
function rate(f) {
  return f.delivery_reported === false
    ? el("span", { class: "muted not-reported", title: "This channel's provider does not report delivery; delivered counts opens and clicks only." }, "not reported")
    : pct(f.delivery_rate);
}

class Unauthorized extends Error {}

async function get(path) {
  const r = await fetch(api + path, { headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) }, cache: "no-store" });
  if (r.status === 401) throw new Unauthorized("the admin key was refused");
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}

function show(...nodes) {
  const v = $("view");
  // Views pass lists and optional parts (null) freely; the DOM wants plain nodes.
  v.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined));
  return v;
}

// ---- routing -------------------------------------------------------------------------------------------------------

const views = { person: personView, journeys: journeysView, health: healthView, messages: messagesView, outbox: outboxView };

async function route() {
  if (!sessionStorage.getItem(KEY)) {
    $("login").hidden = false;
    $("nav").hidden = $("signout").hidden = true;
    show();
    $("key").focus();
    return;
  }
  $("login").hidden = true;
  $("nav").hidden = $("signout").hidden = false;
  const [name, query] = (location.hash.replace(/^#\/?/, "") || "person").split("?");
  const view = views[name] || personView;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === name);
  const params = new URLSearchParams(query || "");
  show(el("p", { class: "muted" }, "Loading…"));
  try {
    await view(params);
  } catch (e) {
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(KEY);
      $("login-error").textContent = "The admin key was refused.";
      return route();
    }
    show(el("p", { class: "error", role: "alert" }, "Error: " + e.message));
  }
}

// ---- person ----------------------------------------------------------------------------------------------------------

async function personView(params) {
  const q = params.get("q") || "";
  const input = el("input", { id: "person-q", type: "search", placeholder: "email, customer id or cio_ id", size: 40, value: q });
  const form = el("form", { class: "search", id: "person-search" }, input, el("button", { type: "submit" }, "Find"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/person?q=" + encodeURIComponent(input.value.trim());
  });
  if (!q) {
    show(el("h1", {}, "People"), form);
    return;
  }
  let p;
  try {
    p = await get("/profiles/" + encodeURIComponent(q));
  } catch (e) {
    if (e instanceof Unauthorized) throw e;
    show(el("h1", {}, "People"), form, el("p", { class: "error", id: "person-error" }, e.message));
    return;
  }
  const id = encodeURIComponent(p.cio_id);
  const [journeys, messages] = await Promise.all([get(`/profiles/${id}/journeys`), get(`/profiles/${id}/messages?limit=200`)]);
  const c = p.consent;
  show(
    el("h1", {}, "People"), form,
    el("div", { class: "card", id: "person" },
      el("h2", { id: "person-name" }, p.email || p.id || p.cio_id),
      el("p", { class: "muted" }, `id ${p.id ?? "–"} · ${p.cio_id} · created ${time(p.created_at)} · updated ${time(p.updated_at)} `,
        p.suppressed ? badge("person", "suppressed") : null)),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("h2", {}, "Attributes"),
        table(["Name", "Value"], Object.entries(p.attributes).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]))),
      el("div", { class: "card", id: "consent" }, el("h2", {}, "Consent"),
        table(["Field", "Value"], [
          ["SMS", c.sms_consent === null ? "–" : badge("sms_consent", c.sms_consent)], ["SMS phone", c.sms_phone ?? "–"],
          ["SMS consent at", time(c.sms_consent_at)], ["Email unsubscribed", badge("email_unsubscribed", c.email_unsubscribed)],
          ["Push opt-in", c.push_opt_in === null ? "–" : badge("push_opt_in", c.push_opt_in)]]),
        el("h2", {}, "Consent history"),
        table(["When", "Field", "Value", "How"], c.history.map((h) => [time(h.at), h.field, String(h.value), [h.source, h.ip].filter(Boolean).join(" · ")])))),
    el("h2", {}, "Devices"),
    table(["Platform", "Token", "Last used", "Status"], p.devices.map((d) =>
      [d.platform, d.token_tail, time(d.last_used), badge("device", d.push_enabled === false ? "push disabled" : "active")])),
    el("h2", {}, "Journeys"),
    table(["Journey", "Status", "Current step", "Started", "Ended", "End reason", "Steps"], journeys.map((i) =>
      [i.journey_id + (i.holdout ? " (holdout)" : ""), badge("instance", i.status), i.current_step ?? "–", time(i.started_at), time(i.ended_at), i.end_reason ?? "",
        steps(i)]), [], "journey-instances"),
    el("h2", {}, "Messages"),
    table(["Created", "Journey / step", "Channel", "Status", "Reason", "History"], messages.map((m) =>
      [time(m.created_at), `${m.journey_id} / ${m.step_id}`, m.channel + (m.platforms?.length ? " " + m.platforms.join(",") : ""), badge("status", m.status), m.reason ?? "",
        el("pre", {}, m.history.map((h) => `${time(h.at)} ${h.status}${h.reason ? " (" + h.reason + ")" : ""}`).join("\n"))])),
    el("h2", {}, "Recent events"),
    table(["When", "Name", "Type", "Source", "Data"], p.recent_events.map((e) =>
      [time(e.timestamp), e.name ?? "", e.type, e.source ?? "", el("code", {}, JSON.stringify(e.data ?? {}))])));
}

/**
 * What each step of a journey instance came to, in the order the steps ran: a send step's message with its status now
 * (the API reads it from the message), a wait's outcome, a branch taken.
 */
function steps(i) {
  const entries = Object.entries(i.steps || {});
  if (entries.length === 0) return "";
  return el("ul", { class: "steps" }, entries.map(([id, r]) => el("li", { "data-step": id }, `${id} `,
    r.message_id ? [r.channel !== id ? `${r.channel} ` : null, badge("status", r.status), r.reason ? el("span", { class: "muted" }, ` ${r.reason}`) : null]
      : el("span", { class: "muted" }, r.outcome ?? r.branch ?? r.deferred ?? (r.updated !== undefined ? `updated ${r.updated}` : r.status ?? "")))));
}

// ---- journeys --------------------------------------------------------------------------------------------------------

/** A horizontal bar for a share (0..1) of the busiest row; the width is set through CSSOM, which the CSP allows. */
function bar(share) {
  const b = el("div", { class: "bar" });
  b.style.width = Math.round(share * 120) + "px";
  return b;
}

async function journeysView() {
  const [journeys, report] = await Promise.all([get("/journeys"), get("/reports/delivery")]);
  const cards = journeys.map((j) => {
    const rows = report.rows.filter((r) => r.journey_id === j.id);
    const lift = report.lift.find((l) => l.journey_id === j.id);
    const max = Math.max(1, ...rows.map((r) => r.sent));
    // The funnel in the journey's own step order: instances (entered, still there, left early) beside the step's messages.
    const flows = report.steps.filter((f) => f.journey_id === j.id);
    const sum = (step, field) => rows.filter((r) => r.step_id === step).reduce((n, r) => n + r[field], 0);
    const entered = Math.max(1, ...flows.map((f) => f.entered));
    const funnel = j.steps.map((s) => {
      const f = flows.find((x) => x.step_id === s.id) ?? { entered: 0, current: 0, exited: 0 };
      const sends = rows.some((r) => r.step_id === s.id);
      // A step whose messages all went through providers that do not report delivery has no delivered figure, not 0.
      const reported = rows.some((r) => r.step_id === s.id && r.delivery_reported !== false);
      return [el("span", {}, `${s.id} `, el("span", { class: "muted" }, s.kind)), f.entered, f.current, f.exited,
        sends ? sum(s.id, "sent") : "–", !sends ? "–" : reported ? sum(s.id, "delivered") : rate({ delivery_reported: false }),
        sends ? sum(s.id, "opened") : "–", sends ? sum(s.id, "converted") : "–", bar(f.entered / entered)];
    });
    return el("div", { class: "card journey", "data-journey": j.id },
      el("h2", {}, `${j.name || j.id} `, el("span", { class: "muted" }, `${j.id} v${j.version} · ${j.trigger} · holdout ${j.holdout_percent} %`)),
      el("h3", {}, "Funnel by step"),
      table(["Step", "Entered", "At step now", "Exited here", "Sent", "Delivered", "Opened", "Converted", ""], funnel, [1, 2, 3, 4, 5, 6, 7], "funnel"),
      el("h3", {}, "Messages by step, channel and platform"),
      table(["Step", "Channel", "Platform", "Sent", "Delivered", "Opened", "Converted", "Delivery rate", ""],
        rows.map((r) => [r.step_id, r.channel, r.platform ?? "", r.sent, r.delivered, r.opened, r.converted, rate(r), bar(r.sent / max)]),
        [3, 4, 5, 6, 7], "by-step"),
      lift
        ? el("p", {}, `Holdout lift: messaged ${pct(lift.messaged_rate)} (${lift.messaged_converted}/${lift.messaged_entries}) vs holdout ${pct(lift.holdout_rate)} ` +
          `(${lift.holdout_converted}/${lift.holdout_entries}): ${lift.lift_points === null || lift.lift_points === undefined ? "–" : (lift.lift_points * 100).toFixed(1) + " points"}`)
        : el("p", { class: "muted" }, "No entries in the range."));
  });
  show(el("h1", {}, "Journeys"), el("p", { class: "muted" }, `Journey entries (holdout excluded) and their messages from ${time(report.from)} to ${time(report.to)}.`), cards,
    el("h2", {}, "Failure reasons"),
    table(["Metric", "Reason", "Channel", "Platform", "Count"], report.failures.map((f) => [f.metric, f.reason, f.channel, f.platform ?? "", f.count]), [4]));
}

// ---- delivery health -------------------------------------------------------------------------------------------------

const colors = ["#2f6fde", "#e8590c", "#7048e8", "#0b7285", "#ae3ec9", "#5c940d", "#c2255c"];

/**
 * Daily rates (0..1) per series as grouped bars, hand-drawn in SVG: one band per day, one bar per series, so a single day
 * of data is as visible as thirty, and series with the same rate stand side by side instead of hiding each other. Labels
 * are centred in their band and kept inside the drawing; a bar wide enough carries its value.
 */
function rateChart(days, series) {
  const w = 720, h = 260, l = 44, r = 12, t = 24, b = 28;
  const band = (w - l - r) / days.length;
  const gap = Math.min(12, band * 0.2);
  const barWidth = (band - gap) / Math.max(1, series.length);
  const y = (v) => t + (1 - v) * (h - t - b);
  const svg = el("svg", { class: "chart", id: "delivery-chart", width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "delivered rate per day" });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(el("line", { x1: l, x2: w - r, y1: y(v), y2: y(v), stroke: "#e4e7ec" }), el("text", { x: 4, y: y(v) + 4 }, Math.round(v * 100) + " %"));
  }
  const every = Math.ceil(days.length / 10);
  days.forEach((d, i) => {
    if (i % every === 0) svg.append(el("text", { class: "day", x: l + band * (i + 0.5), y: h - 8, "text-anchor": "middle" }, d.slice(5, 10)));
  });
  series.forEach((s, n) => {
    s.values.forEach((v, i) => {
      if (v === null) return;
      const x = l + band * i + gap / 2 + n * barWidth;
      // A rate of 0 is a fact worth seeing: its bar keeps a sliver of height.
      const top = Math.min(y(v), y(0) - 2);
      svg.append(el("rect", { class: "rate-bar", "data-series": s.name, x, y: top, width: Math.max(1, barWidth - 1), height: y(0) - top, fill: colors[n % colors.length] },
        el("title", {}, `${s.name} ${days[i].slice(0, 10)}: ${pct(v)}`)));
      if (barWidth >= 30) {
        svg.append(el("text", { class: "value", x: x + barWidth / 2, y: top - 4, "text-anchor": "middle" }, pct(v).replace(".0 %", " %")));
      }
    });
  });
  const legend = el("p", { class: "legend" }, series.map((s) => el("span", {}, el("i", { class: "swatch" }), s.name)));
  legend.querySelectorAll("i").forEach((i, n) => (i.style.background = colors[n % colors.length]));
  return [svg, legend];
}

async function healthView(params) {
  const days = Math.min(30, Math.max(1, Number(params.get("days")) || 7));
  // The server's clock decides "now" (it may differ from the browser's): the undated report tells us its end.
  const [latest, coverage, alerts] = await Promise.all([get("/reports/delivery"), get("/reports/token-coverage"), get("/reports/alerts")]);
  const end = new Date(latest.to);
  end.setUTCHours(24, 0, 0, 0);
  const starts = [...Array(days).keys()].reverse().map((i) => new Date(end.getTime() - (i + 1) * 86400000));
  // One pass over the range gives every day's figures per channel and platform (by=day).
  const daily = await get(`/reports/delivery?from=${starts[0].toISOString()}&to=${end.toISOString()}&by=day`);
  const label = (f) => f.channel + (f.platform ? " " + f.platform : "");
  // A channel whose provider does not report delivery has no rate to draw: it is named as such, not drawn at 0 %.
  const unreported = [...new Set(daily.days.filter((d) => d.figures.delivery_reported === false).map((d) => label(d.figures)))].sort();
  const names = [...new Set(daily.days.map((d) => label(d.figures)))].filter((n) => !unreported.includes(n)).sort();
  // A series with no rate on any day (a push that reached no device, say) has nothing to draw.
  const series = names.map((name) => ({
    name,
    values: starts.map((s) => daily.days.find((d) => new Date(d.day).getTime() === s.getTime() && label(d.figures) === name)?.figures.delivery_rate ?? null),
  })).filter((s) => s.values.some((v) => v !== null));
  const select = el("select", { id: "health-days" }, [7, 14, 30].map((d) => el("option", { value: d }, `${d} days`)));
  select.value = String(days);
  select.addEventListener("change", () => (location.hash = "#/health?days=" + select.value));
  // The alert rule's own view: a channel is listed while its alert fires or was posted (state firing or posting).
  const alerting = alerts.channels.filter((c) => c.fires || c.state !== "ok");
  const rule = `Rule: delivered rate over the last ${alerts.window_hours} h more than ${alerts.drop_percentage_points} points below the ` +
    `${alerts.baseline_hours} h before it, with at least ${alerts.min_volume} messages in each` + (alerts.enabled ? "." : " (no alert webhook is configured).");
  show(
    el("h1", {}, "Delivery health"), select,
    el("h2", {}, "Delivered rate per day, by channel and platform"),
    series.length ? rateChart(starts.map((s) => s.toISOString()), series) : el("p", { class: "muted", id: "delivery-chart-empty" }, "No deliveries in the range."),
    unreported.length
      ? el("p", { class: "muted", id: "delivery-not-reported" }, `Delivery not reported by the provider of: ${unreported.join(", ")} (no rate is drawn for it).`)
      : null,
    el("h2", {}, `Last 7 days (${time(latest.from)} – ${time(latest.to)})`),
    table(["Channel", "Platform", "Sent", "Delivered", "Opened", "Delivery rate"],
      latest.by_channel.map((c) => [c.channel, c.platform ?? "", c.sent, c.delivered, c.opened, rate(c)]), [2, 3, 4, 5], "by-channel"),
    el("h2", {}, "Alerts"),
    alerting.length
      ? el("ul", { id: "alerts" }, alerting.map((c) => el("li", {}, badge("alert", c.state === "ok" ? "fires" : c.state, c.state === "ok" ? "fires" : c.state),
          ` ${c.channel} ${c.platform ?? ""}: delivered ${pct(c.window_rate)} of ${c.window_sent} against ${pct(c.baseline_rate)} before (${c.drop_points} points down)`)))
      : el("p", { class: "muted", id: "alerts" }, "No delivery-rate alert."),
    el("p", { class: "muted", id: "alert-rule" }, rule),
    el("h2", {}, "Push token coverage"),
    el("p", { id: "coverage" }, `${pct(coverage.coverage)} of ${coverage.active} people active since ${time(coverage.since)} have a push token ` +
      `(${Object.entries(coverage.by_platform || {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "none"}).`));
}

// ---- message log -----------------------------------------------------------------------------------------------------

const statuses = ["drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted", "bounced", "dropped", "failed", "undeliverable", "spammed"];
const logFilters = ["journey", "step", "channel", "platform", "status", "reason", "from", "to"];

async function messagesView(params) {
  // Two views of the same log: one row per message with its current status (default), or one row per status reached.
  const events = params.get("view") === "events";
  const query = new URLSearchParams();
  for (const k of [...logFilters, "after"]) if (params.get(k)) query.set(k, params.get(k));
  query.set("limit", params.get("limit") || "50");
  const [journeys, log] = await Promise.all([get("/journeys"), get((events ? "/reports/message-log?" : "/messages?") + query)]);
  const field = (name, options) => {
    const input = options
      ? el("select", { name, id: "log-" + name }, ["", ...options].map((o) => el("option", { value: o }, o || `any ${name}`)))
      : el("input", { name, id: "log-" + name, placeholder: name === "from" || name === "to" ? `${name} (ISO time)` : name, size: name === "from" || name === "to" ? 22 : 12 });
    input.value = params.get(name) || "";
    return input;
  };
  const form = el("form", { class: "search", id: "log-filters" },
    field("journey", journeys.map((j) => j.id)), field("step"), field("channel", ["push", "sms", "email"]), field("platform", ["ios", "android"]),
    field("status", events ? statuses : statuses.filter((s) => s !== "spammed")), field("reason"), field("from"), field("to"),
    el("button", { type: "submit" }, "Filter"));
  // Filters, the page size and the view carry over; the cursor only where a caller passes it.
  const go = (extra, view = events ? "events" : null) => {
    const q = new URLSearchParams();
    if (view) q.set("view", view);
    for (const k of logFilters) if (form.elements[k].value) q.set(k, form.elements[k].value.trim());
    if (params.get("limit")) q.set("limit", params.get("limit"));
    for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
    location.hash = "#/messages" + (q.size ? "?" + q : "");
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go();
  });
  const toggle = el("p", { class: "toggle", id: "log-view" },
    el("button", { type: "button", id: "log-view-messages", class: events ? null : "active" }, "Messages"),
    el("button", { type: "button", id: "log-view-events", class: events ? "active" : null }, "Status events"));
  toggle.querySelector("#log-view-messages").addEventListener("click", () => go({}, null));
  toggle.querySelector("#log-view-events").addEventListener("click", () => go({}, "events"));
  const next = el("button", { type: "button", id: "log-next", disabled: log.next ? null : "" }, "Next page");
  next.addEventListener("click", () => go({ after: log.next }));
  const first = el("button", { type: "button", id: "log-first", disabled: params.get("after") ? null : "" }, "First page");
  first.addEventListener("click", () => go());
  const range = `from ${time(log.from)} to ${time(log.to)}`;
  if (events) {
    show(el("h1", {}, "Message log"), toggle,
      el("p", { class: "muted" }, `Every status a message reached ${range}, oldest first (default: the last 7 days).`),
      form,
      el("div", { id: "log" }, table(["When", "Status", "Channel", "Platform", "Journey / step", "Reason", "Person", "Message"], log.events.map((e) =>
        [time(e.at), badge("status", e.status), e.channel, e.platform ?? "", `${e.journey_id} / ${e.step_id}`, e.reason ?? "",
          el("a", { href: "#/person?q=" + encodeURIComponent(e.cio_id) }, e.cio_id), el("code", {}, e.message_id)]))),
      el("p", {}, first, " ", next));
    return;
  }
  const detail = el("div", { id: "message-history", hidden: "" });
  const headers = ["Created", "Status", "Updated", "Channel", "Platform", "Journey / step", "Reason", "Person", "Recipient"];
  const rows = log.messages.map((m) => {
    const person = el("a", { href: "#/person?q=" + encodeURIComponent(m.cio_id) }, m.cio_id);
    const tr = el("tr", { class: "clickable", "data-id": m.id, tabindex: 0 },
      [time(m.created_at), badge("status", m.status), time(m.updated_at), m.channel, m.platforms.join(", "), `${m.journey_id} / ${m.step_id}`, m.reason ?? "",
        person, m.recipients.join(", ")].map((c) => el("td", {}, c)));
    const open = async (e) => {
      if (e.target === person) return;
      for (const r of tr.parentNode.children) r.classList.toggle("selected", r === tr);
      await showHistory(detail, m.id);
    };
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", (e) => e.key === "Enter" && open(e));
    return tr;
  });
  show(el("h1", {}, "Message log"), toggle,
    el("p", { class: "muted" }, `One row per message created ${range}, newest first, with its current status (default: the last 7 days). ` +
      "Click a message for its status history."),
    form,
    el("div", { id: "log" }, el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "none"))))),
    el("p", {}, first, " ", next),
    detail);
}

/** Fills <paramref name="box"/> with one message's status history (GET /messages/{id}). */
async function showHistory(box, id) {
  box.hidden = false;
  box.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const m = await get("/messages/" + encodeURIComponent(id));
    box.replaceChildren(el("div", { class: "card" },
      el("h2", {}, "Message ", el("code", {}, m.id)),
      el("p", { class: "muted" }, `${m.journey_id} / ${m.step_id} · ${m.channel} · ${m.cio_id} · attempts ${m.attempts}` + (m.fallback_of ? ` · fallback of ${m.fallback_of}` : "")),
      table(["When", "Status", "Reason"], m.history.map((h) => [time(h.at), badge("status", h.status), h.reason ?? ""]))));
  } catch (e) {
    if (e instanceof Unauthorized) throw e;
    box.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

// ---- sandbox outbox --------------------------------------------------------------------------------------------------

/** GSM-7 basic set and extension; anything else makes the SMS UCS-2 (70 / 67 characters per segment). */
const gsm = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const gsmExt = "^{}\\[~]|€\f";

function smsSegments(text) {
  const chars = [...text];
  if (chars.every((ch) => gsm.includes(ch) || gsmExt.includes(ch))) {
    const units = chars.reduce((n, ch) => n + (gsmExt.includes(ch) ? 2 : 1), 0);
    return { encoding: "GSM-7", units, segments: units <= 160 ? 1 : Math.ceil(units / 153) };
  }
  const units = [...text].reduce((n, ch) => n + (ch.codePointAt(0) > 0xffff ? 2 : 1), 0);
  return { encoding: "UCS-2", units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
}

/** Shows text as a lock screen would, cut at <paramref name="max"/> characters with a visible mark where it was cut. */
function clipped(text, max) {
  const chars = [...(text || "")];
  return chars.length <= max ? [chars.join("")] : [chars.slice(0, max).join(""), el("span", { class: "cut", title: `cut at ${max} of ${chars.length} characters` }, "…✂")];
}

function rendered(o) {
  const c = o.content || {};
  if (o.channel === "push") {
    return el("div", { class: "phone" }, el("div", { class: "push" },
      el("div", { class: "title" }, clipped(c.title, 50)), el("div", {}, clipped(c.body, 178)),
      c.deep_link ? el("div", { class: "muted" }, c.deep_link) : null));
  }
  if (o.channel === "sms") {
    const s = smsSegments(c.body || "");
    return el("div", {}, el("div", { class: "sms" }, c.body || ""),
      el("p", { class: "muted sms-segments" }, `${s.segments} segment${s.segments === 1 ? "" : "s"} · ${s.units} ${s.encoding} characters`));
  }
  if (o.channel === "email") {
    // No allow-scripts and no allow-same-origin: the email's HTML cannot run code or read this page.
    const frame = el("iframe", { class: "email", sandbox: "", title: "email " + o.message_id, referrerpolicy: "no-referrer" });
    frame.srcdoc = c.html || "";
    return el("div", {}, el("p", {}, el("strong", {}, c.subject || "(no subject)"), c.from ? ` · from ${c.from}` : null,
      c.preheader ? el("span", { class: "muted" }, " · " + c.preheader) : null), frame);
  }
  return el("pre", {}, JSON.stringify(c, null, 2));
}

async function outboxView(params) {
  const channel = params.get("channel") || "";
  const all = await get("/outbox?limit=200");
  const items = channel ? all.filter((o) => o.channel === channel) : all;
  const select = el("select", { id: "outbox-channel" }, ["", "push", "sms", "email"].map((c) => el("option", { value: c }, c || "all channels")));
  select.value = channel;
  select.addEventListener("change", () => (location.hash = "#/outbox" + (select.value ? "?channel=" + select.value : "")));
  show(el("h1", {}, "Sandbox outbox"), el("p", { class: "muted" }, "What the sandbox channel recorded, newest first, as the person would see it."), select,
    items.length === 0 ? el("p", { class: "muted" }, "The outbox is empty.") : null,
    items.map((o) => el("div", { class: "card outbox-item", "data-channel": o.channel },
      el("p", { class: "muted" }, `${time(o.recorded_at)} · ${o.channel} · to ${o.recipients.map((r) => (o.channel === "push" ? "…" + r.slice(-8) : r)).join(", ")} · `,
        el("a", { href: "#/person?q=" + encodeURIComponent(o.cio_id) }, o.cio_id)),
      rendered(o))));
}

// ---- start -----------------------------------------------------------------------------------------------------------

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $("key").value);
  $("key").value = "";
  $("login-error").textContent = "";
  try {
    // Checked at once, so a wrong key is refused here rather than on the first view that happens to need data.
    await get("/journeys");
  } catch (err) {
    sessionStorage.removeItem(KEY);
    $("login-error").textContent = err instanceof Unauthorized ? "The admin key was refused." : "Error: " + err.message;
    return;
  }
  route();
});
$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  route();
});
window.addEventListener("hashchange", route);
route();
