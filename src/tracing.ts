/**
 * OpenTelemetry in this thread (Deno's built-in, `OTEL_DENO=true`): whether
 * it is on, the API (loaded only then), and {@linkcode inNewTrace}, which
 * starts a new trace linked to the current one. The bus's message spans
 * (`bus/tracing.ts`) and the WebSocket service's frames both build on it.
 *
 * Decided once per thread, when this module is evaluated: Deno registers the
 * OpenTelemetry API's global (`Symbol.for("opentelemetry.js.api.1")`) in
 * the main thread and in every worker when, and only when, `OTEL_DENO=true`
 * (seen with Deno 2.9.6; no `--allow-env` needed). Off, the API package is
 * never loaded.
 *
 * @module
 */
// A full npm: specifier (a bare one resolves only through this repository's
// deno.json); tests/dependencies_test.ts checks it against deno.json's imports.
import type * as Otel from "npm:@opentelemetry/api@1.10.0";

export type { Otel };
type OtelApi = typeof Otel;

/**
 * Whether OpenTelemetry is on in this thread: some OpenTelemetry API has
 * registered its global (Deno does when `OTEL_DENO=true`).
 *
 * @returns `true` when spans would be recorded and exported.
 *
 * @example Off unless the program runs with OTEL_DENO=true
 * ```ts
 * import { telemetryOn } from "./tracing.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof telemetryOn(), "boolean");
 * ```
 */
export function telemetryOn(): boolean {
  return Symbol.for("opentelemetry.js.api.1") in globalThis;
}

/** The OpenTelemetry API, loaded once per thread when telemetry is on. */
export const otel: OtelApi | undefined = telemetryOn()
  ? await import("npm:@opentelemetry/api@1.10.0")
  : undefined;

/** The module's version, read (only when telemetry is on) from deno.json. */
export const version: string | undefined = otel === undefined
  ? undefined
  : (await import("../deno.json", { with: { type: "json" } })).default
    .version;

/**
 * The context key under which {@linkcode inNewTrace} keeps the span the new
 * trace links to (the WebSocket upgrade request of a connection's frames).
 */
export const linkKey = otel?.createContextKey("magic-foundation trace link");

/**
 * Wraps `fn` so that each call runs outside the current trace: what it
 * publishes starts a new trace, whose first span links to the span active
 * now (when one is). `fn` itself when telemetry is off.
 *
 * Made for a WebSocket connection's frames: Deno runs a socket's events in
 * the context of the HTTP upgrade request, whose span ended long ago; each
 * frame is its own trace, linked to that request.
 *
 * @param fn The function to wrap.
 * @returns `fn`, or a wrapper that calls it in a new trace.
 *
 * @example Unchanged when telemetry is off
 * ```ts
 * import { inNewTrace, telemetryOn } from "./tracing.ts";
 * import assert from "node:assert/strict";
 *
 * const publish = (queue: string): string => queue;
 * const wrapped = inNewTrace(publish);
 * assert.equal(wrapped("q://a"), "q://a");
 * assert.equal(wrapped === publish, !telemetryOn());
 * ```
 */
export function inNewTrace<A extends unknown[], R>(
  fn: (...args: A) => R,
): (...args: A) => R {
  if (otel === undefined || linkKey === undefined) return fn;
  const api = otel;
  const origin = api.trace.getSpan(api.context.active())?.spanContext();
  const root = origin === undefined || !api.trace.isSpanContextValid(origin)
    ? api.ROOT_CONTEXT
    : api.ROOT_CONTEXT.setValue(linkKey, origin);
  return (...args: A): R => api.context.with(root, fn, undefined, ...args);
}
