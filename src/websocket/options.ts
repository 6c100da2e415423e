/**
 * Options of the WebSocket service, their defaults and their validation.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { ServiceOptions } from "../service.ts";

/**
 * What the service does with a message for a client whose send buffer
 * (`bufferedAmount`) is above `maxBufferedAmount`:
 * - `"close"`: close the connection with 1008 "Slow client";
 * - `"drop"`: skip the message and count it (the count is in the
 *   `ws://disconnected/…` event as `dropped`).
 *
 * @example Drop ticks for clients more than 64 KiB behind
 * ```ts
 * import { WebSocketService } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * const ws = new WebSocketService({
 *   maxBufferedAmount: 64 * 1024,
 *   slowClientPolicy: "drop",
 * });
 * assert.equal(ws.name, "WebSocketService");
 * ```
 */
export type SlowClientPolicy = "close" | "drop";

/**
 * What {@linkcode AuthorizeHook} learns about the request besides the
 * request itself (see the hook's example).
 */
export interface AuthorizeInfo {
  /** The normalised request path, e.g. `/client`. */
  path: string;
  /** The query string without its leading `?` (empty when there is none). */
  query: string;
  /** The client's address. */
  remoteAddr: Deno.NetAddr;
}

/**
 * The answer of an {@linkcode AuthorizeHook}:
 * - `true`: accept the connection;
 * - `false`: refuse it with 403 Forbidden;
 * - a `Response`: refuse it with that response (e.g. 401 with a
 *   `WWW-Authenticate` header);
 * - `{ headers }`: accept it and add these headers to the `meta.headers` of
 *   every message the connection produces (e.g. the user's id).
 *
 * See {@linkcode AuthorizeHook} for an example.
 */
export type AuthorizeResult = boolean | Response | {
  /** Added to `meta.headers` of every message of the connection. */
  headers: Record<string, string>;
};

/**
 * Decides whether a WebSocket upgrade request may connect. Runs after the
 * path, origin and connection-count checks. A throw refuses with 500.
 *
 * @example Accept a token from the query string, name the user in meta
 * ```ts
 * import {
 *   type AuthorizeHook,
 *   WebSocketService,
 * } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * const users: Record<string, string> = { "secret-1": "ann" };
 * const authorize: AuthorizeHook = (_request, { query }) => {
 *   const token = new URLSearchParams(query).get("token");
 *   if (token === null) {
 *     return new Response("Token required", {
 *       status: 401,
 *       headers: { "www-authenticate": "Bearer" },
 *     });
 *   }
 *   const user = users[token];
 *   return user === undefined ? false : { headers: { user } };
 * };
 *
 * const info = {
 *   path: "/client",
 *   query: "token=secret-1",
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } as const,
 * };
 * const request = new Request("http://localhost/client");
 * assert.deepEqual(authorize(request, info), { headers: { user: "ann" } });
 * assert.equal(authorize(request, { ...info, query: "token=x" }), false);
 * new WebSocketService({ authorize });
 * ```
 */
export type AuthorizeHook = (
  request: Request,
  info: AuthorizeInfo,
) => AuthorizeResult | Promise<AuthorizeResult>;

/**
 * Answers plain HTTP requests that no static file matched.
 *
 * @example A health check beside the WebSocket paths
 * ```ts
 * import { WebSocketService } from "@magic/foundation/websocket";
 *
 * new WebSocketService({
 *   paths: ["/client"],
 *   fallback: (request) =>
 *     new URL(request.url).pathname === "/health"
 *       ? Response.json({ ok: true })
 *       : new Response("Not found", { status: 404 }),
 * });
 * ```
 */
export type FallbackHandler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/**
 * Options of {@linkcode WebSocketService}. Every field is optional; sizes are
 * in bytes and durations in milliseconds.
 *
 * @example Serve a page and limit the clients
 * ```ts
 * import { WebSocketService } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * const ws = new WebSocketService({
 *   hostname: "0.0.0.0",
 *   port: 8080,
 *   paths: ["/client", "/chat/:room"],
 *   allowedOrigins: ["https://app.example.com"],
 *   maxConnections: 1000,
 *   maxFrameSize: 64 * 1024,
 *   idleTimeout: 20_000,
 *   staticDir: new URL("./public/", import.meta.url),
 * });
 * assert.equal(ws.port, 8080);
 * ```
 */
export interface WebSocketServiceOptions extends ServiceOptions {
  /** The service name, unique within its pool. Default `"WebSocketService"`. */
  name?: string;
  /** The interface to listen on. Default `"localhost"`. */
  hostname?: string;
  /** The TCP port; `0` picks a free one. Default `8765`. */
  port?: number;
  /**
   * URLPattern pathnames that accept WebSocket connections, e.g.
   * `["/client", "/chat/:room"]`. Default: every path.
   */
  paths?: string[];
  /**
   * Origins allowed to connect: `"*"` for any, or a list such as
   * `["https://example.com"]`. Default `"same-origin"`: requests without an
   * `Origin` header (non-browser clients) and those whose origin's host is
   * the request's `Host`. Others get 403.
   */
  allowedOrigins?: "*" | "same-origin" | string[];
  /** Decides per request; see {@linkcode AuthorizeHook}. Default: accept. */
  authorize?: AuthorizeHook;
  /** Most open connections; one more gets HTTP 503. Default 10 000. */
  maxConnections?: number;
  /** Largest frame accepted; a bigger one closes the connection with 1009. Default 1 MiB, at most 64 MiB. */
  maxFrameSize?: number;
  /**
   * The server pings an idle client and closes the connection (1001) when no
   * pong comes within this time. `0` disables it. Default 30 000.
   */
  idleTimeout?: number;
  /** Send-buffer size above which {@linkcode SlowClientPolicy} applies. Default 1 MiB. */
  maxBufferedAmount?: number;
  /** What to do with a slow client. Default `"close"`. */
  slowClientPolicy?: SlowClientPolicy;
  /**
   * How long a client's unsent bytes may stay above `maxBufferedAmount`
   * (whatever the policy) before its connection is dropped: counted as
   * closed with 1008, its slot freed, and logged. Default 30 000.
   */
  slowClientTimeout?: number;
  /**
   * Received frames of one connection that may wait for the bus; one more
   * closes the connection with 1013 "Try again later". Default 1024.
   */
  maxPendingMessages?: number;
  /**
   * How long a close may take. A connection whose close (by the service, by
   * the client or after a missed pong) did not finish in this time is
   * dropped: counted as closed, its slot freed, and logged (a client that
   * never reads never receives the close frame). `terminate()` also waits
   * this long for clients to close before shutting the server down.
   * Default 2000.
   */
  closeTimeout?: number;
  /**
   * Most rooms one connection may be in; joining one more fails with a
   * `RoomError` (reason `"limit"`). Default 100.
   */
  maxRoomsPerConnection?: number;
  /**
   * How long a session whose connection dropped waits for its client (see
   * docs/websocket.md, "Reconnects"); `0` turns sessions off. Also the age bound of
   * the history. Default 120 000 (2 minutes).
   */
  recoveryWindow?: number;
  /**
   * Where sessions and their history live: `"memory"` (the default) in this
   * service's pool, lost with its process; `"jetstream"` in JetStream,
   * shared by every process of the run joined to the same NATS (the
   * program must run with `nats`, on a server started with `-js`), so a
   * client recovers on any of them (docs/websocket.md, "Reconnects").
   */
  history?: "memory" | "jetstream";
  /** Messages kept per path, room and connection for recovery. Default 1000. */
  historyMaxMessages?: number;
  /** Payload bytes kept per path, room and connection for recovery. Default 1 MiB. */
  historyMaxBytes?: number;
  /**
   * Payload bytes kept for recovery in all (the oldest messages go first).
   * Default 64 MiB.
   */
  historyMaxTotalBytes?: number;
  /**
   * Most messages one session may have missed and still recover; more
   * answers "history trimmed". Default 1000.
   */
  recoveryMaxMessages?: number;
  /**
   * Most payload bytes one session may have missed and still recover;
   * more answers "history trimmed". Default 1 MiB.
   */
  recoveryMaxBytes?: number;
  /** A folder whose files are served to plain HTTP `GET`/`HEAD` requests (`/` serves `index.html`). */
  staticDir?: string | URL;
  /** Answers plain HTTP requests that no static file matched. */
  fallback?: FallbackHandler;
}

/** {@linkcode WebSocketServiceOptions} with defaults filled in and checked. */
export interface ResolvedWebSocketOptions {
  name: string;
  hostname: string;
  port: number;
  paths: URLPattern[] | undefined;
  allowedOrigins: "*" | "same-origin" | Set<string>;
  authorize: AuthorizeHook | undefined;
  maxConnections: number;
  maxFrameSize: number;
  idleTimeout: number;
  maxBufferedAmount: number;
  slowClientPolicy: SlowClientPolicy;
  slowClientTimeout: number;
  maxPendingMessages: number;
  closeTimeout: number;
  maxRoomsPerConnection: number;
  recoveryWindow: number;
  history: "memory" | "jetstream";
  historyMaxMessages: number;
  historyMaxBytes: number;
  historyMaxTotalBytes: number;
  recoveryMaxMessages: number;
  recoveryMaxBytes: number;
  staticDir: string | undefined;
  fallback: FallbackHandler | undefined;
  service: ServiceOptions;
}

/** The largest frame Deno accepts at all (it closes the socket beyond it). */
export const DENO_MAX_FRAME_SIZE = 64 * 1024 * 1024;

/** The defaults of the numeric and enumerated options. */
export const WEBSOCKET_DEFAULTS = {
  name: "WebSocketService",
  hostname: "localhost",
  port: 8765,
  maxConnections: 10_000,
  maxFrameSize: 1024 * 1024,
  idleTimeout: 30_000,
  maxBufferedAmount: 1024 * 1024,
  slowClientPolicy: "close",
  slowClientTimeout: 30_000,
  maxPendingMessages: 1024,
  closeTimeout: 2000,
  maxRoomsPerConnection: 100,
  recoveryWindow: 120_000,
  historyMaxMessages: 1000,
  historyMaxBytes: 1024 * 1024,
  historyMaxTotalBytes: 64 * 1024 * 1024,
  recoveryMaxMessages: 1000,
  recoveryMaxBytes: 1024 * 1024,
} as const;

/**
 * Fills in defaults and checks every option.
 *
 * @throws {TypeError} When an option has the wrong type or a path pattern is invalid.
 * @throws {RangeError} When a number is out of range.
 */
export function resolveWebSocketOptions(
  options: WebSocketServiceOptions = {},
): ResolvedWebSocketOptions {
  const d = WEBSOCKET_DEFAULTS;
  const name = options.name ?? d.name;
  if (typeof name !== "string" || name.trim() === "") {
    throw new TypeError(
      "Cannot create WebSocketService: name must be a non-empty string",
    );
  }
  const where = `Cannot create WebSocketService "${name}"`;
  const hostname = options.hostname ?? d.hostname;
  if (typeof hostname !== "string" || hostname === "") {
    throw new TypeError(`${where}: hostname must be a non-empty string`);
  }
  const int = (key: string, value: number, min: number, max: number) => {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(
        `${where}: ${key} must be an integer from ${min} to ${max}, got ${value}`,
      );
    }
    return value;
  };
  const policy = options.slowClientPolicy ?? d.slowClientPolicy;
  if (policy !== "close" && policy !== "drop") {
    throw new TypeError(
      `${where}: slowClientPolicy must be "close" or "drop", got "${policy}"`,
    );
  }
  for (const key of ["authorize", "fallback"] as const) {
    const value = options[key];
    if (value !== undefined && typeof value !== "function") {
      throw new TypeError(`${where}: ${key} must be a function`);
    }
  }
  const { restart, maxRestarts, restartWindow, backoffInitial, backoffMax } =
    options;
  return {
    name,
    hostname,
    port: int("port", options.port ?? d.port, 0, 65535),
    paths: resolvePaths(where, options.paths),
    allowedOrigins: resolveOrigins(where, options.allowedOrigins),
    authorize: options.authorize,
    maxConnections: int(
      "maxConnections",
      options.maxConnections ?? d.maxConnections,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    maxFrameSize: int(
      "maxFrameSize",
      options.maxFrameSize ?? d.maxFrameSize,
      1,
      DENO_MAX_FRAME_SIZE,
    ),
    idleTimeout: int(
      "idleTimeout",
      options.idleTimeout ?? d.idleTimeout,
      0,
      2 ** 31 - 1,
    ),
    maxBufferedAmount: int(
      "maxBufferedAmount",
      options.maxBufferedAmount ?? d.maxBufferedAmount,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    slowClientPolicy: policy,
    slowClientTimeout: int(
      "slowClientTimeout",
      options.slowClientTimeout ?? d.slowClientTimeout,
      1,
      2 ** 31 - 1,
    ),
    maxPendingMessages: int(
      "maxPendingMessages",
      options.maxPendingMessages ?? d.maxPendingMessages,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    closeTimeout: int(
      "closeTimeout",
      options.closeTimeout ?? d.closeTimeout,
      0,
      2 ** 31 - 1,
    ),
    maxRoomsPerConnection: int(
      "maxRoomsPerConnection",
      options.maxRoomsPerConnection ?? d.maxRoomsPerConnection,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    recoveryWindow: int(
      "recoveryWindow",
      options.recoveryWindow ?? d.recoveryWindow,
      0,
      2 ** 31 - 1,
    ),
    history: resolveHistory(where, options.history),
    ...Object.fromEntries(
      (
        [
          "historyMaxMessages",
          "historyMaxBytes",
          "historyMaxTotalBytes",
          "recoveryMaxMessages",
          "recoveryMaxBytes",
        ] as const
      ).map((key) => [
        key,
        int(key, options[key] ?? d[key], 1, Number.MAX_SAFE_INTEGER),
      ]),
    ) as Pick<
      ResolvedWebSocketOptions,
      | "historyMaxMessages"
      | "historyMaxBytes"
      | "historyMaxTotalBytes"
      | "recoveryMaxMessages"
      | "recoveryMaxBytes"
    >,
    staticDir: resolveDir(where, options.staticDir),
    fallback: options.fallback,
    service: {
      restart,
      maxRestarts,
      restartWindow,
      backoffInitial,
      backoffMax,
    },
  };
}

function resolveHistory(
  where: string,
  history: unknown,
): "memory" | "jetstream" {
  if (history === undefined || history === "memory") return "memory";
  if (history === "jetstream") return history;
  throw new TypeError(
    `${where}: history must be "memory" or "jetstream", not ${
      JSON.stringify(history)
    }`,
  );
}

function resolvePaths(
  where: string,
  paths: string[] | undefined,
): URLPattern[] | undefined {
  if (paths === undefined) return undefined;
  if (!Array.isArray(paths)) {
    throw new TypeError(`${where}: paths must be an array of strings`);
  }
  return paths.map((pathname) => {
    if (typeof pathname !== "string" || !pathname.startsWith("/")) {
      throw new TypeError(
        `${where}: each path must be a string starting with "/", got "${pathname}"`,
      );
    }
    try {
      return new URLPattern({ pathname });
    } catch (cause) {
      throw new TypeError(`${where}: invalid path pattern "${pathname}"`, {
        cause,
      });
    }
  });
}

function resolveOrigins(
  where: string,
  origins: WebSocketServiceOptions["allowedOrigins"],
): ResolvedWebSocketOptions["allowedOrigins"] {
  if (origins === undefined || origins === "same-origin") return "same-origin";
  if (origins === "*") return "*";
  if (!Array.isArray(origins)) {
    throw new TypeError(
      `${where}: allowedOrigins must be "*", "same-origin" or an array of origins`,
    );
  }
  return new Set(origins.map((origin) => {
    try {
      return new URL(origin).origin;
    } catch (cause) {
      throw new TypeError(`${where}: invalid origin "${origin}"`, { cause });
    }
  }));
}

function resolveDir(
  where: string,
  dir: string | URL | undefined,
): string | undefined {
  if (dir === undefined) return undefined;
  if (dir instanceof URL) {
    if (dir.protocol !== "file:") {
      throw new TypeError(
        `${where}: staticDir must be a path or a file: URL, got "${dir.href}"`,
      );
    }
    return fileURLToPath(dir);
  }
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(`${where}: staticDir must be a non-empty path or URL`);
  }
  if (dir.startsWith("file:")) return resolveDir(where, new URL(dir));
  return dir;
}
