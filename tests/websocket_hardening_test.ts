/**
 * The WebSocketService against misuse and at shutdown: a path too long for
 * a queue name, the close code of a close without status, the scheme in
 * same-origin checks, and every disconnect event delivered at the stop.
 */
import assert from "node:assert/strict";
import { startProgram } from "./_helpers.ts";
import { startService } from "./fixtures/websocket_harness.ts";
import {
  deadline,
  freePort,
  TestClient,
  upgradeStatus,
} from "./fixtures/websocket_helpers.ts";
import { isOriginAllowed } from "../src/websocket/admission.ts";
import type { ConnectionEvent } from "../src/websocket/mod.ts";
import { pools, type ShutdownConfig } from "./fixtures/websocket_shutdown.ts";

Deno.test("WebSocketService refuses a path too long for a queue name with 414 and one log line", async () => {
  await using h = await startService();
  const long = `/${"a".repeat(1100)}`;
  assert.equal(await upgradeStatus(h.port, long), 414);
  assert.equal(h.warnings.length, 1, h.warnings.join("\n"));
  assert.match(
    h.warnings[0]!,
    /^Refused a WebSocket upgrade to a path of 1101 characters \(414\): the path's queue name has 1118 characters \(at most 1024\)$/,
  );
  assert.deepEqual(h.bed.seen("ws://>"), [], "no event published");
  // The longest path that fits still connects.
  const fits = `/${"a".repeat(1024 - "ws://disconnected/".length)}`;
  assert.equal(await upgradeStatus(h.port, fits), 101);
});

Deno.test("a client's close without a status code is reported as 1005, not 1006", async () => {
  await using h = await startService();
  const gone = h.bed.next("ws://disconnected/client");
  const client = await h.connect("/client");
  await client.close();
  const event = (await deadline(gone, "the disconnected event"))
    .data as ConnectionEvent;
  assert.equal(event.code, 1005);
});

Deno.test("allowedOrigins same-origin compares the scheme", () => {
  const request = (origin: string): Request =>
    new Request("http://127.0.0.1:8765/client", {
      headers: { host: "127.0.0.1:8765", origin, upgrade: "websocket" },
    });
  assert.equal(
    isOriginAllowed(request("http://127.0.0.1:8765"), "same-origin"),
    true,
  );
  assert.equal(
    isOriginAllowed(request("https://127.0.0.1:8765"), "same-origin"),
    false,
  );
});

Deno.test("every disconnect event is delivered at shutdown, the consumer declared after the service", async () => {
  const config: ShutdownConfig = { port: freePort(), clients: 100 };
  const program = startProgram(
    new URL("./fixtures/websocket_shutdown.ts", import.meta.url),
    pools(config),
    config,
  );
  await deadline(program.main.ready, "main.ready", 60_000);
  const clients = await Promise.all(
    Array.from(
      { length: config.clients },
      () => TestClient.open(`ws://127.0.0.1:${config.port}/room`),
    ),
  );
  await program.waitForReports(1);
  const report = await program.stop();
  const codes = await Promise.all(
    clients.map(async (c) => (await c.closed).code),
  );
  assert.deepEqual(new Set(codes), new Set([1001]));
  assert.deepEqual(report.failures, []);
  assert.deepEqual(program.reports().at(-1), {
    disconnected: config.clients,
  });
});
