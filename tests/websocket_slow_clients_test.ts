/**
 * The WebSocketService against clients that upgrade and then never read
 * (raw TCP clients that do the handshake by hand): their connections are
 * dropped, counted as closed and logged, their slots come back, and nothing
 * more is queued for them.
 */
import assert from "node:assert/strict";
import {
  type ConnectionEvent,
  WebSocketService,
} from "../src/websocket/mod.ts";
import { SERVICE_METRICS } from "../src/service_metrics.ts";
import type { WebSocketServiceOptions } from "../src/websocket/options.ts";
import { type Harness, startService } from "./fixtures/websocket_harness.ts";
import {
  type RawHandshake,
  rawHandshake,
  upgradeStatus,
} from "./fixtures/websocket_helpers.ts";

const FRAME = new Uint8Array(16 * 1024);
const CLIENTS = 4;
const DROPPED = /^Dropped (\d+) WebSocket connection\(s\)/;

/** `CLIENTS` raw clients on /feed that never read; the service is full. */
async function neverReaders(h: Harness): Promise<RawHandshake[]> {
  const raws: RawHandshake[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const raw = await rawHandshake(h.port, "/feed");
    raws.push(raw);
    assert.equal(raw.status, 101);
  }
  await h.bed.take("ws://connected/feed", CLIENTS);
  assert.equal(
    await upgradeStatus(h.port, "/feed"),
    503,
    "the service is full",
  );
  return raws;
}

/**
 * Publishes a 16 KiB tick on ws://outbound/feed after each other until every
 * never-reading client is dropped (its `disconnected` event arrives).
 */
async function tickUntilDropped(h: Harness): Promise<ConnectionEvent[]> {
  let done = false;
  const dropped = h.bed.take<ConnectionEvent>(
    "ws://disconnected/feed",
    CLIENTS,
    { timeout: 20_000 },
  );
  dropped.then(() => done = true, () => done = true);
  while (!done) await h.bed.publish("ws://outbound/feed", FRAME);
  return (await dropped).map((m) => m.data);
}

/** Checks that the slots came back and that only the new client is fed. */
async function assertSlotsFreed(h: Harness): Promise<void> {
  assert.equal(h.service.connections, 0);
  const fresh = await h.connect("/feed");
  assert.equal(h.service.connections, 1);
  const before = h.service[SERVICE_METRICS]().websockets[0]!.bytesOut;
  for (let i = 0; i < 10; i++) {
    await h.bed.publish("ws://outbound/feed", FRAME);
    assert.equal((await fresh.next()).length, FRAME.length);
  }
  const after = h.service[SERVICE_METRICS]().websockets[0]!.bytesOut;
  assert.equal(
    after - before,
    10 * FRAME.length,
    "nothing queued for the dropped",
  );
}

function dropLines(h: Harness): string[] {
  return h.warnings.filter((w) => DROPPED.test(w));
}

async function scenario(
  options: WebSocketServiceOptions,
  code: number,
): Promise<void> {
  await using h = await startService({
    maxConnections: CLIENTS,
    maxBufferedAmount: 64 * 1024,
    closeTimeout: 200,
    ...options,
  });
  const raws = await neverReaders(h);
  try {
    const events = await tickUntilDropped(h);
    assert.deepEqual(events.map((e) => e.code), Array(CLIENTS).fill(code));
    const lines = dropLines(h);
    assert.equal(lines.length, 1, h.warnings.join("\n"));
    const count = Number(DROPPED.exec(lines[0]!)![1]);
    assert.ok(count >= 1 && count <= CLIENTS, lines[0]);
    assert.deepEqual(h.service[SERVICE_METRICS]().websockets[0]!.closes, {
      [code]: CLIENTS,
    });
    await assertSlotsFreed(h);
  } finally {
    for (const raw of raws) raw.conn.close();
  }
}

Deno.test("WebSocketService drops never-reading clients that do not finish closing (close policy): slots come back", async () => {
  await scenario({ slowClientPolicy: "close" }, 1008);
});

Deno.test("WebSocketService drops clients that stay over maxBufferedAmount past slowClientTimeout (drop policy)", async () => {
  await scenario({ slowClientPolicy: "drop", slowClientTimeout: 200 }, 1008);
});

Deno.test("WebSocketService checks slowClientTimeout", () => {
  assert.throws(() => new WebSocketService({ slowClientTimeout: -1 }), {
    name: "RangeError",
    message:
      'Cannot create WebSocketService "WebSocketService": slowClientTimeout must be an integer from 1 to 2147483647, got -1',
  });
});
