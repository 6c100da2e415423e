/**
 * The live page of `MetricsService` (`GET /`): one self-contained HTML
 * document, no build step and nothing fetched but `/metrics.json`, once a
 * second. It draws the patterns in a column on the left and the pools in a
 * column on the right, each pool as a box with its services, their status
 * and their subscriptions (delivered per second, buffered, handler p99,
 * errors, and stuck as the pool judged it), what each service publishes
 * (per pattern reached, per second) and the WebSocket services' counters;
 * and arrows, only in the gap between the two columns (so no line crosses
 * a box), from each pattern to the services subscribed to it and from the
 * services that publish to it. A `WebSocketService`'s own queues are
 * grouped behind a toggle; errors, stuck subscribers, backlogs and stalled
 * pools are coloured and spelled out; every name carries its full text in
 * `title`.
 *
 * @module
 */

import { INTERNAL_QUEUE_PREFIXES } from "./queue_label.ts";

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
  header { display: flex; flex-wrap: wrap; gap: 16px; align-items: baseline; padding: 10px 16px; background: #1d2330; color: #fff; }
  header h1 { font-size: 16px; margin: 0; }
  header .state { opacity: .8; }
  header .state.error { color: #ff9c9c; opacity: 1; }
  header label { margin-left: auto; cursor: pointer; }
  header .legend span { margin-left: 10px; padding: 0 6px; border-radius: 6px; }
  /* Two columns, and only arrows in the gap between them. */
  main { position: relative; display: grid; grid-template-columns: clamp(160px, 24vw, 320px) minmax(0, 1fr);
    column-gap: clamp(80px, 9vw, 140px); padding: 16px; align-items: start; }
  #queues, #pools { display: flex; flex-direction: column; gap: 10px; min-width: 0; }
  #pools { gap: 14px; }
  .queue { box-sizing: border-box; width: 100%; background: #fff; border: 1px solid #9aa4b5; border-radius: 14px;
    padding: 4px 10px; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
  .queue.group { border-style: dashed; color: #5d6675; font-family: inherit; }
  .queue.bad { border-color: #c62828; border-width: 2px; }
  .pool { background: #fff; border: 2px solid #4a6fa5; border-radius: 8px; min-width: 0; }
  .pool.stalled { border-color: #c62828; background: #fff3f3; }
  .pool h2 { margin: 0; padding: 6px 10px; font-size: 14px; background: #4a6fa5; color: #fff; display: flex;
    flex-wrap: wrap; justify-content: space-between; gap: 4px 10px; overflow-wrap: anywhere; }
  .pool.stalled h2 { background: #c62828; }
  .pool h2 small { font-weight: normal; }
  .pool h2 .bad { background: #fbd5d5; color: #8c1d1d; font-weight: 600; padding: 0 6px; border-radius: 6px; }
  .service { border-top: 1px solid #e1e4ea; padding: 6px 10px; }
  .service .name { font-weight: 600; overflow-wrap: anywhere; }
  .status { font-size: 11px; padding: 1px 6px; border-radius: 8px; margin-left: 6px; background: #ddd; }
  .status.running { background: #d6f5dd; color: #17622c; }
  .status.error { background: #fbd5d5; color: #8c1d1d; }
  .status.terminated { background: #e6e6e6; color: #555; }
  table { border-collapse: collapse; margin-top: 4px; width: 100%; }
  th, td { text-align: right; padding: 1px 6px; font-variant-numeric: tabular-nums; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; font-family: ui-monospace, monospace; white-space: normal; overflow-wrap: anywhere; }
  th { font-size: 11px; color: #5d6675; font-weight: normal; }
  tr.backlog td.buffered { background: #ffe2b8; color: #8a4600; font-weight: 600; }
  tr.stuck td { background: #fff0c2; }
  tr.errors td { background: #fde2e2; }
  tr.errors td.errors { color: #b71c1c; font-weight: 700; }
  .flag { display: inline-block; margin-left: 6px; padding: 0 5px; border-radius: 6px; font: 600 11px system-ui, sans-serif; }
  .flag.err { background: #c62828; color: #fff; }
  .flag.stuck { background: #f0a500; color: #1d2330; }
  .flag.backlog { background: #ffcf8a; color: #5a2e00; }
  .flag.restarts { background: #e8d9ff; color: #3d1f7a; }
  .durable { font-size: 12px; color: #34404f; margin-top: 2px; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
  .durable.bad { color: #b71c1c; }
  .ws { font-size: 12px; color: #34404f; margin-top: 4px; overflow-wrap: anywhere; }
  svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none; overflow: visible; }
  #lines path { fill: none; stroke: #7d8ba1; stroke-width: 1.5; }
  #lines path.pub { stroke: #3f8f5a; stroke-dasharray: 5 3; }
  #lines path.bad { stroke: #c62828; stroke-width: 2; }
  .sends { font-size: 12px; color: #2f6b43; margin-top: 2px; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
  .empty { color: #777; }
</style>
</head>
<body>
<header><h1>magic-foundation</h1><span id="state" class="state">connecting…</span>
  <label title="The queues a WebSocketService subscribes to for itself: __INTERNAL_TEXT__"><input type="checkbox" id="internal"> internal queues</label></header>
<main id="main">
  <svg id="arrows"><defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#7d8ba1" stroke="none"/></marker><marker id="pubhead" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#3f8f5a" stroke="none"/></marker><marker id="badhead" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#c62828" stroke="none"/></marker></defs><g id="lines"></g></svg>
  <section id="queues"></section>
  <section id="pools"></section>
</main>
<script>
"use strict";
const REFRESH_MS = __REFRESH__;
const INTERNAL = __INTERNAL__;
const BACKLOG = 100;
const $ = (id) => document.getElementById(id);
let previous;
let current;
let updates = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    if (child === "" || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A queue name that may break after each "/", not inside a segment. */
function breakable(name) {
  const out = document.createDocumentFragment();
  name.split(/(?<=\/)/).forEach((part, i) => {
    if (i > 0) out.append(document.createElement("wbr"));
    out.append(part);
  });
  return out;
}

function isInternal(queue) {
  return INTERNAL.some((prefix) => queue.startsWith(prefix));
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

function count(n) {
  return n.toLocaleString("en");
}

function flag(kind, text) {
  return el("span", { class: "flag " + kind }, text);
}

/**
 * What is wrong with a subscription: errors, stuck (as its pool judged it),
 * a backlog (at least BACKLOG messages waiting, or some waiting while none
 * was delivered since the last refresh; one waiting for a moment is not).
 */
function troubles(s, old) {
  const idle = old !== undefined && old.buffered > 0 && s.delivered === old.delivered;
  return {
    errors: s.handlerErrors > 0,
    stuck: s.stuck === true,
    backlog: s.buffered >= BACKLOG || (s.buffered > 0 && idle),
  };
}

function render() {
  const snapshot = current;
  if (!snapshot) return;
  const showInternal = $("internal").checked;
  const shown = (queue) => showInternal || !isInternal(queue);
  const before = new Map();
  if (previous) for (const s of previous.subscriptions) before.set(subKey(s), s);
  const sentBefore = new Map();
  if (previous) {
    for (const p of previous.publishers || []) {
      for (const to of p.patterns) sentBefore.set(JSON.stringify([p.pool, p.service, to.queue]), to.published);
    }
  }
  const publishers = snapshot.publishers || [];
  const elapsed = previous ? (snapshot.takenAt - previous.takenAt) / 1000 : 0;
  const subscriptions = snapshot.subscriptions.filter((s) => shown(s.queue));
  const pools = $("pools");
  const queues = $("queues");
  pools.replaceChildren();
  queues.replaceChildren();
  const all = [...new Set([...snapshot.subscriptions.map((s) => s.queue),
    ...publishers.flatMap((p) => p.patterns.map((to) => to.queue))])].sort();
  const bad = new Set(snapshot.subscriptions.filter((s) => s.handlerErrors > 0 || s.stuck).map((s) => s.queue));
  for (const queue of all.filter(shown)) {
    queues.append(el("div", { class: "queue" + (bad.has(queue) ? " bad" : ""), "data-queue": queue, title: queue }, breakable(queue)));
  }
  const hidden = all.filter((q) => !shown(q));
  if (hidden.length > 0) {
    const troubled = hidden.filter((q) => bad.has(q)).length;
    queues.append(el("div", { class: "queue group" + (troubled ? " bad" : ""), title: hidden.join("\n") },
      hidden.length + " internal queue" + (hidden.length === 1 ? "" : "s") + " hidden",
      troubled ? flag("err", troubled + " in trouble") : ""));
  }
  if (all.length === 0) queues.append(el("div", { class: "empty" }, "no subscriptions"));
  for (const pool of snapshot.pools) {
    const box = el("div", { class: "pool" + (pool.stalled ? " stalled" : ""), "data-pool": pool.pool });
    const mine = snapshot.subscriptions.filter((s) => s.pool === pool.pool);
    const errors = mine.reduce((n, s) => n + s.handlerErrors, 0);
    const stuck = mine.filter((s) => s.stuck).length;
    const notes = el("small", {});
    if (pool.stalled) notes.append(el("span", { class: "bad" }, "STALLED"), " ");
    if (errors) notes.append(el("span", { class: "bad" }, count(errors) + " errors"), " ");
    if (stuck) notes.append(el("span", { class: "bad" }, stuck + " stuck"), " ");
    if (pool.restarts) notes.append("restarts " + pool.restarts + " ");
    if (pool.stalls) notes.append("stalls " + pool.stalls);
    box.append(el("h2", { title: "pool " + pool.pool }, pool.pool, notes));
    if (pool.stalled) box.append(el("div", { class: "service empty" }, "stalled: its counters are missing"));
    for (const service of snapshot.services.filter((s) => s.pool === pool.pool)) {
      const row = el("div", { class: "service", "data-service": service.service },
        el("span", { class: "name", title: pool.pool + "/" + service.service }, service.service),
        el("span", { class: "status " + service.status, "data-status": service.status }, service.status));
      if (service.restarts) row.append(flag("restarts", "restarted " + service.restarts + "×"));
      const subs = subscriptions.filter((s) => s.pool === pool.pool && s.service === service.service);
      if (subs.length > 0) {
        const table = el("table", {}, el("tr", {}, el("th", {}, "pattern"), el("th", {}, "msg/s"),
          el("th", {}, "delivered"), el("th", {}, "buffered"), el("th", {}, "p99"), el("th", {}, "errors")));
        for (const s of subs) {
          const old = before.get(subKey(s));
          const perSecond = old && elapsed > 0 ? Math.max(0, s.delivered - old.delivered) / elapsed : 0;
          // The pool's own judgement (stuckThreshold), not the page's.
          const trouble = troubles(s, old);
          const name = s.group ? s.queue + " [" + s.group + "]" : s.queue;
          table.append(el("tr", {
            class: Object.keys(trouble).filter((k) => trouble[k]).join(" "),
            "data-sub": s.queue,
            "data-delivered": s.delivered,
            "data-errors": s.handlerErrors,
            "data-buffered": s.buffered,
            "data-rate": perSecond.toFixed(1),
            "data-stuck": trouble.stuck,
          }, el("td", { title: name }, breakable(name),
              trouble.errors ? flag("err", count(s.handlerErrors) + " errors") : "",
              trouble.stuck ? flag("stuck", "stuck") : "",
              trouble.backlog ? flag("backlog", count(s.buffered) + " waiting") : ""),
            el("td", { class: "rate" }, rate(perSecond)),
            el("td", { class: "delivered" }, count(s.delivered)),
            el("td", { class: "buffered" }, count(s.buffered)),
            el("td", {}, p99(s.handlerSeconds)),
            el("td", { class: "errors" }, count(s.handlerErrors))));
        }
        row.append(table);
      }
      for (const p of publishers.filter((p) => p.pool === pool.pool && p.service === service.service)) {
        for (const to of p.patterns.filter((to) => shown(to.queue))) {
          const old = sentBefore.get(JSON.stringify([p.pool, p.service, to.queue]));
          const perSecond = old !== undefined && elapsed > 0 ? Math.max(0, to.published - old) / elapsed : 0;
          const text = "→ " + to.queue + " · " + rate(perSecond) + " msg/s · " + count(to.published) + " sent";
          row.append(el("div", { class: "sends", title: text, "data-pub": to.queue, "data-sent": to.published,
            "data-rate": perSecond.toFixed(1) }, text));
        }
      }
      for (const d of (snapshot.durable || []).filter((d) => d.pool === pool.pool && d.service === service.service)) {
        const text = "durable " + d.queue + (d.group ? " [" + d.group + "]" : "") + " · delivered " + count(d.delivered) +
          " · acknowledged " + count(d.acknowledged) + " · redelivered " + count(d.redelivered) +
          " · dead-lettered " + count(d.deadLettered) + " · in flight " + count(d.inFlight) +
          (d.pending === undefined ? "" : " · pending " + count(d.pending));
        row.append(el("div", { class: "durable" + (d.deadLettered > 0 ? " bad" : ""), title: text, "data-durable": d.queue,
          "data-acknowledged": d.acknowledged, "data-redelivered": d.redelivered, "data-dead-lettered": d.deadLettered,
          ...(d.pending === undefined ? {} : { "data-pending": d.pending }) },
          text));
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
  drawArrows(subscriptions, publishers, shown);
}

/**
 * An arrow from each pattern to each service subscribed to it (red when it
 * has errors or is stuck), and a dashed one from each service that
 * publishes to the pattern. Patterns are in the left column, pools in the
 * right one: every arrow leaves the right edge of the one and ends at the
 * left edge of the other, and its control points lie between the two, so
 * the curve stays in the gap and crosses no box.
 */
function drawArrows(subscriptions, publishers, shown) {
  const main = $("main").getBoundingClientRect();
  const lines = $("lines");
  lines.replaceChildren();
  const queueBox = (queue) => [...document.querySelectorAll(".queue[data-queue]")].find((q) => q.dataset.queue === queue);
  const poolBox = (pool) => [...document.querySelectorAll(".pool")].find((p) => p.dataset.pool === pool);
  const serviceBox = (box, service) => box && [...box.querySelectorAll(".service")].find((x) => x.dataset.service === service);
  const curve = (x1, y1, x2, y2, kind, pool, service, queue) => {
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    const middle = (x1 + x2) / 2;
    path.setAttribute("d", "M" + x1 + "," + y1 + " C" + middle + "," + y1 + " " + middle + "," + y2 + " " + x2 + "," + y2);
    path.setAttribute("marker-end", kind === "pub" ? "url(#pubhead)" : kind === "bad" ? "url(#badhead)" : "url(#head)");
    path.setAttribute("class", kind === "pub" ? "pub" : kind === "bad" ? "sub bad" : "sub");
    path.dataset.service = pool + "/" + service;
    path.dataset.queue = queue;
    lines.append(path);
  };
  const ends = (queue, pool, service) => {
    const q = queueBox(queue);
    const p = poolBox(pool);
    const s = serviceBox(p, service);
    if (!q || !p || !s) return undefined;
    return { q: q.getBoundingClientRect(), p: p.getBoundingClientRect(), s: s.getBoundingClientRect() };
  };
  const drawn = new Map();
  for (const s of subscriptions) {
    const id = JSON.stringify([s.queue, s.pool, s.service]);
    drawn.set(id, drawn.get(id) || s.handlerErrors > 0 || s.stuck === true);
  }
  for (const [id, bad] of drawn) {
    const [queue, pool, service] = JSON.parse(id);
    const at = ends(queue, pool, service);
    if (!at) continue;
    curve(at.q.right - main.left, at.q.top + at.q.height * 0.6 - main.top, at.p.left - main.left,
      at.s.top + 12 - main.top, bad ? "bad" : "sub", pool, service, queue);
  }
  for (const p of publishers) {
    for (const to of p.patterns) {
      if (!shown(to.queue)) continue;
      const at = ends(to.queue, p.pool, p.service);
      if (!at) continue;
      curve(at.p.left - main.left, at.s.top + 20 - main.top, at.q.right - main.left,
        at.q.top + at.q.height * 0.35 - main.top, "pub", p.pool, p.service, to.queue);
    }
  }
}

async function tick() {
  try {
    const response = await fetch("metrics.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    previous = current;
    current = await response.json();
    render();
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
$("internal").addEventListener("change", render);
addEventListener("resize", render);
tick();
</script>
</body>
</html>
`.replace("__REFRESH__", String(PAGE_REFRESH_MS))
  .replace("__INTERNAL__", JSON.stringify(INTERNAL_QUEUE_PREFIXES))
  .replace("__INTERNAL_TEXT__", INTERNAL_QUEUE_PREFIXES.join(", "));
