/**
 * The WebSocketService's counters in `ctx.metrics()` and their Prometheus
 * series: exact counts after a known exchange with real clients.
 */
import assert from "node:assert/strict";
import type { WebSocketMetrics } from "@magic/foundation";
import { renderPrometheus } from "@magic/foundation/metrics";
import {
  echo,
  SERVICE_POOL,
  startService,
} from "./fixtures/websocket_harness.ts";
import { utf8Length } from "../src/websocket/counters.ts";
import { promtool } from "./fixtures/promtool.ts";

Deno.test("WebSocketService counts connections, frames and bytes both ways, and closes by code", async () => {
  await using h = await startService();
  await echo(h);
  const ctx = h.bed.context;
  const one = await h.connect("/client");
  const two = await h.connect("/client");
  // 5 + 6 ("é" is 2 bytes) + 4 ("😀" is 4) + 3 binary = 18 bytes each way.
  const frames: Array<string | Uint8Array> = [
    "hello",
    "héllo",
    "😀",
    new Uint8Array([1, 2, 3]),
  ];
  for (const frame of frames) one.send(frame);
  for (const _ of frames) await one.next();
  two.send("x");
  await two.next();

  const open = only((await ctx.metrics()).websockets!);
  assert.deepEqual(open, {
    pool: SERVICE_POOL,
    service: "WebSocketService",
    connections: 2,
    framesIn: 5,
    framesOut: 5,
    bytesIn: 19,
    bytesOut: 19,
    closes: {},
  });

  await one.close(1000, "bye");
  await h.bed.next("ws://disconnected/client");
  await two.close(4001, "custom");
  await h.bed.next("ws://disconnected/client");
  const snapshot = await ctx.metrics();
  const closed = only(snapshot.websockets!);
  assert.equal(closed.connections, 0);
  assert.deepEqual(closed.closes, { "1000": 1, "4001": 1 });

  const text = renderPrometheus(snapshot);
  const labels = `pool="${SERVICE_POOL}",service="WebSocketService"`;
  for (
    const line of [
      `magic_foundation_websocket_connections{${labels}} 0`,
      `magic_foundation_websocket_frames_total{${labels},direction="in"} 5`,
      `magic_foundation_websocket_frames_total{${labels},direction="out"} 5`,
      `magic_foundation_websocket_bytes_total{${labels},direction="in"} 19`,
      `magic_foundation_websocket_bytes_total{${labels},direction="out"} 19`,
      `magic_foundation_websocket_closes_total{${labels},code="1000"} 1`,
      `magic_foundation_websocket_closes_total{${labels},code="4001"} 1`,
    ]
  ) {
    assert.ok(text.includes(`${line}\n`), line);
  }
  const result = await promtool(text);
  if ("problems" in result) assert.equal(result.problems, "");
});

Deno.test("utf8Length() agrees with TextEncoder", () => {
  const encoder = new TextEncoder();
  for (
    const text of [
      "",
      "abc",
      "héllo",
      "€",
      "😀x",
      "\ud800",
      "a\udc00b",
      "\u07ff\u0800",
    ]
  ) {
    assert.equal(utf8Length(text), encoder.encode(text).byteLength, text);
  }
});

function only(websockets: WebSocketMetrics[]): WebSocketMetrics {
  assert.equal(websockets.length, 1);
  return websockets[0]!;
}
