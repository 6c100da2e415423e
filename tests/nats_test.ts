/**
 * Several processes joined by NATS: child `deno run` programs on the test's
 * own `nats-server` (a free port), checked by their typed reports.
 */
import assert from "node:assert/strict";
import { connect, headers } from "@nats-io/transport-node";
import { Child } from "./_child.ts";
import type { ReportOf } from "./fixtures/scenario.ts";
import {
  freePort,
  type NatsServer,
  natsSkipReason,
  startNatsServer,
} from "./_nats.ts";

const FIXTURE = new URL("./fixtures/nats_program.ts", import.meta.url);
const skip = await natsSkipReason();
const missing = skip === undefined ? "" : ` (skipped: ${skip})`;

/** A NATS test: its own server, its own namespace, every child stopped. */
function natsTest(
  name: string,
  fn: (context: NatsContext) => Promise<void>,
): void {
  Deno.test({ name: name + missing, ignore: missing !== "" }, async () => {
    const server = await startNatsServer();
    if (typeof server === "string") throw new Error(server);
    const context = new NatsContext(server);
    try {
      await fn(context);
    } finally {
      await context.close();
    }
  });
}

class NatsContext {
  readonly namespace = `t${crypto.randomUUID().slice(0, 8)}`;
  readonly children: Child[] = [];
  #clients: Array<{ close(): Promise<void> }> = [];
  constructor(readonly server: NatsServer) {}

  /** Starts a child program on scenario `scenario`. */
  start(
    scenario: string,
    params: unknown,
    url = this.server.url,
    publishTimeout = 30_000,
  ): Child {
    const child = new Child(FIXTURE, [
      JSON.stringify({ scenario, params }),
      url,
      this.namespace,
      "50",
      String(publishTimeout),
    ]);
    this.children.push(child);
    return child;
  }

  /** Waits for every child's `subscribed` report. */
  async ready(...children: Child[]): Promise<void> {
    await Promise.all(
      children.map((child) =>
        child.waitFor((line) => line.includes('"kind":"subscribed"'))
      ),
    );
  }

  /** A plain NATS client, closed with the test. */
  async client(): Promise<Awaited<ReturnType<typeof connect>>> {
    const client = await connect({ servers: this.server.url });
    this.#clients.push(client);
    return client;
  }

  /** Publishes `q://go` with a plain client. */
  async go(): Promise<void> {
    const client = await this.client();
    client.publish(`${this.namespace}.q.go`, "true");
    await client.flush();
  }

  /** Stops a child with SIGTERM; returns its run report. */
  async stop(child: Child): Promise<RunResult> {
    child.process.kill("SIGTERM");
    const status = await child.exit(20_000);
    const line = child.lines.find((l) => l.startsWith("RESULT "));
    assert.ok(
      line,
      `no RESULT line (exit ${status.code}):\n${child.lines.join("\n")}`,
    );
    return JSON.parse(line.slice(7));
  }

  async close(): Promise<void> {
    for (const child of this.children) {
      try {
        child.process.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.exit(5000);
    }
    for (const client of this.#clients) await client.close();
    await this.server[Symbol.asyncDispose]();
  }
}

/** `promise`, or an error naming `what` after 30 s (a test never hangs). */
async function within<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after 30 s waiting for ${what}`)),
      30_000,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface RunResult {
  failures: unknown[];
  undelivered: unknown[];
}

function tallies(
  child: Child,
  when: "reached" | "terminate" = "reached",
): ReportOf<"tally">[] {
  return child.reportsOf("tally").filter((t) => t.when === when);
}

natsTest(
  "NATS: two processes exchange 100,000 messages each way: every subscriber gets all 200,000 once, in each publisher's order",
  async (t) => {
    const count = 100_000;
    const a = t.start("exchange", { me: "A", count });
    const b = t.start("exchange", { me: "B", count });
    await t.ready(a, b);
    await t.go();
    const reached = (child: Child) =>
      child.waitFor((line) => line.includes('"when":"reached"'), 2, 90_000);
    await Promise.all([reached(a), reached(b)]);
    for (const child of [a, b]) {
      for (const tally of tallies(child)) {
        assert.deepEqual(
          {
            count: tally.count,
            duplicates: tally.duplicates,
            outOfOrder: tally.outOfOrder,
            publishers: tally.publishers,
          },
          { count: 2 * count, duplicates: 0, outOfOrder: 0, publishers: 2 },
          `${tally.service} (${tally.queue})`,
        );
      }
    }
    for (const child of [a, b]) {
      const result = await t.stop(child);
      assert.deepEqual(result, { failures: [], undelivered: [] });
      // Nothing more arrived after the tally was reached (no duplicate late).
      for (const tally of tallies(child, "terminate")) {
        assert.equal(tally.count, 2 * count, tally.service);
      }
    }
  },
);

natsTest(
  "NATS: a group spans processes: each job reaches exactly one member, and members in both processes get some",
  async (t) => {
    const count = 2000;
    const a = t.start("group", { me: "A", count });
    const b = t.start("group", { me: "B", count: 0 });
    await t.ready(a, b);
    await t.go();
    const jobs = () =>
      [a, b].flatMap((child) =>
        child.reportsOf("echo").map((echo) => echo.data.index)
      );
    await Child.waitForAll([a, b], () => jobs().length >= count, 60_000);
    const got = jobs();
    assert.equal(new Set(got).size, count, "every job once");
    assert.equal(got.length, count, "no job twice");
    for (const child of [a, b]) {
      assert.ok(child.reportsOf("echo").length > 0, "both processes work");
      const result = await t.stop(child);
      assert.deepEqual(result, { failures: [], undelivered: [] });
    }
    assert.equal(jobs().length, count, "no job arrived after the count");
  },
);

natsTest(
  "NATS: ctx.request() reaches a responder in another process; a queue nobody serves anywhere is a NoRespondersError at once",
  async (t) => {
    const asker = t.start("requests", { ask: true, adder: false });
    const adder = t.start("requests", { ask: false, adder: true });
    await t.ready(asker, adder);
    await t.go();
    await asker.waitFor((line) => line.includes('"kind":"requestFailed"'));
    assert.deepEqual(
      asker.reportsOf("answer").map((r) => r.sum),
      [42],
    );
    assert.deepEqual(
      asker.reportsOf("requestFailed").map((r) => r.error),
      ["NoRespondersError"],
    );
    for (const child of [asker, adder]) {
      assert.deepEqual(await t.stop(child), { failures: [], undelivered: [] });
    }
  },
);

natsTest(
  "NATS: a WebSocket client of process A gets what process B publishes on ws://outbound/client, and B's answer on the frame's meta.replyTo",
  async (t) => {
    const port = freePort();
    const web = t.start("websocket", { port });
    const other = t.start("websocketPublisher", {});
    await t.ready(web, other);
    const socket = new WebSocket(`ws://127.0.0.1:${port}/client`);
    const frames: unknown[] = [];
    const arrived = new Set<() => void>();
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      frames.push(
        typeof event.data === "string"
          ? JSON.parse(event.data)
          : new Uint8Array(event.data),
      );
      for (const wake of arrived) wake();
    };
    const until = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (frames.length < n) return;
          arrived.delete(check);
          resolve();
        };
        arrived.add(check);
        check();
      });
    try {
      await within(
        "the WebSocket's open",
        new Promise((resolve, reject) => {
          socket.onopen = resolve;
          socket.onerror = reject;
        }),
      );
      await t.go();
      await within("the first frame", until(1));
      assert.deepEqual(frames[0], { to: "every client" });
      socket.send(JSON.stringify({ publisher: "browser", index: 1 }));
      await within("the echo frame", until(2));
      // The service publishes a text frame as the string it is.
      assert.deepEqual(frames[1], {
        echoed: JSON.stringify({ publisher: "browser", index: 1 }),
      });
      // Nothing else: NATS's "no responders" to the connection's
      // ws://connected/client (nobody subscribes) is not a frame.
      assert.equal(frames.length, 2);
    } finally {
      const closed = new Promise((resolve) => (socket.onclose = resolve));
      socket.close();
      await within("the WebSocket's close", closed);
    }
    for (const child of [web, other]) {
      assert.deepEqual(await t.stop(child), { failures: [], undelivered: [] });
    }
  },
);

natsTest(
  "NATS: a plain NATS client reads our JSON, and what it publishes (JSON with headers and a reply subject, or bytes) reaches our subscribers",
  async (t) => {
    const program = t.start("plain", {});
    await t.ready(program);
    const client = await t.client();
    const out = client.subscribe(`${t.namespace}.q.out.json`, { max: 1 });
    await client.flush();
    await t.go();
    const first = await within(
      "our JSON message",
      (async () => {
        for await (const msg of out) return msg;
      })(),
    );
    assert.deepEqual(first?.json(), { hello: "nats", n: [1, 2.5, null] });
    // Plain JSON; its one header names the publisher (process, pool, service).
    assert.deepEqual([...first!.headers!.keys()], ["Mf-From"]);
    assert.match(first!.headers!.get("Mf-From"), /^[0-9a-f]{16} - \S+\/\S+$/);
    const h = headers();
    h.set("X-Trace", "abc");
    const reply = await client.request(
      `${t.namespace}.q.in.json`,
      JSON.stringify({ publisher: "go-client", index: 7 }),
      { headers: h, timeout: 10_000 },
    );
    assert.deepEqual(reply.json(), {
      echoed: { publisher: "go-client", index: 7 },
    });
    client.publish(`${t.namespace}.q.in.bytes`, new Uint8Array([0xff, 0, 1]));
    await client.flush();
    await program.waitFor((line) => line.includes('"queue":"q://in/bytes"'));
    const [json, bytes] = program.reportsOf("echo");
    assert.deepEqual(json?.data, { publisher: "go-client", index: 7 });
    assert.deepEqual(json?.headers, { "X-Trace": "abc" });
    assert.deepEqual(json?.from, { pool: "nats", service: "" });
    assert.match(json?.replyTo ?? "", /^reply:\/\/nats\/_INBOX\./);
    assert.deepEqual(bytes?.data, { 0: 255, 1: 0, 2: 1 }, "a Uint8Array");
    assert.deepEqual(await t.stop(program), { failures: [], undelivered: [] });
  },
);

natsTest(
  "NATS: the server killed and restarted mid-stream: nothing the publisher sent after the outage began is lost",
  async (t) => {
    const count = 3000;
    // The publisher reaches the server through a proxy the test opens only
    // once the reader is back: core NATS drops what is published to a
    // subject nobody subscribes to at that moment (see the README).
    await using proxy = await Proxy.start(t.server.port);
    const reader = t.start("streamReader", { count });
    const writer = t.start(
      "streamer",
      { count },
      `nats://127.0.0.1:${proxy.port}`,
    );
    await t.ready(reader, writer);
    await t.go();
    await writer.waitFor((line) => line.includes('"kind":"published"'), 3);
    proxy.refuse();
    await t.server.kill();
    const published = () =>
      Math.max(0, ...writer.reportsOf("published").map((r) => r.count));
    const before = published();
    // The publisher goes on (its messages wait) while the server is down.
    await writer.waitFor(
      (line) => line.includes('"kind":"published"'),
      5,
      30_000,
    );
    const outageBegan = published();
    assert.ok(outageBegan > before);
    await t.server.restart();
    await reader.waitFor(
      (line) => line.includes("NATS: connected again"),
      1,
      30_000,
    );
    proxy.accept();
    const indices = () => reader.reportsOf("echo").map((e) => e.data.index);
    await Child.waitForAll(
      [reader],
      () => indices().includes(count - 1),
      60_000,
    );
    const got = new Set(indices());
    const lost: number[] = [];
    for (let index = outageBegan; index < count; index++) {
      if (!got.has(index)) lost.push(index);
    }
    assert.deepEqual(
      lost,
      [],
      "nothing published after the outage began is lost",
    );
    assert.deepEqual((await t.stop(reader)).failures, []);
    assert.deepEqual(await t.stop(writer), { failures: [], undelivered: [] });
    // The outage and the recovery are logged once each per process, however
    // many connections its pools have.
    for (const child of [reader, writer]) {
      const lines = (text: string) =>
        child.lines.filter((line) => line.includes(text)).length;
      assert.equal(lines("WARN  [main] NATS: "), 1, child.lines.join("\n"));
      assert.equal(lines("NATS: connected again"), 1);
    }
  },
);

natsTest(
  "NATS: while the server is down, publish waits once the buffer is full and rejects with a NatsUnavailableError after publishTimeout; a stop then reports what NATS never took",
  async (t) => {
    const flooder = t.start("untilRejected", {}, t.server.url, 300);
    await t.ready(flooder);
    await t.go();
    await flooder.waitFor((line) => line.includes('"kind":"published"'));
    await t.server.kill();
    await flooder.waitFor((line) => line.includes('"kind":"requestFailed"'));
    const [failed] = flooder.reportsOf("requestFailed");
    assert.match(
      failed!.error,
      /^NatsUnavailableError after \d+: Publish on "q:\/\/flood" waited 300 ms for NATS/,
    );
    flooder.process.kill("SIGTERM");
    const status = await flooder.exit(20_000);
    const result: RunResult = JSON.parse(
      flooder.lines.find((l) => l.startsWith("RESULT "))!.slice(7),
    );
    assert.equal(status.code, 1, "undelivered messages make the exit code 1");
    assert.deepEqual(result.failures, []);
    assert.ok(result.undelivered.length > 0, "counted, not lost silently");
  },
);

natsTest(
  "NATS: the distributed example: frames to the web process are answered by the workers' group, each once, by both workers",
  async (t) => {
    const port = freePort();
    const example = (name: string, ...args: string[]): Child => {
      const child = new Child(
        new URL(`../examples/distributed/${name}.ts`, import.meta.url),
        [`--nats=${t.server.url}`, ...args],
      );
      t.children.push(child);
      return child;
    };
    const web = example("web", `--port=${port}`);
    const workers = [example("worker"), example("worker")];
    // Its URL is printed once it takes WebSocket clients ("Listening on"
    // comes before that: an upgrade then gets 503).
    await web.waitFor((line) => line === `http://localhost:${port}/`);
    const answering = (child: Child) =>
      child.waitFor((line) => line.includes("Answering the frames"), 2);
    await Promise.all(workers.map(answering));
    const socket = new WebSocket(`ws://127.0.0.1:${port}/client`);
    const answers: Array<{ timestamp: number; by: string }> = [];
    const done = Promise.withResolvers<void>();
    socket.onmessage = (event) => {
      answers.push(JSON.parse(event.data));
      if (answers.length === 20) done.resolve();
    };
    await within(
      "the WebSocket's open",
      new Promise((resolve) => (socket.onopen = resolve)),
    );
    for (let i = 0; i < 20; i++) socket.send(JSON.stringify({ timestamp: i }));
    await within("20 answers", done.promise);
    const closed = new Promise((resolve) => (socket.onclose = resolve));
    socket.close();
    await within("the WebSocket's close", closed);
    assert.deepEqual(
      answers.map((a) => a.timestamp).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i),
    );
    const processes = new Set(answers.map((a) => a.by.split(" process ")[1]));
    assert.equal(processes.size, 2, "both workers answer");
    for (const child of [web, ...workers]) {
      child.process.kill("SIGTERM");
      assert.equal((await child.exit()).code, 0, child.lines.join("\n"));
    }
  },
);

natsTest(
  "NATS: a process killed with SIGKILL leaves the other running: its group members are gone, requests go to the members left",
  async (t) => {
    const doomed = t.start("requests", { ask: false, adder: true });
    const survivor = t.start("requests", { ask: true, adder: true });
    await t.ready(doomed, survivor);
    doomed.process.kill("SIGKILL");
    const status = await doomed.exit();
    assert.equal(status.signal, "SIGKILL");
    await t.go();
    await survivor.waitFor((line) => line.includes('"kind":"requestFailed"'));
    assert.deepEqual(survivor.reportsOf("answer").map((r) => r.sum), [42]);
    assert.deepEqual(await t.stop(survivor), { failures: [], undelivered: [] });
  },
);

/**
 * A TCP proxy in front of the server that the test opens and closes: while
 * refusing, it closes every connection (and the ones it carried) at once.
 */
class Proxy {
  #listener: Deno.TcpListener;
  #target: number;
  #accepting = true;
  #pairs = new Set<Deno.TcpConn>();
  #serving: Promise<void>;
  #pipes = new Set<Promise<void>>();

  private constructor(listener: Deno.TcpListener, target: number) {
    this.#listener = listener;
    this.#target = target;
    this.#serving = this.#serve();
  }

  static start(target: number): Promise<Proxy> {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return Promise.resolve(new Proxy(listener, target));
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  refuse(): void {
    this.#accepting = false;
    for (const conn of this.#pairs) close(conn);
    this.#pairs.clear();
  }

  accept(): void {
    this.#accepting = true;
  }

  async #serve(): Promise<void> {
    for await (const conn of this.#listener) {
      if (!this.#accepting) {
        close(conn);
        continue;
      }
      let upstream: Deno.TcpConn;
      try {
        upstream = await Deno.connect({
          hostname: "127.0.0.1",
          port: this.#target,
        });
      } catch {
        close(conn);
        continue;
      }
      this.#pairs.add(conn).add(upstream);
      const pipe = Promise.all([
        conn.readable.pipeTo(upstream.writable).catch(() => {}),
        upstream.readable.pipeTo(conn.writable).catch(() => {}),
      ]).then(() => {
        this.#pairs.delete(conn);
        this.#pairs.delete(upstream);
        close(conn);
        close(upstream);
      });
      this.#pipes.add(pipe);
      pipe.then(() => this.#pipes.delete(pipe));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.refuse();
    this.#listener.close();
    await this.#serving.catch(() => {});
    await Promise.all(this.#pipes);
  }
}

function close(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}
