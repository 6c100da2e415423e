/**
 * Message spans with Deno's built-in OpenTelemetry (`OTEL_DENO=true`): a
 * PRODUCER span per publish, whose W3C `traceparent` (and `tracestate`)
 * travels in the message's headers, and a CONSUMER span per handler call,
 * child of the publisher's span and active while the handler runs, so what
 * the handler publishes belongs to the same trace, across pools and (over
 * NATS, whose headers carry it) across processes.
 *
 * Decided once per thread, when this module is evaluated: Deno registers the
 * OpenTelemetry API's global (`Symbol.for("opentelemetry.js.api.1")`) in
 * the main thread and in every worker when, and only when, `OTEL_DENO=true`
 * (seen with Deno 2.9.6; no `--allow-env` needed). Off, the API package is
 * never loaded and a message costs one `undefined` check on each side.
 *
 * @module
 */
import { linkKey, type Otel, otel, version } from "../tracing.ts";
import type { WireMessage } from "../transport/transport.ts";
import type { MessageHandler, MessageMeta } from "../service_context.ts";
import { isReplyQueue } from "../transport/reply_queue.ts";

type OtelApi = typeof Otel;

/** The name of our spans' instrumentation scope (its version: deno.json's). */
const SCOPE = "@magic/foundation";
/** `messaging.system` of our spans. */
const SYSTEM = "magic-foundation";
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The part of a span's name after `publish `: low-cardinality by design. A
 * reply is `reply://`; a queue that some subscription in this process names
 * exactly is itself; otherwise the smallest (in string order) of the
 * patterns that match it, such as `ws://connection/WebSocketService/*` for a
 * connection's queue; with none (no subscriber here, perhaps one in another
 * process), its scheme and first segment, followed by `/…` when more
 * follow.
 *
 * @param queue The concrete queue published on.
 * @param patterns The patterns of this process's subscriptions that match it.
 * @returns The destination in the span's name.
 *
 * @example Name by pattern, never by connection or request
 * ```ts
 * import { publishTarget } from "./tracing.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(publishTarget("q://orders", ["q://orders", "q://>"]), "q://orders");
 * assert.equal(
 *   publishTarget("ws://connection/ws/3f2a", ["ws://connection/ws/*"]),
 *   "ws://connection/ws/*",
 * );
 * assert.equal(publishTarget("reply://1/0/42", []), "reply://");
 * assert.equal(publishTarget("q://orders/17/lines", []), "q://orders/…");
 * assert.equal(publishTarget("q://lookup", []), "q://lookup");
 * ```
 */
export function publishTarget(
  queue: string,
  patterns: readonly string[],
): string {
  if (isReplyQueue(queue)) return "reply://";
  if (patterns.length === 0) {
    const path = queue.indexOf("://") + 3;
    const slash = queue.indexOf("/", path);
    return slash === -1 ? queue : `${queue.slice(0, slash)}/…`;
  }
  let smallest = patterns[0]!;
  for (const pattern of patterns) {
    if (pattern === queue) return queue;
    if (pattern < smallest) smallest = pattern;
  }
  return smallest;
}

/** What a CONSUMER span says about the subscription whose handler runs. */
export interface TracedSubscription {
  /** The subscribing service. */
  readonly service: string;
  /** The pattern subscribed to: the span is `process <queue>`. */
  readonly queue: string;
  /** The competing-consumer group, if any. */
  readonly group: string | undefined;
}

/**
 * One pool's spans: PRODUCER spans around publishes, CONSUMER spans around
 * handler calls. Made by {@linkcode messageTracing} only when telemetry is
 * on.
 */
export class MessageTracing {
  readonly #api: OtelApi;
  readonly #tracer: Otel.Tracer;
  readonly #pool: string;

  /**
   * @param api The OpenTelemetry API.
   * @param pool The pool's name (attribute `magic_foundation.pool`).
   */
  constructor(api: OtelApi, pool: string) {
    this.#api = api;
    this.#tracer = api.trace.getTracer(SCOPE, version);
    this.#pool = pool;
  }

  /**
   * Runs `send` inside a PRODUCER span `publish <target>`, child of the
   * active span (or linked to the span {@linkcode inNewTrace} names), after
   * putting the span's `traceparent` (and `tracestate`) into a new frozen
   * copy of `message.headers`. The span ends when `send` settles.
   *
   * @param message The message, before it is routed; its headers are replaced.
   * @param target The destination in the span's name ({@linkcode publishTarget}).
   * @param send Routes and sends the message.
   * @returns What `send` returns.
   */
  publish(
    message: WireMessage,
    target: string,
    send: () => Promise<void>,
  ): Promise<void> {
    const api = this.#api;
    const active = api.context.active();
    const link = linkKey === undefined
      ? undefined
      : active.getValue(linkKey) as Otel.SpanContext | undefined;
    const attributes: Otel.Attributes = {
      "messaging.system": SYSTEM,
      "messaging.operation.name": "publish",
      "messaging.operation.type": "send",
      "messaging.destination.name": message.queue,
      "magic_foundation.pool": this.#pool,
      "magic_foundation.service": message.service,
    };
    if (target === "reply://") {
      attributes["messaging.destination.temporary"] = true;
    } else if (target !== message.queue && !target.endsWith("…")) {
      attributes["messaging.destination.template"] = target;
    }
    const span = this.#tracer.startSpan(`publish ${target}`, {
      kind: api.SpanKind.PRODUCER,
      attributes,
      links: link === undefined ? undefined : [{ context: link }],
    }, active);
    // A forwarded `meta.headers` holds the previous hop's context: left out.
    const carrier: Record<string, string> = {};
    const given = message.headers;
    if (given !== undefined) {
      for (const key in given) {
        if (key !== "traceparent" && key !== "tracestate") {
          carrier[key] = given[key]!;
        }
      }
    }
    api.propagation.inject(api.trace.setSpan(active, span), carrier);
    if (carrier.traceparent !== undefined) {
      message.headers = Object.freeze(carrier);
    }
    return send().then(() => span.end(), (error: unknown) => {
      endFailed(api, span, error);
      throw error;
    });
  }

  /**
   * Calls `handler(data, meta)` inside a CONSUMER span
   * `process <subscription.queue>`, child of the span whose context
   * `meta.headers` carries (a new trace without one), and active while the
   * handler runs, its awaits included. A throw or rejection marks the span
   * as an error and passes on unchanged.
   *
   * @param subscription The subscription whose handler runs.
   * @param handler Its handler.
   * @param data The message's data.
   * @param meta The message's meta.
   * @returns What the handler returns (a promise settles after the span ends).
   */
  process(
    subscription: TracedSubscription,
    handler: MessageHandler<unknown>,
    data: unknown,
    meta: MessageMeta,
  ): unknown {
    const api = this.#api;
    const parent = api.propagation.extract(
      api.ROOT_CONTEXT,
      meta.headers ?? NO_HEADERS,
    );
    const attributes: Otel.Attributes = {
      "messaging.system": SYSTEM,
      "messaging.operation.name": "process",
      "messaging.operation.type": "process",
      "messaging.destination.name": meta.queue,
      "magic_foundation.pool": this.#pool,
      "magic_foundation.service": subscription.service,
    };
    if (subscription.queue !== meta.queue) {
      attributes["messaging.destination.template"] = subscription.queue;
    }
    if (subscription.group !== undefined) {
      attributes["messaging.consumer.group.name"] = subscription.group;
    }
    const span = this.#tracer.startSpan(`process ${subscription.queue}`, {
      kind: api.SpanKind.CONSUMER,
      attributes,
    }, parent);
    let result: unknown;
    try {
      result = api.context.with(
        api.trace.setSpan(parent, span),
        handler,
        undefined,
        data,
        meta,
      );
    } catch (error) {
      endFailed(api, span, error);
      throw error;
    }
    if (!(result instanceof Promise)) {
      span.end();
      return result;
    }
    return result.then((value: unknown) => {
      span.end();
      return value;
    }, (error: unknown) => {
      endFailed(api, span, error);
      throw error;
    });
  }
}

/**
 * A pool's {@linkcode MessageTracing}, or `undefined` when telemetry is off
 * (then nothing else of this module runs).
 *
 * @param pool The pool's name.
 * @returns The pool's tracing, when on.
 *
 * @example Off in a program run without OTEL_DENO=true
 * ```ts
 * import { messageTracing } from "./tracing.ts";
 * import { telemetryOn } from "../tracing.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(messageTracing("web") === undefined, !telemetryOn());
 * ```
 */
export function messageTracing(pool: string): MessageTracing | undefined {
  return otel === undefined ? undefined : new MessageTracing(otel, pool);
}

/** Marks `span` as failed by `error` and ends it. */
function endFailed(api: OtelApi, span: Otel.Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({
    code: api.SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
  span.end();
}
