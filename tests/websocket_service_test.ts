/**
 * The WebSocketService with real sockets on the real bus in the test's
 * thread (`@magic/foundation/testing`): routing, replies, events, limits,
 * backpressure, static files and stopping. The same behaviour across worker
 * pools is in websocket_pools_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CloseCode, WebSocketService } from "../src/websocket/mod.ts";
import type { AuthorizeResult, ConnectionEvent } from "../src/websocket/mod.ts";
import {
  echo,
  type Harness,
  SERVICE_POOL,
  startService,
} from "./fixtures/websocket_harness.ts";
import {
  deadline,
  rawHandshake,
  readUntilClose,
  upgradeStatus,
} from "./fixtures/websocket_helpers.ts";
import { Service } from "../src/service.ts";
import type { ServiceContext } from "../src/service_context.ts";
import { startServices } from "../src/testing/mod.ts";

Deno.test("WebSocketService routes /client frames to ws://inbound/client and ws://outbound/client back", async () => {
  await using h = await startService();
  const ctx = h.bed.context;
  await ctx.subscribe("ws://inbound/client", async (data) => {
    const { timestamp } = JSON.parse(data as string);
    await ctx.publish("ws://outbound/client", { status: "OK", timestamp });
  });
  const client = await h.connect("/client");
  client.send(JSON.stringify({ timestamp: 1234 }));
  assert.deepEqual(await client.nextJson(), { status: "OK", timestamp: 1234 });
});

Deno.test("WebSocketService keeps text as string and binary as Uint8Array both ways", async () => {
  await using h = await startService();
  await echo(h);
  const client = await h.connect("/client");
  client.send("text");
  client.send(new Uint8Array([1, 2, 3]));
  assert.equal(await client.next(), "text");
  assert.deepEqual(await client.next(), new Uint8Array([1, 2, 3]));
  const inbound = h.bed.seen("ws://inbound/client");
  assert.equal(typeof inbound[0]!.data, "string");
  assert.ok(inbound[1]!.data instanceof Uint8Array);
});

Deno.test("WebSocketService puts replyTo, connectionId, path and query in meta", async () => {
  await using h = await startService();
  const client = await h.connect("/chat/room1/?user=ann&x=1");
  client.send("hello");
  const { meta } = await h.bed.next("ws://inbound/chat/room1");
  const id = meta.headers!.connectionId!;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(meta.replyTo, `ws://connection/WebSocketService/${id}`);
  assert.deepEqual(meta.headers, {
    connectionId: id,
    path: "/chat/room1",
    query: "user=ann&x=1",
    controlQueue: meta.headers!.controlQueue,
  });
  assert.match(
    meta.headers!.controlQueue!,
    /^ws:\/\/control\/WebSocketService\/[0-9a-f-]{36}$/,
  );
});

Deno.test("WebSocketService keeps each connection's frames in order", async () => {
  await using h = await startService();
  const received: string[] = [];
  const done = Promise.withResolvers<void>();
  await h.bed.context.subscribe("ws://inbound/client", async (data) => {
    await new Promise((r) => setTimeout(r, 0));
    received.push(data as string);
    if (received.length === 200) done.resolve();
  });
  const client = await h.connect("/client");
  for (let i = 0; i < 200; i++) client.send(String(i));
  await deadline(done.promise, "200 frames");
  assert.deepEqual(received, Array.from({ length: 200 }, (_, i) => String(i)));
});

Deno.test("WebSocketService broadcasts ws://outbound/<path> to every connection on that path and no others", async () => {
  await using h = await startService();
  const a = await h.connect("/client");
  const b = await h.connect("/client");
  const other = await h.connect("/other");
  const nested = await h.connect("/client/sub");
  await h.bed.publish("ws://outbound/client", "to all clients");
  await h.bed.publish("ws://outbound/other", "marker");
  await h.bed.publish("ws://outbound/client/sub", "marker");
  assert.equal(await a.next(), "to all clients");
  assert.equal(await b.next(), "to all clients");
  // Sent after the broadcast: anything broadcast there would come first.
  assert.equal(await other.next(), "marker");
  assert.equal(await nested.next(), "marker");
});

Deno.test("WebSocketService sends a reply on meta.replyTo to the sending connection only", async () => {
  await using h = await startService();
  await echo(h);
  const a = await h.connect("/client");
  const b = await h.connect("/client");
  b.send("from b");
  assert.equal(await b.next(), "from b");
  await h.bed.publish("ws://outbound/client", "marker");
  assert.equal(await a.next(), "marker", "a got nothing before the marker");
  assert.equal(await b.next(), "marker");
});

Deno.test("WebSocketService announces connections on ws://connected and ws://disconnected", async () => {
  await using h = await startService();
  // A greeting on the event's replyTo reaches the new client.
  const ctx = h.bed.context;
  await ctx.subscribe("ws://connected/>", async (_data, meta) => {
    await ctx.publish(meta.replyTo!, "welcome");
  });
  const client = await h.connect("/lobby?room=7");
  const connected = await h.bed.next("ws://connected/lobby");
  const event = connected.data as ConnectionEvent;
  assert.deepEqual(event, {
    id: connected.meta.headers!.connectionId,
    path: "/lobby",
    query: "room=7",
  });
  assert.equal(await client.next(), "welcome");
  client.send("last words");
  await client.close(4001, "bye");
  const disconnected = await h.bed.next("ws://disconnected/lobby");
  assert.deepEqual(disconnected.data, {
    ...event,
    code: 4001,
    reason: "bye",
    dropped: 0,
  });
  const order = h.bed.seen("ws://>").map((m) => m.meta.queue.split("/")[2]);
  assert.deepEqual(order.filter((q) => q !== "connection"), [
    "connected",
    "inbound",
    "disconnected",
  ]);
  assert.equal(h.service.connections, 0);
});

Deno.test("WebSocketService closes a connection with 1009 when a frame passes maxFrameSize", async () => {
  await using h = await startService({ maxFrameSize: 1024 });
  await echo(h);
  const client = await h.connect("/client");
  client.send("x".repeat(1024));
  assert.equal((await client.next() as string).length, 1024);
  client.send(new Uint8Array(1025));
  const closed = await deadline(client.closed, "close 1009");
  assert.equal(closed.code, CloseCode.messageTooBig);
  assert.equal(closed.code, 1009);
  const event = await h.bed.next("ws://disconnected/client");
  assert.equal((event.data as ConnectionEvent).code, 1009);
});

Deno.test("WebSocketService refuses connections past maxConnections with 503", async () => {
  await using h = await startService({ maxConnections: 2 });
  const a = await h.connect("/client");
  await h.connect("/client");
  assert.equal(await upgradeStatus(h.port, "/client"), 503);
  await a.close();
  await h.bed.next("ws://disconnected/client");
  await h.connect("/client");
});

Deno.test("WebSocketService refuses other origins with 403", async (t) => {
  await t.step("same-origin by default", async () => {
    await using h = await startService();
    assert.equal(
      await upgradeStatus(h.port, "/client", { Origin: "http://evil.test" }),
      403,
    );
    assert.equal(
      await upgradeStatus(h.port, "/client", {
        Origin: `http://127.0.0.1:${h.port}`,
      }),
      101,
    );
    assert.equal(await upgradeStatus(h.port, "/client"), 101, "no Origin");
  });
  await t.step("a list of origins", async () => {
    await using h = await startService({
      allowedOrigins: ["https://app.test"],
    });
    assert.equal(
      await upgradeStatus(h.port, "/client", { Origin: "https://app.test" }),
      101,
    );
    assert.equal(
      await upgradeStatus(h.port, "/client", {
        Origin: `http://127.0.0.1:${h.port}`,
      }),
      403,
    );
  });
});

Deno.test("WebSocketService asks authorize(): false is 403, a Response is sent, headers reach meta", async () => {
  await using h = await startService({
    authorize(request, info): AuthorizeResult {
      const token = request.headers.get("authorization");
      if (token === null) {
        return new Response("login first", {
          status: 401,
          headers: { "www-authenticate": "Bearer" },
        });
      }
      if (token === "Bearer boom") throw new Error("auth backend down");
      if (token === "Bearer n") {
        return { headers: { n: 1 as unknown as string } };
      }
      if (token !== "Bearer ann") return false;
      return { headers: { user: "ann", path: "ignored", via: info.path } };
    },
  });
  assert.equal(await upgradeStatus(h.port, "/client"), 401);
  assert.equal(
    await upgradeStatus(h.port, "/client", { Authorization: "Bearer bob" }),
    403,
  );
  assert.equal(
    await upgradeStatus(h.port, "/client", { Authorization: "Bearer boom" }),
    500,
  );
  assert.equal(
    await upgradeStatus(h.port, "/client", { Authorization: "Bearer n" }),
    500,
  );
  const client = await h.connect("/client", { Authorization: "Bearer ann" });
  client.send("hi");
  const { meta } = await h.bed.next("ws://inbound/client");
  assert.equal(meta.headers!.user, "ann");
  assert.equal(meta.headers!.via, "/client");
  assert.equal(meta.headers!.path, "/client", "authorize cannot override path");
});

Deno.test("WebSocketService answers a plain HTTP request to a WebSocket path with 426", async () => {
  await using h = await startService({ paths: ["/client", "/chat/:room"] });
  const plain = await fetch(h.http("/client"));
  assert.equal(plain.status, 426);
  assert.equal(plain.headers.get("upgrade"), "websocket");
  await plain.body?.cancel();
  const other = await fetch(h.http("/other"));
  assert.equal(other.status, 404);
  await other.body?.cancel();
  assert.equal(await upgradeStatus(h.port, "/other"), 404);
  assert.equal(await upgradeStatus(h.port, "/chat/room1"), 101);
});

Deno.test("WebSocketService serves staticDir and the fallback handler to plain HTTP", async () => {
  const root = await Deno.makeTempDir({ prefix: "ws_site_" });
  try {
    await Deno.writeTextFile(join(root, "index.html"), "<p>page</p>");
    await using h = await startService({
      staticDir: root,
      fallback: (request) =>
        new URL(request.url).pathname === "/api"
          ? Response.json({ ok: true })
          : new Response("nope", { status: 404 }),
    });
    const page = await fetch(h.http("/"));
    assert.equal(page.status, 200);
    assert.equal(await page.text(), "<p>page</p>");
    const api = await fetch(h.http("/api"));
    assert.deepEqual(await api.json(), { ok: true });
    const missing = await fetch(h.http("/missing"));
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    // The root path still speaks WebSocket.
    await echo(h, "/");
    const client = await h.connect("/");
    client.send("root");
    assert.equal(await client.next(), "root");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("WebSocketService closes an idle client that does not answer pings", async () => {
  await using h = await startService({ idleTimeout: 400 });
  const raw = await rawHandshake(h.port, "/client");
  try {
    assert.equal(raw.status, 101);
    const started = performance.now();
    const { code, opcodes } = await deadline(
      readUntilClose(raw.conn, raw.rest),
      "the idle close",
    );
    assert.equal(code, 1001);
    assert.ok(opcodes.includes(0x9), "a ping came before the close");
    assert.ok(performance.now() - started >= 300);
  } finally {
    raw.conn.close();
  }
  const event = await h.bed.next("ws://disconnected/client");
  assert.equal((event.data as ConnectionEvent).code, 1001);
});

/** Publishes `count` frames of `size` bytes on ws://outbound/client. */
async function flood(
  h: Harness,
  count: number,
  size: number,
): Promise<number> {
  const frame = new Uint8Array(size);
  for (let i = 0; i < count; i++) {
    await h.bed.publish("ws://outbound/client", frame);
  }
  return count * size;
}

Deno.test("WebSocketService closes a slow client with 1008 under the close policy", async () => {
  await using h = await startService({
    maxBufferedAmount: 256 * 1024,
    slowClientPolicy: "close",
  });
  const raw = await rawHandshake(h.port, "/client");
  try {
    await h.bed.next("ws://connected/client");
    // The client reads nothing while 16 MiB are published for it.
    const sent = await flood(h, 256, 64 * 1024);
    const { code, bytes } = await deadline(
      readUntilClose(raw.conn, raw.rest),
      "the slow-client close",
    );
    assert.equal(code, CloseCode.policyViolation);
    assert.ok(bytes < sent / 4, `got ${bytes} of ${sent} bytes`);
  } finally {
    raw.conn.close();
  }
  await h.bed.next("ws://disconnected/client");
  assert.ok(h.warnings.some((w) => w.startsWith("Closing slow client")));
});

Deno.test("WebSocketService drops and counts messages for a slow client under the drop policy", async () => {
  await using h = await startService({
    maxBufferedAmount: 256 * 1024,
    slowClientPolicy: "drop",
  });
  const raw = await rawHandshake(h.port, "/client");
  try {
    await h.bed.next("ws://connected/client");
    const sent = await flood(h, 256, 64 * 1024);
    await h.bed.publish("ws://outbound/client", "still open?");
    // Reads what was kept, then closes without a close frame.
    const chunk = new Uint8Array(65_536);
    let received = 0;
    while (received < 256 * 1024) {
      const n = await deadline(raw.conn.read(chunk), "kept frames");
      if (n === null) break;
      received += n;
    }
    assert.ok(received < sent);
  } finally {
    raw.conn.close();
  }
  const event = await h.bed.next("ws://disconnected/client");
  const { dropped, code } = event.data as ConnectionEvent;
  assert.equal(code, 1006, "closed without a close frame");
  assert.ok(dropped! > 100, `dropped ${dropped}`);
});

/** Handles `ws://inbound/client` with a buffer of one, once its gate opens. */
class GatedConsumer extends Service {
  readonly gate = Promise.withResolvers<void>();
  readonly got: unknown[] = [];
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe("ws://inbound/client", async (data) => {
      await this.gate.promise;
      this.got.push(data);
    }, { bufferSize: 1 });
  }
}

Deno.test("WebSocketService closes with 1013 when maxPendingMessages frames wait for a full consumer", async () => {
  // The real bus blocks a publisher while a subscriber in its pool is full:
  // the service's publish of a frame waits, and the frames behind it pile up.
  const consumer = new GatedConsumer("consumer");
  await using h = await startService({ maxPendingMessages: 4 }, {
    with: [consumer],
  });
  const client = await h.connect("/client");
  // "0" is in the consumer's handler, "1" fills its buffer, "2" waits in
  // publish, "3".."6" wait for the bus, "7" is one too many. (No frame after
  // it: Deno aborts a closing server socket that receives one, and the
  // client would see 1006 instead.)
  for (let i = 0; i < 8; i++) client.send(String(i));
  const closed = await deadline(client.closed, "close 1013");
  assert.equal(closed.code, CloseCode.tryAgainLater);
  assert.deepEqual(consumer.got, [], "the consumer handled nothing yet");
  consumer.gate.resolve();
  const event = await h.bed.next("ws://disconnected/client");
  assert.equal((event.data as ConnectionEvent).code, 1013);
  const inbound = await h.bed.take("ws://inbound/client", 7);
  assert.deepEqual(inbound.map((m) => m.data), [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
  ]);
  await h.stop();
  assert.deepEqual(consumer.got, ["0", "1", "2", "3", "4", "5", "6"]);
  assert.equal(h.bed.seen("ws://inbound/client").length, 7, "not the 8th");
});

Deno.test("WebSocketService.terminate() closes every connection with 1001 and stops listening", async () => {
  const h = await startService();
  const clients = await Promise.all([
    h.connect("/a"),
    h.connect("/a"),
    h.connect("/b"),
  ]);
  await h.bed.next("ws://connected/b");
  await h.stop();
  for (const client of clients) {
    const closed = await deadline(client.closed, "close 1001");
    assert.equal(closed.code, 1001);
    assert.equal(closed.reason, "Server shutting down");
  }
  const gone = h.bed.seen("ws://>").filter((m) =>
    m.meta.queue.startsWith("ws://disconnected")
  );
  assert.equal(gone.length, 3);
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port: h.port }),
    Deno.errors.ConnectionRefused,
  );
  assert.equal(h.service.addr, undefined);
});

/** Holds the stop of its pool in `terminate()` until `release()`. */
class StopHolder extends Service {
  readonly stopping = Promise.withResolvers<void>();
  readonly #gate = Promise.withResolvers<void>();
  release(): void {
    this.#gate.resolve();
  }
  override async terminate(): Promise<void> {
    this.stopping.resolve();
    await this.#gate.promise;
  }
}

Deno.test("WebSocketService refuses new clients with 503 and closes open ones with 1001 once the program begins to stop", async () => {
  // Pools stop in reverse order: "hold", declared after the service's pool,
  // stops first and holds the service's pool (still serving) until released.
  const holder = new StopHolder("holder");
  await using h = await startService({}, { after: { hold: [holder] } });
  const client = await h.connect("/client");
  await h.bed.next("ws://connected/client");
  const stopped = h.stop();
  await deadline(holder.stopping.promise, "the stop to begin");
  assert.equal(await upgradeStatus(h.port, "/client"), 503);
  // Closed at once, before terminate(), so consumers still get the event.
  assert.equal((await deadline(client.closed, "the close")).code, 1001);
  const gone = await h.bed.next("ws://disconnected/client");
  assert.equal((gone.data as { code: number }).code, 1001);
  assert.notEqual(h.service.addr, undefined, "terminate() has not run yet");
  holder.release();
  const report = await stopped;
  assert.deepEqual(report.failures, []);
  assert.deepEqual(report.undelivered, []);
  assert.equal(h.service.addr, undefined);
});

Deno.test("WebSocketService.terminate() refuses new clients with 503 and waits at most closeTimeout", async () => {
  await using h = await startService({ closeTimeout: 500 });
  // A raw client never answers the close frame.
  const stuck = await rawHandshake(h.port, "/client");
  try {
    await h.bed.next("ws://connected/client");
    const started = performance.now();
    const stopping = h.stop();
    const { code } = await deadline(
      readUntilClose(stuck.conn, stuck.rest),
      "the close frame",
    );
    assert.equal(code, 1001);
    assert.equal(await upgradeStatus(h.port, "/client"), 503);
    await deadline(stopping, "the stop");
    const took = performance.now() - started;
    // run() waits closeTimeout for the close, terminate() once more before
    // it shuts the server down.
    assert.ok(took >= 450 && took < 3000, `took ${took} ms`);
  } finally {
    stuck.conn.close();
  }
});

Deno.test("WebSocketService.initialize() fails with host:port when the port is in use", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const service = new WebSocketService({
      hostname: "127.0.0.1",
      port: taken.addr.port,
    });
    const bed = await startServices({
      pools: { [SERVICE_POOL]: [service] },
      logLevel: "silent",
    });
    const topology = await bed.topology();
    assert.deepEqual(Object.keys(topology), [], "nothing subscribed");
    const report = await bed.stop();
    const message =
      `Cannot start WebSocketService "WebSocketService": 127.0.0.1:${taken.addr.port} is already in use`;
    assert.deepEqual(report.failures, [{
      pool: SERVICE_POOL,
      service: "WebSocketService",
      phase: "initialize",
      message:
        `Service "WebSocketService" in pool "${SERVICE_POOL}" failed in initialize(): ${message}`,
    }]);
    const cause = report.errors[0]!.error.cause as Error;
    assert.equal(cause.name, "AddrInUse");
    assert.equal(cause.message, message);
  } finally {
    taken.close();
  }
});

Deno.test("WebSocketService can be initialized again after terminate()", async () => {
  const service = new WebSocketService({ hostname: "127.0.0.1", port: 0 });
  for (let round = 0; round < 2; round++) {
    await using bed = await startServices({
      pools: { [SERVICE_POOL]: [service] },
    });
    assert.ok(service.addr!.port > 0);
    const topology = await bed.topology();
    for (const [queue, pools] of Object.entries(topology)) {
      assert.equal(
        pools[SERVICE_POOL]?.length,
        1,
        `one subscription: ${queue}`,
      );
    }
    await bed.stop();
    assert.equal(service.addr, undefined, "terminate() shut the server down");
  }
});
