/**
 * The live page of `MetricsService` (`GET /`): one self-contained HTML
 * document, no build step and nothing fetched but `/metrics.json`, once a
 * second. It draws each pool as a box with its services, their status and
 * their subscriptions (delivered per second, buffered, handler p99, and
 * stuck as the pool judged it),
 * what each service publishes (per pattern reached, per second), the
 * WebSocket services' counters, and each pattern as a box with arrows from
 * the services that publish to it and to the services subscribed to it.
 *
 * @module
 */

/** How often the page asks for a snapshot, in ms. */
export const PAGE_REFRESH_MS = 1000;

/** The page's HTML. */
export const METRICS_PAGE: string = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>magic-foundation metrics</title>
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; background: #1d2330; color: #fff; }
  header h1 { font-size: 16px; margin: 0; }
  header .state { opacity: .8; }
  header .state.error { color: #ff9c9c; opacity: 1; }
  main { position: relative; display: flex; gap: 90px; padding: 16px; align-items: flex-start; }
  #queues, #pools { display: flex; flex-direction: column; gap: 10px; }
  #pools { flex-direction: row; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
  #queues { flex: 0 0 auto; max-width: 280px; }
  .queue { background: #fff; border: 1px solid #9aa4b5; border-radius: 14px; padding: 4px 10px; font-family: ui-monospace, monospace; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .pool { background: #fff; border: 2px solid #4a6fa5; border-radius: 8px; min-width: 260px; }
  .pool.stalled { border-color: #c62828; background: #fff3f3; }
  .pool h2 { margin: 0; padding: 6px 10px; font-size: 14px; background: #4a6fa5; color: #fff; display: flex; justify-content: space-between; gap: 10px; }
  .pool.stalled h2 { background: #c62828; }
  .pool h2 small { font-weight: normal; opacity: .85; }
  .service { border-top: 1px solid #e1e4ea; padding: 6px 10px; }
  .service .name { font-weight: 600; }
  .status { font-size: 11px; padding: 1px 6px; border-radius: 8px; margin-left: 6px; background: #ddd; }
  .status.running { background: #d6f5dd; color: #17622c; }
  .status.error { background: #fbd5d5; color: #8c1d1d; }
  .status.terminated { background: #e6e6e6; color: #555; }
  table { border-collapse: collapse; margin-top: 4px; width: 100%; }
  th, td { text-align: right; padding: 1px 6px; font-variant-numeric: tabular-nums; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; font-family: ui-monospace, monospace; }
  th { font-size: 11px; color: #5d6675; font-weight: normal; }
  tr.stuck td { background: #fff0c2; }
  .flag { color: #b25e00; font-weight: 600; }
  .ws { font-size: 12px; color: #34404f; margin-top: 4px; }
  svg { position: absolute; left: 0; top: 0; pointer-events: none; overflow: visible; }
  svg path { fill: none; stroke: #7d8ba1; stroke-width: 1.5; }
  svg path.pub { stroke: #3f8f5a; stroke-dasharray: 5 3; }
  .sends { font-size: 12px; color: #2f6b43; margin-top: 2px; font-family: ui-monospace, monospace; }
  .empty { color: #777; }
</style>
</head>
<body>
<header><h1>magic-foundation</h1><span id="state" class="state">connecting…</span></header>
<main id="main">
  <svg id="arrows"><defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#7d8ba1" stroke="none"/></marker><marker id="pubhead" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#3f8f5a" stroke="none"/></marker></defs><g id="lines"></g></svg>
  <section id="queues"></section>
  <section id="pools"></section>
</main>
<script>
"use strict";
const REFRESH_MS = __REFRESH__;
const $ = (id) => document.getElementById(id);
let previous;
let updates = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function subKey(s) {
  return JSON.stringify([s.pool, s.service, s.queue, s.group || ""]);
}

/** The bound at or below which 99% of the timed calls took, as text. */
function p99(h) {
  if (!h || h.count === 0) return "–";
  const want = 0.99 * h.count;
  for (let i = 0; i < h.bounds.length; i++) {
    if (h.cumulative[i] >= want) return "≤ " + seconds(h.bounds[i]);
  }
  return "> " + seconds(h.bounds[h.bounds.length - 1]);
}

function seconds(s) {
  if (s < 0.001) return Math.round(s * 1e6) + " µs";
  if (s < 1) return Math.round(s * 1e3) + " ms";
  return s + " s";
}

function rate(n) {
  return n >= 100 ? Math.round(n).toLocaleString("en") : n.toFixed(1);
}

function pubKey(p) {
  return JSON.stringify([p.pool, p.service, p.queue]);
}

function render(snapshot) {
  const before = new Map();
  if (previous) for (const s of previous.subscriptions) before.set(subKey(s), s);
  const sentBefore = new Map();
  if (previous) for (const p of previous.publishers || []) sentBefore.set(pubKey(p), p.sent);
  const publishers = snapshot.publishers || [];
  const elapsed = previous ? (snapshot.takenAt - previous.takenAt) / 1000 : 0;
  const pools = $("pools");
  const queues = $("queues");
  pools.replaceChildren();
  queues.replaceChildren();
  const patterns = [...new Set([...snapshot.subscriptions, ...publishers].map((s) => s.queue))].sort();
  for (const queue of patterns) {
    queues.append(el("div", { class: "queue", "data-queue": queue, title: queue }, queue));
  }
  if (patterns.length === 0) queues.append(el("div", { class: "empty" }, "no subscriptions"));
  for (const pool of snapshot.pools) {
    const box = el("div", { class: "pool" + (pool.stalled ? " stalled" : ""), "data-pool": pool.pool });
    const notes = [];
    if (pool.stalled) notes.push("STALLED");
    if (pool.restarts) notes.push("restarts " + pool.restarts);
    if (pool.stalls) notes.push("stalls " + pool.stalls);
    box.append(el("h2", {}, pool.pool, el("small", {}, notes.join(" · "))));
    const services = snapshot.services.filter((s) => s.pool === pool.pool);
    if (pool.stalled) box.append(el("div", { class: "service empty" }, "stalled: its counters are missing"));
    for (const service of services) {
      const row = el("div", { class: "service", "data-service": service.service },
        el("span", { class: "name" }, service.service),
        el("span", { class: "status " + service.status, "data-status": service.status }, service.status));
      if (service.restarts) row.append(" ", el("span", { class: "flag" }, "restarted " + service.restarts + "×"));
      const subs = snapshot.subscriptions.filter((s) => s.pool === pool.pool && s.service === service.service);
      if (subs.length > 0) {
        const table = el("table", {}, el("tr", {}, el("th", {}, "pattern"), el("th", {}, "msg/s"),
          el("th", {}, "delivered"), el("th", {}, "buffered"), el("th", {}, "p99"), el("th", {}, "errors")));
        for (const s of subs) {
          const key = subKey(s);
          const old = before.get(key);
          const perSecond = old && elapsed > 0 ? Math.max(0, s.delivered - old.delivered) / elapsed : 0;
          // The pool's own judgement (stuckThreshold), not the page's.
          const stuck = s.stuck === true;
          const name = s.group ? s.queue + " [" + s.group + "]" : s.queue;
          table.append(el("tr", {
            class: stuck ? "stuck" : "",
            "data-sub": s.queue,
            "data-delivered": s.delivered,
            "data-rate": perSecond.toFixed(1),
            "data-stuck": stuck,
          }, el("td", {}, name, stuck ? el("span", { class: "flag" }, " stuck") : ""),
            el("td", { class: "rate" }, rate(perSecond)),
            el("td", { class: "delivered" }, s.delivered.toLocaleString("en")),
            el("td", { class: "buffered" }, s.buffered.toLocaleString("en")),
            el("td", {}, p99(s.handlerSeconds)),
            el("td", {}, s.handlerErrors)));
        }
        row.append(table);
      }
      for (const p of publishers.filter((p) => p.pool === pool.pool && p.service === service.service)) {
        const old = sentBefore.get(pubKey(p));
        const perSecond = old !== undefined && elapsed > 0 ? Math.max(0, p.sent - old) / elapsed : 0;
        row.append(el("div", { class: "sends", "data-pub": p.queue, "data-sent": p.sent, "data-rate": perSecond.toFixed(1) },
          "→ " + p.queue + " · " + rate(perSecond) + " msg/s · " + p.sent.toLocaleString("en") + " sent"));
      }
      const ws = (snapshot.websockets || []).find((w) => w.pool === pool.pool && w.service === service.service);
      if (ws) {
        const closes = Object.entries(ws.closes).map(([code, n]) => code + "×" + n).join(" ") || "none";
        row.append(el("div", { class: "ws", "data-ws": ws.service, "data-connections": ws.connections },
          "WebSocket: " + ws.connections + " open · frames in " + ws.framesIn + " / out " + ws.framesOut +
          " · bytes in " + ws.bytesIn + " / out " + ws.bytesOut + " · closes " + closes));
      }
      box.append(row);
    }
    pools.append(box);
  }
  drawArrows(snapshot);
  previous = snapshot;
}

/**
 * An arrow from each pattern to each service subscribed to it, and a dashed
 * one from each service that publishes to the pattern.
 */
function drawArrows(snapshot) {
  const main = $("main").getBoundingClientRect();
  const lines = $("lines");
  lines.replaceChildren();
  const svg = $("arrows");
  svg.setAttribute("width", String($("main").scrollWidth));
  svg.setAttribute("height", String($("main").scrollHeight));
  const queueBox = (queue) => [...document.querySelectorAll(".queue")].find((q) => q.dataset.queue === queue);
  const serviceBox = (pool, service) => {
    const box = [...document.querySelectorAll(".pool")].find((p) => p.dataset.pool === pool);
    return box && [...box.querySelectorAll(".service")].find((x) => x.dataset.service === service);
  };
  const curve = (x1, y1, x2, y2, kind, from, queue) => {
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    const bend = Math.max(40, Math.abs(x2 - x1) / 2);
    // A subscriber's arrow leaves the pattern to the right; a publisher's
    // leaves the service to the left and comes back into the pattern.
    const c1 = kind === "sub" ? x1 + bend : x1 - bend;
    const c2 = kind === "sub" ? x2 - bend : x2 + bend;
    path.setAttribute("d", "M" + x1 + "," + y1 + " C" + c1 + "," + y1 + " " + c2 + "," + y2 + " " + x2 + "," + y2);
    path.setAttribute("marker-end", kind === "sub" ? "url(#head)" : "url(#pubhead)");
    path.setAttribute("class", kind);
    path.dataset.service = from;
    path.dataset.queue = queue;
    lines.append(path);
  };
  const drawn = new Set();
  for (const s of snapshot.subscriptions) {
    const id = JSON.stringify([s.queue, s.pool, s.service]);
    if (drawn.has(id)) continue;
    drawn.add(id);
    const from = queueBox(s.queue);
    const to = serviceBox(s.pool, s.service);
    if (!from || !to) continue;
    const a = from.getBoundingClientRect();
    const b = to.getBoundingClientRect();
    curve(a.right - main.left, a.top + a.height / 2 - main.top, b.left - main.left, b.top + 12 - main.top,
      "sub", s.pool + "/" + s.service, s.queue);
  }
  for (const p of snapshot.publishers || []) {
    const from = serviceBox(p.pool, p.service);
    const to = queueBox(p.queue);
    if (!from || !to) continue;
    const a = from.getBoundingClientRect();
    const b = to.getBoundingClientRect();
    curve(a.left - main.left, a.top + 20 - main.top, b.right - main.left, b.top + b.height / 2 - main.top,
      "pub", p.pool + "/" + p.service, p.queue);
  }
}

async function tick() {
  try {
    const response = await fetch("metrics.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    updates++;
    $("state").className = "state";
    $("state").textContent = "updated " + new Date().toLocaleTimeString() + " · every " + REFRESH_MS / 1000 + " s";
    $("state").dataset.updates = String(updates);
  } catch (error) {
    $("state").className = "state error";
    $("state").textContent = "cannot read metrics.json: " + error.message;
  } finally {
    setTimeout(tick, REFRESH_MS);
  }
}
tick();
</script>
</body>
</html>
`.replace("__REFRESH__", String(PAGE_REFRESH_MS));
