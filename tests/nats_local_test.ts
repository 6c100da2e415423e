/**
 * Local flows stay local: a message goes to NATS only when a subscriber
 * outside its process can want it (another magic-foundation process that
 * announced it, or a queue listed in `exports`). Child programs in a folder
 * outside the repository, on the test's own `nats-server`; a plain client
 * subscribed to everything counts what reaches the server.
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import type { RunReport } from "@magic/foundation";
import type { Child } from "./_child.ts";
import { type NatsServer, natsSkipReason, startNatsServer } from "./_nats.ts";
import { type OutsideFolder, outsideFolder } from "./_outside.ts";

const skip = await natsSkipReason();
const PROGRAM = (await Deno.readTextFile(
  new URL("./fixtures/nats_local_program.ts", import.meta.url),
)).replace('"../../mod.ts"', '"MOD/mod.ts"');

type Client = Awaited<ReturnType<typeof connect>>;

interface Bed {
  server: NatsServer;
  folder: OutsideFolder;
  namespace: string;
  /** Starts the program in `role`. */
  start(role: string, arg?: string, env?: Record<string, string>): Child;
  /** A plain client subscribed to every queue subject of the namespace. */
  spy(): Promise<Spy>;
}

/** What a plain client saw on the namespace's queue subjects, in order. */
interface Spy {
  client: Client;
  subjects: string[];
  /** Resolves once `subject` has been seen. */
  seen(subject: string): Promise<void>;
}

function natsTest(name: string, fn: (bed: Bed) => Promise<void>): void {
  Deno.test({
    name: name + (skip === undefined ? "" : ` (skipped: ${skip})`),
    ignore: skip !== undefined,
    async fn(): Promise<void> {
      const server = await startNatsServer();
      if (typeof server === "string") throw new Error(server);
      await using _server = server;
      await using folder = await outsideFolder("file");
      await folder.write("program.ts", PROGRAM);
      const namespace = `t${crypto.randomUUID().slice(0, 8)}`;
      const clients: Client[] = [];
      try {
        await fn({
          server,
          folder,
          namespace,
          start: (role, arg = "0", env = {}) =>
            folder.start("program.ts", {
              args: [role, arg],
              env: {
                MAGIC_FOUNDATION_NATS: server.url,
                MAGIC_FOUNDATION_NATS_NAMESPACE: namespace,
                MAGIC_FOUNDATION_NATS_EXPORTS: "q://marker/*",
                ...env,
              },
            }),
          spy: async () => {
            const client = await connect({ servers: server.url });
            clients.push(client);
            const subjects: string[] = [];
            const waiters: Array<[string, () => void]> = [];
            client.subscribe(`${namespace}.>`, {
              callback: (_error, msg) => {
                // Our own control and reply subjects are not queues.
                if (/^[^.]+\._/.test(msg.subject)) return;
                subjects.push(msg.subject);
                for (const [subject, resolve] of waiters) {
                  if (subject === msg.subject) resolve();
                }
              },
            });
            await client.flush();
            return {
              client,
              subjects,
              seen: (subject) => {
                if (subjects.includes(subject)) return Promise.resolve();
                const { promise, resolve } = Promise.withResolvers<void>();
                waiters.push([subject, resolve]);
                return promise;
              },
            };
          },
        });
      } finally {
        for (const client of clients) await client.close();
      }
    },
  });
}

/** Publishes `data` on `queue`'s subject with a plain client. */
async function publish(
  bed: Bed,
  spy: Spy,
  subject: string,
  data: unknown,
): Promise<void> {
  spy.client.publish(`${bed.namespace}.${subject}`, JSON.stringify(data));
  await spy.client.flush();
}

natsTest(
  "NATS: a flow between two pools of one process, and a group whose members are all local, send nothing to the server",
  async (bed) => {
    const count = 500;
    const child = bed.start("local", String(count));
    await child.waitFor((line) => line === "SUBSCRIBED");
    const spy = await bed.spy();
    await publish(bed, spy, "q.go", true);
    await spy.seen(`${bed.namespace}.q.marker.done`);
    await child.waitFor((line) => line === `GOT local ${count}`);
    await child.waitFor((line) => /^GOT member-/.test(line), count);
    // The go message itself is the spy's; the marker is exported.
    assert.deepEqual(spy.subjects, [
      `${bed.namespace}.q.go`,
      `${bed.namespace}.q.marker.done`,
    ]);
    const members = child.lines.filter((line) => /^GOT member-/.test(line));
    assert.equal(members.length, count, "each job once");
  },
);

natsTest(
  "NATS: a process that subscribes and then sends a message to another gets what the other publishes after receiving it (50 rounds, a new queue each), with meta.from naming the publisher's pool and service",
  async (bed) => {
    const echo = bed.start("echo");
    await echo.waitFor((line) => line === "SUBSCRIBED");
    const rounds = bed.start("rounds", "50");
    await rounds.waitFor((line) => line === "ROUNDS DONE", 1, 60_000);
    assert.equal(rounds.lines.filter((l) => l.startsWith("ROUND ")).length, 50);
    // meta.from names the publisher's pool and service in the other process.
    assert.ok(
      rounds.lines.includes('FROM {"pool":"relay","service":"relay"}'),
      rounds.lines.join("\n"),
    );
  },
);

natsTest(
  "NATS: a subscriber process killed with SIGKILL is forgotten: its publisher stops sending for it",
  async (bed) => {
    const sink = bed.start("sink");
    const ticker = bed.start("ticker");
    await Promise.all(
      [sink, ticker].map((child) =>
        child.waitFor((line) => line === "SUBSCRIBED")
      ),
    );
    const spy = await bed.spy();
    const data = `${bed.namespace}.q.data`;
    await publish(bed, spy, "q.tick", { count: 10 });
    await spy.seen(`${bed.namespace}.q.marker.0`);
    assert.equal(spy.subjects.filter((s) => s === data).length, 10);
    sink.process.kill("SIGKILL");
    await sink.exit();
    await ticker.waitFor((line) => line.includes("forgotten"), 1, 20_000);
    await publish(bed, spy, "q.tick", { count: 10 });
    await spy.seen(`${bed.namespace}.q.marker.1`);
    assert.equal(spy.subjects.filter((s) => s === data).length, 10);
  },
);

natsTest(
  "NATS: a plain NATS subscriber gets an exported queue and nothing else; the pools of the publishing process get each message once",
  async (bed) => {
    const count = 200;
    const child = bed.start("local", String(count), {
      MAGIC_FOUNDATION_NATS_EXPORTS: "q://marker/*,q://local",
    });
    await child.waitFor((line) => line === "SUBSCRIBED");
    const spy = await bed.spy();
    await publish(bed, spy, "q.go", true);
    await spy.seen(`${bed.namespace}.q.marker.done`);
    await child.waitFor((line) => line === `GOT local ${count}`);
    await child.waitFor((line) => /^GOT member-/.test(line), count);
    const local = `${bed.namespace}.q.local`;
    assert.deepEqual(spy.subjects, [
      `${bed.namespace}.q.go`,
      ...Array(count).fill(local),
      `${bed.namespace}.q.marker.done`,
    ]);
    // Stopped: no copy came back from the server to a local subscriber.
    child.process.kill("SIGTERM");
    await child.exit();
    assert.equal(
      child.lines.filter((l) => l.startsWith("GOT local ")).length,
      count,
    );
    assert.equal(
      child.lines.filter((l) => /^GOT member-/.test(l)).length,
      count,
    );
    assert.deepEqual(child.result()?.failures, []);
  },
);

natsTest(
  "NATS: a 2 MiB publish or request is refused at the call with a MessageTooLargeError naming the queue, the size and the server's limit; nothing is delivered, local pools included",
  async (bed) => {
    const sink = bed.start("bigsink");
    await sink.waitFor((line) => line === "SUBSCRIBED");
    const big = bed.start("big");
    await big.waitFor((line) => line === "GOT local 1");
    await sink.waitFor((line) => line === "GOT remote 1");
    const refusals = big.lines.filter((line) =>
      line.startsWith("REFUSED ") || line === "SENT"
    );
    assert.equal(refusals.length, 4, big.lines.join("\n"));
    for (const [i, queue] of ["local", "local", "remote", "remote"].entries()) {
      assert.match(
        refusals[i]!,
        new RegExp(
          `^REFUSED MessageTooLargeError: Cannot publish on "q://big/${queue}": the message is 20\\d{5} bytes, over the NATS server's max_payload of 1048576 bytes`,
        ),
      );
    }
    // Only the small messages arrived.
    assert.equal(big.lines.filter((l) => l.startsWith("GOT ")).length, 1);
    assert.equal(sink.lines.filter((l) => l.startsWith("GOT ")).length, 1);
  },
);

natsTest(
  "NATS: a stalled subscriber keeps what arrives within its pool's arrival bound and drops the rest, counted exactly: received + dropped = published",
  async (bed) => {
    const count = 2000;
    const stalled = bed.start("stalled");
    await stalled.waitFor((line) => line === "SUBSCRIBED");
    const flood = bed.start("flood", String(count));
    await flood.waitFor((line) => line === "FLOODED");
    await stalled.waitFor((line) => line === "RELEASED");
    stalled.process.kill("SIGTERM");
    await stalled.exit();
    const received = Number(
      stalled.lines.find((l) => l.startsWith("RECEIVED "))?.slice(9),
    );
    const result = stalled.lines.find((l) => l.startsWith("RESULT "));
    const dropped = (JSON.parse(result!.slice(7)) as RunReport).undelivered;
    assert.deepEqual(
      dropped.map(({ queue, dropped, heldBy }) => ({ queue, dropped, heldBy })),
      [{ queue: "q://flood", dropped: true, heldBy: "nats" }],
      stalled.lines.join("\n"),
    );
    assert.ok(dropped[0]!.count > 0);
    assert.equal(received + dropped[0]!.count, count);
    // Within the bound: 16 in the buffer, 64 KiB (64 messages) behind it.
    assert.ok(received <= 16 + 64 + 1, `received ${received}`);
    const warnings = stalled.lines.filter((l) =>
      l.includes("dropped messages from other processes")
    );
    assert.ok(warnings.length >= 1);
    assert.match(warnings[0]!, /\d+ on "q:\/\/flood"/);
  },
);

natsTest(
  "NATS: the server killed and restarted mid-stream ten times, the publisher reconnecting first: what it held waits for the subscriber, every message is accounted for",
  async (bed) => {
    const reader = bed.start("streamreader", "0", { RECONNECT_WAIT: "800" });
    await reader.waitFor((line) => line === "SUBSCRIBED");
    const writer = bed.start("streamer", "0", { RECONNECT_WAIT: "10" });
    await writer.waitFor((line) => line === "SUBSCRIBED");
    const spy = await bed.spy();
    await publish(bed, spy, "q.go", true);
    const again = (child: Child, n: number) =>
      child.waitFor((line) => line.includes("NATS: connected again"), n);
    for (let trial = 1; trial <= 10; trial++) {
      // Mid-stream: more was published since the last outage ended.
      const published = writer.lines.filter((l) => l.startsWith("PUBLISHED "));
      await writer.waitFor(
        (l) => l.startsWith("PUBLISHED "),
        published.length + 1,
      );
      await spy.client.close();
      await bed.server.kill();
      await bed.server.restart();
      await again(writer, trial);
      await again(reader, trial);
      spy.client = await connect({ servers: bed.server.url });
    }
    const first = writer.lines.findIndex((l) => l.includes("connected again"));
    assert.ok(
      reader.lines.findIndex((l) => l.includes("connected again")) >= 0 &&
        first >= 0,
    );
    await publish(bed, spy, "q.stop", true);
    await reader.waitFor((line) => line.startsWith("END "), 1, 60_000);
    const [end, distinct] = reader.lines.find((l) => l.startsWith("END "))!
      .slice(4).split(" ").map(Number) as [number, number];
    writer.process.kill("SIGTERM");
    await writer.exit();
    const result = writer.lines.find((l) => l.startsWith("RESULT "));
    const report = JSON.parse(result!.slice(7)) as RunReport;
    const dropped = report.undelivered
      .filter((u) => u.queue === "q://stream")
      .reduce((sum, u) => sum + u.count, 0);
    assert.ok(
      distinct + dropped >= end,
      `${end} published, ${distinct} received, ${dropped} reported dropped`,
    );
    await spy.client.close();
  },
);
