/**
 * Replies to a plain NATS client (its reply subject is not ours): the data
 * goes as JSON, or the reply is refused at the call with a `JsonDataError`.
 * The responder is a user's program in a folder outside the repository; the
 * requests come from nats.js used directly and, when Python and `nats-py`
 * can be had, from Python.
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { outsideFolder } from "./_outside.ts";
import { natsSkipReason, startNatsServer } from "./_nats.ts";
import { pythonWith, run } from "./_python.ts";

const skip = await natsSkipReason();
const missing = skip === undefined ? "" : ` (skipped: ${skip})`;

/**
 * The responder: `q://reply/<case>` replies with `CASES[case]`; a reply
 * refused at the call is answered instead with the error's fields (as JSON,
 * which always goes).
 */
const RESPONDER = `
import { Main, Service, type ServiceContext } from "MOD/mod.ts";

const cycle: Record<string, unknown> = { name: "loop" };
cycle.self = { back: cycle };
const CASES: Record<string, unknown> = {
  undefinedField: { a: 1, b: undefined },
  undefinedItem: [1, undefined, 3],
  date: { at: new Date(Date.UTC(2026, 11, 6, 10, 30)) },
  shared: (() => { const s = { x: 1 }; return { a: s, b: s }; })(),
  negativeZero: { n: -0 },
  nothing: undefined,
  bytes: new Uint8Array([0xff, 0, 1]),
  map: { tags: new Map([["a", 1]]) },
  set: { list: [1, { s: new Set([1]) }] },
  bigint: { deep: [{ n: 10n }] },
  nan: { x: NaN },
  badDate: { when: new Date(Number.NaN) },
  float32: { samples: new Float32Array([1.5]) },
  nestedBytes: { raw: new Uint8Array([1]) },
  instance: { at: new (class Point { x = 1 })() },
  cycle,
  oddKey: { "a b": { f: () => 1 } },
};

class Responder extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe("q://reply/*", async (_data, meta) => {
      const name = meta.queue.slice("q://reply/".length);
      try {
        await ctx.publish(meta.replyTo!, CASES[name]);
      } catch (error) {
        const { name, message, queue, path } = error as Record<string, unknown>;
        await ctx.publish(meta.replyTo!, { error: { name, message, queue, path } });
      }
    });
  }
  override run(): void {
    console.log("READY");
  }
}

const main = Main.instance();
main.servicePools = { responder: [new Responder("responder")] };
const report = await main.run(Main.isPrimary
  ? { terminateTimeout: 2000, nats: { servers: Deno.args[0]!, namespace: Deno.args[1]! } }
  : {});
if (Main.isPrimary) console.log("RESULT " + JSON.stringify(report));
`;

/** What a client got for one case: the payload as text, and its headers. */
interface Received {
  text: string;
  headers: Record<string, string>;
}

/** What each case's reply is, as the plain client reads it. */
const EXPECTED_JSON: Record<string, string> = {
  undefinedField: '{"a":1}',
  undefinedItem: "[1,null,3]",
  date: '{"at":"2026-12-06T10:30:00.000Z"}',
  shared: '{"a":{"x":1},"b":{"x":1}}',
  negativeZero: '{"n":0}',
  nothing: "",
};

/** The cases refused at the call, with the path the error names. */
const REFUSED: Record<string, { path: string; what: RegExp }> = {
  map: { path: "data.tags", what: /a Map/ },
  set: { path: "data.list[1].s", what: /a Set/ },
  bigint: { path: "data.deep[0].n", what: /a bigint/ },
  nan: { path: "data.x", what: /NaN/ },
  badDate: { path: "data.when", what: /an invalid Date/ },
  float32: { path: "data.samples", what: /a Float32Array/ },
  nestedBytes: { path: "data.raw", what: /a Uint8Array/ },
  instance: { path: "data.at", what: /a Point/ },
  cycle: { path: "data.self.back", what: /a cycle/ },
  oddKey: { path: 'data["a b"].f', what: /a function/ },
};

/** Checks what a client got against the tables above. */
function checkReplies(
  received: Record<string, Received>,
  client: string,
): void {
  for (const [name, json] of Object.entries(EXPECTED_JSON)) {
    assert.equal(received[name]?.text, json, `${client}: case ${name}`);
    assert.deepEqual(
      received[name]?.headers,
      {},
      `${client}: JSON for case ${name} carries no header`,
    );
  }
  assert.deepEqual(
    [...new TextEncoder().encode(received.bytes?.text ?? "")],
    [0xef, 0xbf, 0xbd, 0, 1],
    `${client}: a Uint8Array goes as its bytes`,
  );
  for (const [name, { path, what }] of Object.entries(REFUSED)) {
    const reply = JSON.parse(received[name]?.text ?? "null");
    const error = reply?.error;
    assert.equal(error?.name, "JsonDataError", `${client}: case ${name}`);
    assert.equal(error?.path, path, `${client}: case ${name}`);
    assert.match(error?.queue, /^reply:\/\/nats\/_INBOX\./);
    assert.ok(
      error?.message.startsWith(`Cannot publish on "${error?.queue}": `),
      error?.message,
    );
    assert.ok(error?.message.includes(path), error?.message);
    assert.match(error?.message, what);
  }
  assert.equal(
    Object.keys(received).length,
    Object.keys(EXPECTED_JSON).length + Object.keys(REFUSED).length + 1,
  );
}

const CASE_NAMES = [
  ...Object.keys(EXPECTED_JSON),
  "bytes",
  ...Object.keys(REFUSED),
];

/**
 * A Python program that asks every case with `nats-py` and prints what came
 * back as one JSON line (the payload decoded as UTF-8 with replacement).
 */
const PYTHON_CLIENT = `
import asyncio, json, sys
import nats

async def main(url, namespace, names):
    client = await nats.connect(url)
    received = {}
    for name in names:
        msg = await client.request(f"{namespace}.q.reply.{name}", b"", timeout=10)
        received[name] = {
            "text": msg.data.decode("utf-8", errors="replace"),
            "headers": dict(msg.headers or {}),
        }
    await client.close()
    print(json.dumps(received))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3].split(",")))
`;

Deno.test({
  name:
    "NATS: a plain client's request gets JSON (undefined fields dropped, a Date as its ISO string), and data JSON cannot carry is refused at the call with a JsonDataError naming the queue and the path" +
    missing,
  ignore: missing !== "",
}, async (t) => {
  const server = await startNatsServer();
  if (typeof server === "string") throw new Error(server);
  await using _server = server;
  await using folder = await outsideFolder("file");
  const namespace = `t${crypto.randomUUID().slice(0, 8)}`;
  await folder.write("responder.ts", RESPONDER);
  const responder = folder.start("responder.ts", {
    args: [server.url, namespace],
  });
  await responder.waitFor((line) => line === "READY");

  await t.step("nats.js", async () => {
    const client = await connect({ servers: server.url });
    try {
      const received: Record<string, Received> = {};
      for (const name of CASE_NAMES) {
        const msg = await client.request(`${namespace}.q.reply.${name}`, "", {
          timeout: 10_000,
        });
        const headers: Record<string, string> = {};
        for (const key of msg.headers?.keys() ?? []) {
          headers[key] = msg.headers!.get(key);
        }
        received[name] = {
          text: new TextDecoder().decode(msg.data),
          headers,
        };
        if (name === "bytes") {
          assert.deepEqual([...msg.data], [0xff, 0, 1]);
        }
      }
      checkReplies(received, "nats.js");
    } finally {
      await client.close();
    }
  });

  const dir = await Deno.makeTempDir({ prefix: "mf-nats-py-" });
  try {
    const python = await pythonWith(dir, ["nats-py"]);
    const reason = "reason" in python ? ` (skipped: ${python.reason})` : "";
    await t.step({
      name: "nats-py" + reason,
      ignore: "reason" in python,
      fn: async () => {
        if (!("python" in python)) return;
        const script = `${dir}/client.py`;
        await Deno.writeTextFile(script, PYTHON_CLIENT);
        const result = await run(python.python, [
          script,
          server.url,
          namespace,
          CASE_NAMES.join(","),
        ]);
        assert.ok(result.success, result.stderr);
        checkReplies(JSON.parse(result.stdout), "nats-py");
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  responder.process.kill("SIGTERM");
  const status = await responder.exit();
  assert.equal(status.code, 0, responder.lines.join("\n"));
  const result = responder.result();
  assert.deepEqual(result?.failures, [], responder.lines.join("\n"));
});
