/**
 * Tracing with Deno's built-in OpenTelemetry: child programs
 * (`fixtures/tracing_program.ts`) run with `OTEL_DENO=true` and export
 * OTLP/HTTP JSON to a collector served by the test. One WebSocket frame
 * through a consumer and a responder, each in its own pool (or process,
 * over NATS), must be one trace with the right parent links; with
 * telemetry off, nothing is exported and no `traceparent` appears.
 */
import assert from "node:assert/strict";
import { Changes } from "./_changes.ts";
import { Child } from "./_child.ts";
import { natsSkipReason, startNatsServer } from "./_nats.ts";
import {
  DEADLINE,
  freePort,
  TestClient,
} from "./fixtures/websocket_helpers.ts";
import type { Reply, TracingParams } from "./fixtures/tracing_program.ts";

const FIXTURE = new URL("./fixtures/tracing_program.ts", import.meta.url);
const SCOPE = "@magic/foundation";
/** OTLP span kinds. */
const PRODUCER = 4;
const CONSUMER = 5;

/** A span as the collector keeps it. */
interface CollectedSpan {
  /** The resource's `service.name` (`OTEL_SERVICE_NAME`). */
  process: string;
  scope: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: number;
  /** The names of its events. */
  events: string[];
}

interface OtlpValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpTraces {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{
      scope?: { name?: string };
      spans?: Array<{
        name: string;
        kind: number;
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        attributes?: OtlpAttribute[];
        links?: Array<{ traceId: string; spanId: string }>;
        status?: { code?: number };
        events?: Array<{ name: string }>;
      }>;
    }>;
  }>;
}

function attributesOf(list: OtlpAttribute[] = []): Record<string, unknown> {
  return Object.fromEntries(
    list.map(({ key, value }) => [
      key,
      value.stringValue ?? value.boolValue ?? value.intValue,
    ]),
  );
}

/** An OTLP/HTTP JSON collector on 127.0.0.1: keeps every span it receives. */
class Collector implements AsyncDisposable {
  readonly spans: CollectedSpan[] = [];
  /** The path of every request received. */
  readonly requests: string[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #changes = new Changes();

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen(): void {} },
      async (request) => {
        const path = new URL(request.url).pathname;
        this.requests.push(path);
        const body = await request.text();
        if (path === "/v1/traces") this.#keep(JSON.parse(body));
        this.#changes.notify();
        return Response.json({});
      },
    );
  }

  #keep(traces: OtlpTraces): void {
    for (const resourceSpans of traces.resourceSpans ?? []) {
      const resource = attributesOf(resourceSpans.resource?.attributes);
      for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
        for (const span of scopeSpans.spans ?? []) {
          this.spans.push({
            process: String(resource["service.name"]),
            scope: scopeSpans.scope?.name ?? "",
            name: span.name,
            kind: span.kind,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? "",
            attributes: attributesOf(span.attributes),
            links: span.links ?? [],
            status: span.status?.code ?? 0,
            events: (span.events ?? []).map((e) => e.name),
          });
        }
      }
    }
  }

  /** The environment of a child that exports here (telemetry on or off). */
  env(on: boolean, serviceName = "tracing-test"): Record<string, string> {
    return {
      OTEL_DENO: on ? "true" : "false",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${this.#server.addr.port}`,
      OTEL_SERVICE_NAME: serviceName,
    };
  }

  /** Resolves once `done()` holds (checked at each request received). */
  waitFor(done: () => boolean, what: string): Promise<void> {
    return Changes.until(
      [this.#changes],
      done,
      DEADLINE,
      () =>
        `Timed out waiting for ${what}; spans: ${
          this.spans.map((s) => s.name).join(", ")
        }`,
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.shutdown();
  }
}

/** Starts the fixture on `scenario`; `stop()` ends it (SIGTERM, exit 0). */
function startProgram(
  scenario: string,
  params: TracingParams,
  env: Record<string, string>,
  flags: string[] = [],
): Child & AsyncDisposable & { stop(): Promise<void> } {
  const child = new Child(
    FIXTURE,
    [JSON.stringify({ scenario, params })],
    env,
    flags,
  );
  let exited: Promise<Deno.CommandStatus> | undefined;
  return Object.assign(child, {
    async stop(): Promise<void> {
      child.process.kill("SIGTERM");
      const status = await (exited ??= child.exit(DEADLINE));
      assert.equal(status.code, 0, child.lines.join("\n"));
    },
    async [Symbol.asyncDispose](): Promise<void> {
      if (exited !== undefined) return void await exited;
      child.process.kill("SIGKILL");
      await (exited = child.exit(DEADLINE));
    },
  });
}

const isReady = (line: string): boolean => line.includes("READY");

/** Sends one frame on `/api` and returns the reply. */
async function askOnce(port: number): Promise<Reply> {
  const client = await TestClient.open(`ws://127.0.0.1:${port}/api`);
  try {
    client.send("hello");
    return JSON.parse(await client.next() as string) as Reply;
  } finally {
    await client.close();
  }
}

/**
 * Runs `threePools` with `env` (and `deno run` `flags`), sends it one frame
 * and stops it: the reply.
 */
async function askThreePools(
  env: Record<string, string>,
  flags: string[] = [],
): Promise<Reply> {
  const port = freePort();
  await using program = startProgram("threePools", { port }, env, flags);
  await program.waitFor(isReady, 1, DEADLINE);
  const reply = await askOnce(port);
  await program.stop();
  return reply;
}

/** The one span named `name` among `spans`. */
function only(spans: CollectedSpan[], name: string): CollectedSpan {
  const found = spans.filter((s) => s.name === name);
  assert.equal(
    found.length,
    1,
    `expected one span "${name}"; got: ${
      spans.map((s) => `${s.name} (${s.traceId})`).join(", ")
    }`,
  );
  return found[0]!;
}

const FRAME = "publish ws://inbound/api";
const LAST = "process ws://connection/WebSocketService/*";

/**
 * Checks the trace of the one frame: its spans, their parents, kinds, pools
 * and processes, the link to the upgrade request, and the `traceparent`
 * each handler saw.
 */
function assertOneTrace(
  collector: Collector,
  reply: Reply,
  processes: { front: string; back: string },
): void {
  const ours = collector.spans.filter((s) => s.scope === SCOPE);
  const frame = only(ours, FRAME);
  const trace = ours.filter((s) => s.traceId === frame.traceId);
  assert.deepEqual(trace.map((s) => s.name).sort(), [
    "process q://lookup",
    "process ws://connection/WebSocketService/*",
    "process ws://inbound/api",
    "publish q://lookup",
    "publish reply://",
    "publish ws://connection/WebSocketService/*",
    "publish ws://inbound/api",
  ]);
  const consume = only(trace, "process ws://inbound/api");
  const ask = only(trace, "publish q://lookup");
  const answer = only(trace, "process q://lookup");
  const answered = only(trace, "publish reply://");
  const back = only(trace, "publish ws://connection/WebSocketService/*");
  const send = only(trace, LAST);
  // Parents: the frame is the root; each handler is its publisher's child;
  // what a handler publishes is the handler's child.
  const parentOf = (s: CollectedSpan): string | undefined =>
    trace.find((p) => p.spanId === s.parentSpanId)?.name;
  assert.equal(frame.parentSpanId, "", "the frame starts the trace");
  assert.equal(parentOf(consume), FRAME);
  assert.equal(parentOf(ask), "process ws://inbound/api");
  assert.equal(parentOf(answer), "publish q://lookup");
  assert.equal(parentOf(answered), "process q://lookup");
  assert.equal(parentOf(back), "process ws://inbound/api");
  assert.equal(parentOf(send), "publish ws://connection/WebSocketService/*");
  for (const span of [frame, ask, answered, back]) {
    assert.equal(span.kind, PRODUCER, span.name);
  }
  for (const span of [consume, answer, send]) {
    assert.equal(span.kind, CONSUMER, span.name);
  }
  // Which pool (and process) did what.
  const where = (s: CollectedSpan): string =>
    `${s.process}/${s.attributes["magic_foundation.pool"]}`;
  const { front, back: far } = processes;
  assert.deepEqual(
    [frame, consume, ask, answer, answered, back, send].map(where),
    [
      `${front}/web`,
      `${front}/consumer`,
      `${front}/consumer`,
      `${far}/responder`,
      `${far}/responder`,
      `${front}/consumer`,
      `${front}/web`,
    ],
  );
  assert.equal(
    consume.attributes["messaging.destination.name"],
    "ws://inbound/api",
  );
  assert.match(
    String(send.attributes["messaging.destination.name"]),
    /^ws:\/\/connection\/WebSocketService\/[0-9a-f-]{36}$/,
  );
  assert.equal(answered.attributes["messaging.destination.temporary"], true);
  // The frame's trace links to the upgrade request's span (Deno's own).
  assert.equal(frame.links.length, 1);
  const upgrade = collector.spans.find((s) =>
    s.spanId === frame.links[0]!.spanId
  );
  assert.equal(upgrade?.scope, "deno");
  assert.equal(upgrade?.attributes["url.path"], "/api");
  // The handlers saw the context in `meta.headers`.
  assert.equal(
    reply.consumerHeaders.traceparent,
    `00-${frame.traceId}-${frame.spanId}-01`,
  );
  assert.equal(
    reply.answer.responderHeaders.traceparent,
    `00-${frame.traceId}-${ask.spanId}-01`,
  );
}

Deno.test("tracing: a WebSocket frame through a consumer and a responder in three pools is one trace", async () => {
  await using collector = new Collector();
  const port = freePort();
  await using program = startProgram(
    "threePools",
    { port },
    collector.env(true),
  );
  await program.waitFor(isReady, 1, DEADLINE);
  const reply = await askOnce(port);
  const failing = await TestClient.open(`ws://127.0.0.1:${port}/fail`);
  failing.send("x");
  await program.waitFor((line) => line.includes("lookup failed"), 1, DEADLINE);
  await failing.close();
  await program.stop();
  // Deno exports what is left when the process exits.
  await collector.waitFor(
    () => collector.spans.some((s) => s.name === LAST),
    `"${LAST}"`,
  );
  assertOneTrace(collector, reply, {
    front: "tracing-test",
    back: "tracing-test",
  });
  // A handler that rejects: its span is an error, with the exception.
  const failed = only(collector.spans, "process ws://inbound/fail");
  assert.equal(failed.status, 2);
  assert.deepEqual(failed.events, ["exception"]);
  // Its request before the throw went well.
  const asked = collector.spans.filter((s) =>
    s.traceId === failed.traceId && s.name === "process q://lookup"
  );
  assert.deepEqual(asked.map((s) => s.status), [0]);
});

Deno.test("tracing: with telemetry off nothing is exported and no traceparent header appears", async () => {
  await using collector = new Collector();
  const reply = await askThreePools(collector.env(false));
  assert.equal(reply.consumerHeaders.traceparent, undefined);
  assert.equal(reply.answer.responderHeaders.traceparent, undefined);
  assert.ok("connectionId" in reply.consumerHeaders, "headers came back");
  // The program has exited: an export would have arrived before the exit.
  assert.deepEqual(collector.requests, []);
});

Deno.test("tracing: with telemetry off the OpenTelemetry API is never loaded", async () => {
  // The project's config with the API mapped to a module that does not
  // exist: a program that loaded it, even without calling it, would fail
  // at startup with "Module not found".
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  config.imports["@opentelemetry/api"] = "./no_such_module.ts";
  const dir = await Deno.makeTempDir({ prefix: "tracing_off_" });
  try {
    const path = `${dir}/deno.json`;
    await Deno.writeTextFile(path, JSON.stringify(config));
    const reply = await askThreePools({ OTEL_DENO: "false" }, [
      "--config",
      path,
      "--no-lock",
    ]);
    assert.equal(reply.consumerHeaders.traceparent, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const natsSkip = await natsSkipReason();

Deno.test({
  name: `tracing: across two processes over NATS the frame is one trace${
    natsSkip === undefined ? "" : ` (skipped: ${natsSkip})`
  }`,
  ignore: natsSkip !== undefined,
  async fn(): Promise<void> {
    const server = await startNatsServer();
    if (typeof server === "string") throw new Error(server);
    await using _server = server;
    await using collector = new Collector();
    const nats = {
      servers: server.url,
      namespace: `t${crypto.randomUUID().slice(0, 8)}`,
    };
    const port = freePort();
    await using back = startProgram(
      "back",
      { nats },
      collector.env(true, "back"),
    );
    await back.waitFor(isReady, 1, DEADLINE);
    await using front = startProgram(
      "front",
      { port, nats },
      collector.env(true, "front"),
    );
    await front.waitFor(isReady, 1, DEADLINE);
    const reply = await askOnce(port);
    await front.stop();
    await back.stop();
    await collector.waitFor(
      () =>
        collector.spans.some((s) => s.name === LAST) &&
        collector.spans.some((s) => s.name === "process q://lookup"),
      `"${LAST}" and "process q://lookup"`,
    );
    assertOneTrace(collector, reply, { front: "front", back: "back" });
  },
});
