/**
 * The WebSocketService in real pools (Web Workers, the real bus), with the
 * consumer in the service's pool and in another pool.
 */
import assert from "node:assert/strict";
import { startProgram } from "./_helpers.ts";
import {
  pools,
  type WebSocketProgramConfig,
} from "./fixtures/websocket_program.ts";
import {
  deadline,
  freePort,
  TestClient,
} from "./fixtures/websocket_helpers.ts";

const FIXTURE = new URL("./fixtures/websocket_program.ts", import.meta.url);
/** The first start type-checks the worker module (about 5 s when cold). */
const START = 60_000;

/** The next message of `client` that passes `test`, skipping others. */
async function nextMatching(
  client: TestClient,
  test: (message: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  while (true) {
    const message = await client.nextJson() as Record<string, unknown>;
    if (test(message)) return message;
  }
}

for (const split of [false, true]) {
  const where = split ? "another pool" : "the service's pool";
  Deno.test(`WebSocketService with its consumer in ${where}: routing, replies, events, stop`, async (t) => {
    const config: WebSocketProgramConfig = { port: freePort(), split };
    const program = startProgram(FIXTURE, pools(config), config);
    const url = (path: string) => `ws://127.0.0.1:${config.port}${path}`;
    const clients: TestClient[] = [];
    const open = async (path: string) => {
      const client = await TestClient.open(url(path));
      clients.push(client);
      return client;
    };
    try {
      await deadline(program.main.ready, "main.ready", START);
      const monitor = await open("/monitor");

      await t.step(
        "a /client frame comes back as the original's OK answer",
        async () => {
          const client = await open("/client");
          const timestamp = Date.now();
          client.send(JSON.stringify({ timestamp }));
          assert.deepEqual(await client.nextJson(), {
            status: "OK",
            timestamp,
          });
        },
      );

      await t.step(
        "text stays string and binary stays Uint8Array",
        async () => {
          const client = await open("/echo");
          client.send("text");
          client.send(new Uint8Array([0, 1, 254, 255]));
          assert.equal(await client.next(), "text");
          assert.deepEqual(
            await client.next(),
            new Uint8Array([0, 1, 254, 255]),
          );
        },
      );

      await t.step(
        "meta carries replyTo, connectionId, path and query",
        async () => {
          const client = await open("/meta?user=ann");
          client.send("?");
          const meta = await client.nextJson() as {
            queue: string;
            replyTo: string;
            headers: Record<string, string>;
          };
          assert.equal(meta.queue, "ws://inbound/meta");
          assert.equal(
            meta.replyTo,
            `ws://connection/WebSocketService/${meta.headers.connectionId}`,
          );
          assert.equal(meta.headers.path, "/meta");
          assert.equal(meta.headers.query, "user=ann");
        },
      );

      await t.step(
        "a reply on replyTo reaches the sending connection only",
        async () => {
          const a = await open("/echo");
          const b = await open("/echo");
          b.send("for b");
          assert.equal(await b.next(), "for b");
          const cast = await open("/cast");
          cast.send(JSON.stringify({ to: "/echo", data: "marker" }));
          assert.equal(await a.next(), "marker", "a got nothing before");
          assert.equal(await b.next(), "marker");
        },
      );

      await t.step(
        "ws://outbound/<path> reaches every connection on the path and no others",
        async () => {
          const a1 = await open("/room/a");
          const a2 = await open("/room/a");
          const b = await open("/room/b");
          const cast = await open("/cast");
          cast.send(JSON.stringify({ to: "/room/a", data: { hello: "a" } }));
          cast.send(JSON.stringify({ to: "/room/b", data: "marker" }));
          assert.deepEqual(await a1.nextJson(), { hello: "a" });
          assert.deepEqual(await a2.nextJson(), { hello: "a" });
          assert.equal(await b.next(), "marker", "b got nothing before");
        },
      );

      await t.step("the root path / routes to ws://inbound/", async () => {
        const root = await open("/");
        root.send("at the root");
        assert.equal(await root.next(), "at the root");
      });

      await t.step(
        "connections are announced on ws://connected and ws://disconnected",
        async () => {
          const client = await TestClient.open(url("/events?x=1"));
          const connected = await nextMatching(
            monitor,
            (m) => m.path === "/events" && m.kind === "connected",
          );
          assert.equal(connected.query, "x=1");
          assert.equal(typeof connected.id, "string");
          await client.close(4000, "done");
          const disconnected = await nextMatching(
            monitor,
            (m) => m.path === "/events" && m.kind === "disconnected",
          );
          assert.deepEqual(disconnected, {
            ...connected,
            kind: "disconnected",
            code: 4000,
            reason: "done",
            dropped: 0,
          });
        },
      );

      await t.step(
        "stopping the program closes every client with 1001",
        async () => {
          const report = await deadline(program.stop(), "the program's stop");
          assert.deepEqual(report.failures, []);
          for (const client of clients) {
            const closed = await deadline(client.closed, "a client's close");
            assert.equal(closed.code, 1001);
          }
        },
      );
    } finally {
      await program.stop();
      await Promise.all(clients.map((c) => c.close()));
    }
  });
}

Deno.test("WebSocketService in a pool ends in error naming host:port when the port is in use", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const config: WebSocketProgramConfig = { port: taken.addr.port, split: true };
  const program = startProgram(FIXTURE, pools(config), config);
  try {
    await program.waitUntil(
      () =>
        program.statuses.some((s) =>
          s.service === "WebSocketService" && s.status === "error"
        ),
      START,
    );
    const report = await deadline(program.stop(), "the program's stop");
    assert.equal(report.failures.length, 1);
    const [failure] = report.failures;
    assert.equal(failure!.pool, "web");
    assert.equal(failure!.service, "WebSocketService");
    assert.match(
      failure!.message,
      new RegExp(`127\\.0\\.0\\.1:${taken.addr.port} is already in use`),
    );
  } finally {
    await program.stop();
    taken.close();
  }
});
