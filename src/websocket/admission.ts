/**
 * Decides, before any I/O, whether a request may become a WebSocket
 * connection and which HTTP status refuses it. Pure functions.
 *
 * @module
 */

import type { ResolvedWebSocketOptions } from "./options.ts";

/** What the admission check needs to know about the running service. */
export interface AdmissionState {
  /**
   * The program has not started yet (some pool is still in `initialize()`):
   * a frame could reach the bus before its consumer subscribed, so new
   * connections are refused with 503 and `Retry-After`.
   */
  starting: boolean;
  /** `terminate()` has begun: new connections are refused with 503. */
  stopping: boolean;
  /** Connections open or being opened. */
  connections: number;
}

/** Whether the request asks for a WebSocket (`Upgrade: websocket`). */
export function isUpgradeRequest(request: Request): boolean {
  const upgrade = request.headers.get("upgrade");
  return upgrade !== null &&
    upgrade.split(",").some((p) => p.trim().toLowerCase() === "websocket");
}

/** Whether `pathname` accepts WebSocket connections under `paths`. */
export function isWebSocketPath(
  pathname: string,
  paths: readonly URLPattern[] | undefined,
): boolean {
  if (paths === undefined) return true;
  return paths.some((pattern) => pattern.test({ pathname }));
}

/**
 * Whether the request's `Origin` is allowed. Requests without `Origin` come
 * from non-browser clients and are allowed unless a list of origins is given.
 * `"same-origin"` compares the scheme too: an `https://` page may not
 * connect to an `http` server on the same host and port (behind a proxy that
 * ends TLS, list the public origin instead).
 */
export function isOriginAllowed(
  request: Request,
  allowed: ResolvedWebSocketOptions["allowedOrigins"],
): boolean {
  if (allowed === "*") return true;
  const origin = request.headers.get("origin");
  if (allowed === "same-origin") {
    if (origin === null) return true;
    const host = request.headers.get("host");
    try {
      const from = new URL(origin);
      return host !== null && from.host === host.toLowerCase() &&
        from.protocol === new URL(request.url).protocol;
    } catch {
      return false;
    }
  }
  return origin !== null && allowed.has(origin);
}

/**
 * The refusal for a WebSocket upgrade request, or `undefined` when it may go
 * on to `authorize` and the upgrade. Checks, in order: method (405), path
 * (404), starting or stopping (503), origin (403), connection count (503).
 */
export function refuseUpgrade(
  request: Request,
  pathname: string,
  options: Pick<
    ResolvedWebSocketOptions,
    "paths" | "allowedOrigins" | "maxConnections"
  >,
  state: AdmissionState,
): Response | undefined {
  if (request.method !== "GET") {
    return textResponse(405, "Method not allowed", { allow: "GET" });
  }
  if (!isWebSocketPath(pathname, options.paths)) {
    return textResponse(404, "Not found");
  }
  if (state.starting) {
    return textResponse(503, "Server starting", { "retry-after": "1" });
  }
  if (state.stopping) {
    return textResponse(503, "Server shutting down", { "retry-after": "1" });
  }
  if (!isOriginAllowed(request, options.allowedOrigins)) {
    return textResponse(403, "Origin not allowed");
  }
  if (state.connections >= options.maxConnections) {
    return textResponse(503, "Too many connections", { "retry-after": "1" });
  }
  return undefined;
}

/** 426 Upgrade Required, for a plain HTTP request to a WebSocket path. */
export function upgradeRequired(): Response {
  return textResponse(426, "Upgrade required: this path speaks WebSocket", {
    upgrade: "websocket",
    connection: "Upgrade",
  });
}

/** A small plain-text response. */
export function textResponse(
  status: number,
  text: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}
