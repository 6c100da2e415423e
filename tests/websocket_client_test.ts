/**
 * The browser client (ReconnectingWebSocket) run in Deno against a real
 * WebSocketService: the module the service serves, reconnection across a
 * server restart, the bounded queue, backoff, close; and its type-check
 * with the DOM library alone. The same client in Chromium is in
 * websocket_chromium_test.ts.
 */
import assert from "node:assert/strict";
import { ReconnectingWebSocket } from "../src/websocket/client.ts";
import {
  echo,
  type Harness,
  startService,
} from "./fixtures/websocket_harness.ts";
import { deadline, freePort } from "./fixtures/websocket_helpers.ts";

/** Records a client's events and awaits them with deadlines. */
class Events {
  readonly seen: Array<{ type: string; detail: unknown }> = [];
  #waiters = new Set<{ test: () => boolean; resolve: () => void }>();

  constructor(target: EventTarget) {
    for (const type of ["open", "close", "reconnecting", "message"]) {
      target.addEventListener(type, (event) => {
        const detail = event instanceof CloseEvent
          ? { code: event.code, reason: event.reason }
          : event instanceof MessageEvent
          ? event.data
          : event instanceof CustomEvent
          ? event.detail
          : undefined;
        this.seen.push({ type, detail });
        for (const waiter of this.#waiters) {
          if (waiter.test()) {
            this.#waiters.delete(waiter);
            waiter.resolve();
          }
        }
      });
    }
  }

  /** The details of the events of `type`, in order. */
  of(type: string): unknown[] {
    return this.seen.filter((e) => e.type === type).map((e) => e.detail);
  }

  /** Resolves once `count` events of `type` were seen (in all). */
  async until(type: string, count = 1): Promise<unknown[]> {
    const test = () => this.of(type).length >= count;
    if (!test()) {
      const { promise, resolve } = Promise.withResolvers<void>();
      const waiter = { test, resolve };
      this.#waiters.add(waiter);
      await deadline(promise, `${count} "${type}" event(s)`).finally(() =>
        this.#waiters.delete(waiter)
      );
    }
    return this.of(type);
  }
}

/** Closes `client` and waits for its final `close` event. */
async function closeClient(
  client: ReconnectingWebSocket,
  events: Events,
): Promise<void> {
  const before = events.of("close").length;
  client.close();
  await events.until("close", before + 1);
}

Deno.test("WebSocketService serves the client at /_magic/client.js, and the served module works", async () => {
  await using h = await startService();
  await echo(h, "/echo");
  const response = await fetch(h.http("/_magic/client.js"));
  assert.equal(response.status, 200);
  assert.equal(
    response.headers.get("content-type"),
    "text/javascript; charset=utf-8",
  );
  const script = await response.text();
  assert.doesNotMatch(script, /: string|: number|interface |private /);
  const head = await fetch(h.http("/_magic/client.js"), { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");

  const served = await import(
    `data:text/javascript,${encodeURIComponent(script)}`
  ) as { ReconnectingWebSocket: typeof ReconnectingWebSocket };
  const client = new served.ReconnectingWebSocket(h.http("/echo"));
  const events = new Events(client);
  assert.equal(client.url, h.ws("/echo"));
  client.send("text");
  client.send(new Uint8Array([0, 1, 254, 255]));
  await events.until("open");
  const [text, binary] = await events.until("message", 2);
  assert.equal(text, "text");
  assert.ok(binary instanceof ArrayBuffer);
  assert.deepEqual(new Uint8Array(binary), new Uint8Array([0, 1, 254, 255]));
  await closeClient(client, events);
});

Deno.test("ReconnectingWebSocket reconnects after its server restarts and sends what was queued meanwhile, in order", async () => {
  const port = freePort();
  let h: Harness | undefined = await startService({ port });
  await echo(h, "/echo");
  const client = new ReconnectingWebSocket(`ws://127.0.0.1:${port}/echo`, {
    minDelay: 20,
    maxDelay: 100,
  });
  const events = new Events(client);
  try {
    await events.until("open");
    client.send("before");
    assert.deepEqual(await events.until("message"), ["before"]);

    await h[Symbol.asyncDispose]();
    h = undefined;
    assert.deepEqual(await events.until("close"), [
      { code: 1001, reason: "Server shutting down" },
    ]);
    assert.equal(client.readyState, WebSocket.CONNECTING);
    const bytes = new Uint8Array([7, 8, 9]);
    client.send("one");
    client.send(bytes);
    bytes[0] = 0; // the queued copy keeps 7
    client.send("three");
    assert.equal(client.queued, 3);
    // At least one attempt fails against the stopped server.
    await events.until("reconnecting", 2);

    h = await startService({ port });
    await echo(h, "/echo");
    await events.until("open", 2);
    assert.equal(client.queued, 0);
    client.send("after");
    const messages = await events.until("message", 5);
    assert.deepEqual(messages.slice(1).map(show), [
      "one",
      "7,8,9",
      "three",
      "after",
    ]);
    const inbound = h.bed.seen("ws://inbound/echo");
    assert.deepEqual(inbound.map((m) => show(m.data)), [
      "one",
      "7,8,9",
      "three",
      "after",
    ]);
    const attempts = events.of("reconnecting") as Array<{ attempt: number }>;
    assert.deepEqual(
      attempts.map((a) => a.attempt),
      attempts.map((_, i) => i + 1),
    );
  } finally {
    await closeClient(client, events);
    await h?.[Symbol.asyncDispose]();
  }
});

Deno.test("ReconnectingWebSocket backs off exponentially with jitter, up to maxDelay", async () => {
  const client = new ReconnectingWebSocket(`ws://127.0.0.1:${freePort()}/`, {
    minDelay: 8,
    maxDelay: 32,
  });
  const events = new Events(client);
  try {
    const details = await events.until("reconnecting", 5) as Array<
      { attempt: number; delay: number }
    >;
    const ceilings = [8, 16, 32, 32, 32];
    details.slice(0, 5).forEach(({ attempt, delay }, i) => {
      assert.equal(attempt, i + 1);
      const ceiling = ceilings[i]!;
      assert.ok(
        delay >= ceiling / 2 && delay <= ceiling,
        `attempt ${attempt}: ${delay} ms is not within [${
          ceiling / 2
        }, ${ceiling}]`,
      );
    });
  } finally {
    await closeClient(client, events);
  }
});

Deno.test("ReconnectingWebSocket rejects a send when its queue is full, and any send after close()", async () => {
  const client = new ReconnectingWebSocket(`ws://127.0.0.1:${freePort()}/`, {
    maxQueued: 2,
  });
  const events = new Events(client);
  client.send("a");
  client.send("b");
  assert.throws(() => client.send("c"), {
    name: "RangeError",
    message: "Cannot send: 2 frames wait for the connection already",
  });
  assert.equal(client.queued, 2);
  await closeClient(client, events);
  assert.equal(client.readyState, WebSocket.CLOSED);
  assert.equal(client.queued, 0);
  assert.throws(() => client.send("d"), { name: "InvalidStateError" });
  assert.throws(
    () => new ReconnectingWebSocket("ws://127.0.0.1:1/", { maxDelay: 1 }),
    { name: "RangeError", message: /maxDelay must be a number from 500/ },
  );
});

Deno.test("ReconnectingWebSocket.close() while connected ends it for good", async () => {
  await using h = await startService();
  await echo(h, "/echo");
  const client = new ReconnectingWebSocket(h.ws("/echo"), { minDelay: 1 });
  const events = new Events(client);
  await events.until("open");
  await closeClient(client, events);
  assert.deepEqual(events.of("close"), [{ code: 1000, reason: "" }]);
  assert.deepEqual(events.of("reconnecting"), []);
  assert.equal(client.readyState, WebSocket.CLOSED);
});

Deno.test("client.ts type-checks with the DOM library alone (no Deno types)", async () => {
  const check = (file: string) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "check",
        "--config",
        "tests/fixtures/browser_lib.json",
        file,
      ],
      env: { NO_COLOR: "1" },
    }).output();
  const ok = await check("src/websocket/client.ts");
  assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
  // The same check refuses a Deno API, so it would catch one in the client.
  const denoOnly = await check("tests/fixtures/deno_only.ts");
  assert.notEqual(denoOnly.code, 0);
  assert.match(
    new TextDecoder().decode(denoOnly.stderr),
    /Cannot find name 'Deno'/,
  );
});

/** A message as text: strings as they are, bytes as `1,2,3`. */
function show(data: unknown): string {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data).join(",");
  if (data instanceof Uint8Array) return data.join(",");
  return JSON.stringify(data);
}
