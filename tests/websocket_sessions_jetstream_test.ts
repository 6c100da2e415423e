/**
 * Sessions across servers (`history: "jetstream"`): two server processes
 * (tests/fixtures/websocket_shared_program.ts, run from a folder outside
 * the repository) on a private `nats-server -js`, behind one TCP proxy the
 * test moves from one to the other. The module's client
 * (ReconnectingWebSocket) joins two rooms on one server, messages are
 * published while it is away, and it comes back on the other server: after
 * a network drop, and after its server was killed with SIGKILL (also with
 * a page in headless Chromium); and a session presented after its window
 * says "window passed".
 */
import assert from "node:assert/strict";
import { Recorder } from "./_recorder.ts";
import { ReconnectingWebSocket } from "../src/websocket/client.ts";
import { WebSocketService } from "../src/websocket/mod.ts";
import type { Child } from "./_child.ts";
import { findChromium, launchChromium, pageUntil } from "./_chromium.ts";
import { freePort, natsSkipReason, startNatsServer } from "./_nats.ts";
import { type OutsideFolder, outsideFolder } from "./_outside.ts";
import { startProxy } from "./fixtures/tcp_proxy.ts";
import { startServices } from "../src/testing/mod.ts";
import { deadline } from "./fixtures/websocket_helpers.ts";
import { loadJetStream, loadNatsClient } from "../src/nats/client.ts";
import { queueToSubject } from "../src/nats/subject.ts";

const skip = await natsSkipReason();
const PROGRAM = (await Deno.readTextFile(
  new URL("./fixtures/websocket_shared_program.ts", import.meta.url),
)).replaceAll('"../../', '"MOD/');

interface Bed {
  /**
   * Starts a server on `port` with `window` (and `historyMaxBytes`, when
   * given) and waits until it is ready.
   */
  server(port: number, historyMaxBytes?: number): Promise<Child>;
  /** The history stream, read with a plain JetStream client. */
  stream(): Promise<HistoryStream>;
}

/** What the servers stored in the history stream. */
interface HistoryStream {
  /** The stream's max age and dedupe window, in ms. */
  maxAge: number;
  dedupeWindow: number;
  /** The frames stored on `queue`, in order (text after the kind byte). */
  frames(queue: string): Promise<string[]>;
}

/** Reads the history stream of namespace `namespace` on `url`. */
async function historyStream(
  url: string,
  namespace: string,
): Promise<HistoryStream> {
  const nats = await loadNatsClient();
  const JetStream = await loadJetStream();
  const connection = await nats.connect({ servers: url });
  try {
    const jsm = await JetStream.jetstreamManager(connection);
    const name = `${namespace}-ws-history-WebSocketService`;
    const { config, state } = await jsm.streams.info(name);
    const all: Array<{ subject: string; text: string }> = [];
    const first = state.messages === 0 ? Infinity : state.first_seq;
    for (let seq = first; seq <= state.last_seq; seq++) {
      const message = await jsm.streams.getMessage(name, { seq });
      if (message === null) continue;
      all.push({
        subject: message.subject,
        text: new TextDecoder().decode(message.data.subarray(1)),
      });
    }
    return {
      maxAge: config.max_age / 1e6,
      dedupeWindow: config.duplicate_window / 1e6,
      frames: (queue) =>
        Promise.resolve(
          all.filter(({ subject }) => subject === queueToSubject(queue, name))
            .map(({ text }) => text),
        ),
    };
  } finally {
    await connection.close();
  }
}

function sharedTest(
  name: string,
  window: number,
  fn: (bed: Bed) => Promise<void>,
  alsoSkip?: string,
): void {
  const why = skip ?? alsoSkip;
  Deno.test({
    name: name + (why === undefined ? "" : ` (skipped: ${why})`),
    ignore: why !== undefined,
    async fn(): Promise<void> {
      const store = await Deno.makeTempDir({ prefix: "mf-js-" });
      const children: Child[] = [];
      try {
        const nats = await startNatsServer(["-js", "-sd", store]);
        if (typeof nats === "string") throw new Error(nats);
        await using _nats = nats;
        await using folder: OutsideFolder = await outsideFolder("file");
        await folder.write("program.ts", PROGRAM);
        const namespace = `t${crypto.randomUUID().slice(0, 8)}`;
        try {
          await fn({
            stream: () => historyStream(nats.url, namespace),
            server: async (port, historyMaxBytes) => {
              const child = folder.start("program.ts", {
                args: [port, window, historyMaxBytes].filter((n) =>
                  n !== undefined
                ).map(String),
                env: {
                  MAGIC_FOUNDATION_NATS: nats.url,
                  MAGIC_FOUNDATION_NATS_NAMESPACE: namespace,
                },
              });
              children.push(child);
              await child.waitFor((line) => line === "READY", 1, 30_000);
              return child;
            },
          });
        } finally {
          for (const child of children) {
            try {
              child.process.kill("SIGTERM");
            } catch {
              // exited already
            }
            await child.exit();
          }
        }
      } finally {
        await Deno.remove(store, { recursive: true });
      }
    },
  });
}

/** A plain connection to a server's `/ctl`: publishes through it. */
class Control implements AsyncDisposable {
  readonly #socket: WebSocket;
  readonly #answers: string[] = [];
  #answered = Promise.withResolvers<void>();
  readonly #closed = Promise.withResolvers<void>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (e) => {
      this.#answers.push(String(e.data));
      this.#answered.resolve();
    };
    socket.onclose = () => {
      this.#closed.resolve();
      this.#answered.resolve();
    };
  }

  static async open(port: number): Promise<Control> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ctl`);
    const opened = Promise.withResolvers<void>();
    socket.onopen = () => opened.resolve();
    socket.onerror = () => opened.reject(new Error("no /ctl connection"));
    await deadline(opened.promise, "the control connection");
    return new Control(socket);
  }

  /** Publishes `text` on `queue` (through the server) and waits for it. */
  async publish(queue: string, text: string): Promise<void> {
    this.#socket.send(`${queue} ${text}`);
    while (this.#answers.length === 0) {
      await deadline(this.#answered.promise, `the publish on ${queue}`);
      this.#answered = Promise.withResolvers();
    }
    assert.equal(this.#answers.shift(), "sent");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#socket.close();
    await deadline(this.#closed.promise, "the control connection's close");
  }
}

/** Joins `red` and `blue`; returns the client's reply queue. */
async function joinTwoRooms(
  client: ReconnectingWebSocket,
  seen: Recorder,
): Promise<string> {
  client.send("join red");
  client.send("join blue");
  await seen.until(() => seen.messages.length === 2, "the joins");
  // Either server's consumer may answer either join first.
  assert.deepEqual(
    seen.messages.map((m) => m.split(" ").slice(0, 2).join(" ")).sort(),
    ["joined blue", "joined red"],
  );
  return seen.messages[0]!.split(" ")[2]!;
}

/** Publishes 40 messages on the rooms, the path and the reply queue. */
async function publishMissed(
  control: Control,
  replyTo: string,
  tag: string,
): Promise<string[]> {
  const missed: string[] = [];
  for (let i = 0; i < 40; i++) {
    const [queue, text] = [
      ["ws://room/red", `red ${tag}${i}`],
      ["ws://room/blue", `blue ${tag}${i}`],
      ["ws://outbound/s", `path ${tag}${i}`],
      [replyTo, `direct ${tag}${i}`],
    ][i % 4]!;
    await control.publish(queue!, text!);
    missed.push(text!);
  }
  return missed;
}

/** Every missed message once and in order, then `live`. */
function assertRecovered(received: string[], missed: string[]): void {
  assert.deepEqual(received, [...missed, "live"]);
}

sharedTest(
  "history jetstream: a client in two rooms recovers on another server after a network drop, and after its server was killed with SIGKILL",
  120_000,
  async (bed) => {
    const [portA, portB] = [freePort(), freePort()];
    const a = await bed.server(portA);
    await bed.server(portB);
    await using proxy = startProxy(portA);
    const client = new ReconnectingWebSocket(
      `ws://127.0.0.1:${proxy.port}/s`,
      { minDelay: 1, maxDelay: 5 },
    );
    const seen = new Recorder(client);
    try {
      await seen.until(() => seen.opens.length === 1, "the first open");
      assert.deepEqual(seen.opens[0], { recovered: false });
      const replyTo = await joinTwoRooms(client, seen);

      // A network drop; the client comes back on B.
      proxy.pause();
      proxy.target = portB;
      proxy.cut();
      let start = seen.messages.length;
      {
        await using onB = await Control.open(portB);
        const missed = await publishMissed(onB, replyTo, "b");
        proxy.resume();
        await seen.until(() => seen.opens.length === 2, "the recovery on B");
        assert.deepEqual(seen.opens[1], { recovered: true });
        // The rooms came along: a live message on "red" reaches it on B.
        await onB.publish("ws://room/red", "live");
        await seen.until(() => seen.messages.at(-1) === "live", "live on B");
        assertRecovered(seen.messages.slice(start), missed);
      }

      // Back to A, which is killed with SIGKILL while the client is there.
      proxy.target = portA;
      proxy.cut();
      await seen.until(() => seen.opens.length === 3, "the move to A");
      assert.deepEqual(seen.opens[2], { recovered: true });
      proxy.pause();
      proxy.target = portB;
      a.process.kill("SIGKILL");
      await a.exit();
      proxy.cut();
      start = seen.messages.length;
      {
        await using onB = await Control.open(portB);
        const missed = await publishMissed(onB, replyTo, "k");
        proxy.resume();
        await seen.until(() => seen.opens.length === 4, "the recovery on B");
        assert.deepEqual(seen.opens[3], { recovered: true });
        await onB.publish(replyTo, "live");
        await seen.until(() => seen.messages.at(-1) === "live", "live on B");
        assertRecovered(seen.messages.slice(start), missed);
      }
    } finally {
      const closed = Promise.withResolvers<void>();
      client.addEventListener("close", () => closed.resolve());
      client.close();
      await deadline(closed.promise, "the client's close");
    }
  },
);

sharedTest(
  "history jetstream: a session presented to another server after its window says 'window passed'",
  2_000,
  async (bed) => {
    const [portA, portB] = [freePort(), freePort()];
    const a = await bed.server(portA);
    await bed.server(portB);
    await using proxy = startProxy(portA);
    const client = new ReconnectingWebSocket(
      `ws://127.0.0.1:${proxy.port}/s`,
      { minDelay: 1, maxDelay: 5 },
    );
    const seen = new Recorder(client);
    try {
      await seen.until(() => seen.opens.length === 1, "the first open");
      await joinTwoRooms(client, seen);
      proxy.pause();
      proxy.target = portB;
      proxy.cut();
      // A announces the drop when the window ends.
      await a.waitFor((line) => line === "DISCONNECTED 1006");
      proxy.resume();
      await seen.until(() => seen.opens.length === 2, "the open on B");
      assert.deepEqual(seen.opens[1], {
        recovered: false,
        reason: "window passed",
      });
    } finally {
      const closed = Promise.withResolvers<void>();
      client.addEventListener("close", () => closed.resolve());
      client.close();
      await deadline(closed.promise, "the client's close");
    }
  },
);

sharedTest(
  "history jetstream: two servers append every message, the stream stores each once (ten alike from one publisher stay ten), and a server that stops first finishes its appends",
  120_000,
  async (bed) => {
    const [portA, portB] = [freePort(), freePort()];
    const a = await bed.server(portA);
    const b = await bed.server(portB);
    const sent: string[] = [];
    {
      await using onA = await Control.open(portA);
      for (let i = 0; i < 20; i++) {
        const text = i % 2 === 0 ? "alike" : `distinct ${i}`;
        await onA.publish("ws://outbound/s", text);
        sent.push(text);
      }
    }
    // Both servers stop: every append they began is done.
    for (const server of [a, b]) {
      server.process.kill("SIGTERM");
      await server.exit();
    }
    const stream = await bed.stream();
    assert.deepEqual(await stream.frames("ws://outbound/s"), sent);
  },
);

sharedTest(
  "history jetstream: a server started later numbers messages alike as the others did (from the ids in the stream), so one it alone appends is stored",
  120_000,
  async (bed) => {
    const [portA, portB] = [freePort(), freePort()];
    const a = await bed.server(portA);
    {
      await using onA = await Control.open(portA);
      await onA.publish("ws://outbound/s", "alike");
    }
    a.process.kill("SIGTERM");
    await a.exit();
    // B starts after A appended "alike" once, and now appends alone.
    const b = await bed.server(portB);
    {
      await using onB = await Control.open(portB);
      await onB.publish("ws://outbound/s", "alike");
    }
    b.process.kill("SIGTERM");
    await b.exit();
    const stream = await bed.stream();
    assert.deepEqual(await stream.frames("ws://outbound/s"), [
      "alike",
      "alike",
    ]);
  },
);

sharedTest(
  "history jetstream: the stream dedupes over its whole max age (the recovery window), not 10 s, so a server that appends a message late does not store it twice",
  120_000,
  async (bed) => {
    await bed.server(freePort());
    const stream = await bed.stream();
    assert.equal(stream.maxAge, 120_000);
    assert.equal(stream.dedupeWindow, stream.maxAge);
  },
);

sharedTest(
  "history jetstream: historyMaxBytes bounds what one stream may replay; more says 'history trimmed', as in memory",
  120_000,
  async (bed) => {
    const [portA, portB] = [freePort(), freePort()];
    await bed.server(portA, 1000);
    await bed.server(portB, 1000);
    await using proxy = startProxy(portA);
    const client = new ReconnectingWebSocket(
      `ws://127.0.0.1:${proxy.port}/s`,
      { minDelay: 1, maxDelay: 5 },
    );
    const seen = new Recorder(client);
    try {
      await seen.until(() => seen.opens.length === 1, "the first open");
      const replyTo = await joinTwoRooms(client, seen);
      proxy.pause();
      proxy.target = portB;
      proxy.cut();
      {
        // 40 messages of about 155 bytes, 10 per stream: over 1,500 bytes
        // on each, within historyMaxMessages (1,000) but past 1,000 bytes.
        await using onB = await Control.open(portB);
        await publishMissed(onB, replyTo, "x".repeat(150));
      }
      proxy.resume();
      await seen.until(() => seen.opens.length === 2, "the open on B");
      assert.deepEqual(seen.opens[1], {
        recovered: false,
        reason: "history trimmed",
      });
    } finally {
      const closed = Promise.withResolvers<void>();
      client.addEventListener("close", () => closed.resolve());
      client.close();
      await deadline(closed.promise, "the client's close");
    }
  },
);

Deno.test("history jetstream in a program not joined to NATS: initialize() fails with a TypeError that says so", async () => {
  const bed = await startServices({
    pools: { main: [new WebSocketService({ port: 0, history: "jetstream" })] },
    logSink: () => {},
  });
  const report = await bed.stop();
  assert.equal(report.errors.length, 1);
  assert.equal(report.errors[0]!.phase, "initialize");
  assert.match(
    report.errors[0]!.error.message,
    /Cannot start WebSocketService "WebSocketService": history "jetstream" needs the program joined to NATS \(main\.run\(\{ nats \}\)\)$/,
  );
});

Deno.test("history: an unknown value is refused when the service is created", () => {
  assert.throws(
    () => new WebSocketService({ history: "redis" as "memory" }),
    {
      name: "TypeError",
      message:
        'Cannot create WebSocketService "WebSocketService": history must be "memory" or "jetstream", not "redis"',
    },
  );
});

const chromium = findChromium();

sharedTest(
  "history jetstream in headless Chromium: a page in two rooms whose server is killed with SIGKILL recovers on the other server, every message in order",
  120_000,
  async (bed) => {
    const [portA, portB] = [freePort(), freePort()];
    const a = await bed.server(portA);
    await bed.server(portB);
    await using proxy = startProxy(portA);
    await using browser = await launchChromium(chromium!);
    const page = await browser.open(`http://127.0.0.1:${proxy.port}/page`);
    const until = (predicate: string) => page.evaluate(pageUntil(predicate));
    await until("window.opens?.length === 1");
    await page.evaluate(`(socket.send("join red"), socket.send("join blue"))`);
    await until("messages.length === 2");
    const replyTo = (await page.evaluate<string>("messages[0]")).split(" ")[2]!;

    proxy.pause();
    proxy.target = portB;
    a.process.kill("SIGKILL");
    await a.exit();
    proxy.cut();
    await using onB = await Control.open(portB);
    const missed = await publishMissed(onB, replyTo, "c");
    proxy.resume();
    await until("opens.length === 2");
    await onB.publish("ws://room/blue", "live");
    await until("messages.at(-1) === 'live'");
    assert.deepEqual(await page.evaluate("opens"), [
      { recovered: false },
      { recovered: true },
    ]);
    assertRecovered(await page.evaluate("messages.slice(2)"), missed);
    await browser.close();
  },
  chromium === undefined
    ? "no chromium found (apt-get install chromium, or set CHROMIUM_BIN)"
    : undefined,
);
