/**
 * The options that join a program to NATS, and their checks.
 *
 * @module
 */
import { checkDuration } from "../_util/duration.ts";
import { readEnv } from "../_util/env.ts";
import { validateNamespace } from "./subject.ts";

/**
 * Joins the program to every other program on the same NATS server and
 * namespace (`main.run({ nats })`, or `MAGIC_FOUNDATION_NATS`): the same
 * queues, across processes and machines.
 */
export interface NatsOptions {
  /**
   * The server, or several of one cluster: `"nats://host:4222"`,
   * `["nats://a:4222", "nats://b:4222"]` (credentials may go in the URL,
   * `nats://user:password@host:4222`).
   */
  servers: string | readonly string[];
  /**
   * The first token of every subject: queue `q://orders/eu` is subject
   * `<namespace>.q.orders.eu`. Programs share queues only within one
   * namespace. One NATS token: letters, digits, `-` and `_` (no `.`, so no
   * two namespaces share a subject). Default:
   * `MAGIC_FOUNDATION_NATS_NAMESPACE`, else `"mf"`.
   */
  namespace?: string;
  /**
   * How long a `publish` may wait for NATS to take its message (while the
   * server is unreachable and the buffer is full) before it rejects with a
   * `NatsUnavailableError`, in ms. Default 30 000.
   */
  publishTimeout?: number;
  /**
   * How many times to try to reconnect after the connection is lost before
   * giving up; default `Infinity` (forever).
   */
  reconnectAttempts?: number;
  /**
   * The first wait between reconnect attempts, doubled after each failed
   * one up to `reconnectWaitMax` (each with up to 50% random jitter), in
   * ms. Default 250.
   */
  reconnectWait?: number;
  /** The longest wait between reconnect attempts, in ms. Default 5000. */
  reconnectWaitMax?: number;
  /** The connection's name, shown by the server's monitoring. Default: `magic-foundation <pid>`. */
  name?: string;
}

/** {@linkcode NatsOptions} with the defaults applied and checked. */
export interface NatsSettings {
  servers: string[];
  namespace: string;
  publishTimeout: number;
  reconnectAttempts: number;
  reconnectWait: number;
  reconnectWaitMax: number;
  name: string;
}

const WHERE = "Cannot run";

/**
 * The NATS settings of a run: from `option`, else from the environment
 * (`MAGIC_FOUNDATION_NATS`, comma-separated servers), else `undefined` (the
 * program does not join NATS, and nothing about NATS is loaded).
 *
 * @param option `main.run({ nats })`.
 * @returns The checked settings, or `undefined`.
 * @throws {TypeError} When an option has the wrong type or a server is not a
 * `nats://`, `tls://` or `host:port` address.
 * @throws {RangeError} When a duration or the attempts are out of range, or
 * the namespace is not one NATS token (letters, digits, `-`, `_`).
 *
 * @example Defaults
 * ```ts
 * import { resolveNats } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * const settings = resolveNats({ servers: "nats://127.0.0.1:4222" });
 * assert.deepEqual(settings?.servers, ["nats://127.0.0.1:4222"]);
 * assert.equal(settings?.namespace, "mf");
 * assert.throws(() => resolveNats({ servers: [] }), {
 *   name: "TypeError",
 *   message: "Cannot run: nats.servers must name at least one server",
 * });
 * ```
 */
export function resolveNats(
  option: NatsOptions | undefined,
): NatsSettings | undefined {
  let options: NatsOptions;
  let source = "nats";
  if (option === undefined) {
    const servers = readEnv("MAGIC_FOUNDATION_NATS");
    if (servers === undefined) return undefined;
    source = "MAGIC_FOUNDATION_NATS";
    options = { servers: servers.split(",").map((s) => s.trim()) };
  } else {
    if (typeof option !== "object" || option === null) {
      throw new TypeError(`${WHERE}: nats must be an object with servers`);
    }
    options = option;
  }
  const servers = checkServers(
    source === "nats" ? "nats.servers" : source,
    options.servers,
  );
  const namespace = options.namespace ??
    readEnv("MAGIC_FOUNDATION_NATS_NAMESPACE") ?? "mf";
  try {
    validateNamespace(namespace);
  } catch (error) {
    const Kind = error instanceof RangeError ? RangeError : TypeError;
    const from = options.namespace === undefined
      ? "MAGIC_FOUNDATION_NATS_NAMESPACE"
      : "nats.namespace";
    throw new Kind(`${WHERE}: ${from}: ${(error as Error).message}`);
  }
  const attempts = options.reconnectAttempts ?? Infinity;
  if (
    typeof attempts !== "number" ||
    !(attempts === Infinity || (Number.isInteger(attempts) && attempts >= 0))
  ) {
    throw new RangeError(
      `${WHERE}: nats.reconnectAttempts must be an integer >= 0 or Infinity, got ${
        String(attempts)
      }`,
    );
  }
  const duration = (
    name: string,
    value: number | undefined,
    fallback: number,
  ) => checkDuration(WHERE, `nats.${name}`, value ?? fallback);
  const name = options.name ?? `magic-foundation ${Deno.pid}`;
  if (typeof name !== "string") {
    throw new TypeError(`${WHERE}: nats.name must be a string`);
  }
  return {
    servers,
    namespace,
    publishTimeout: duration("publishTimeout", options.publishTimeout, 30_000),
    reconnectAttempts: attempts,
    reconnectWait: duration("reconnectWait", options.reconnectWait, 250),
    reconnectWaitMax: duration(
      "reconnectWaitMax",
      options.reconnectWaitMax,
      5000,
    ),
    name,
  };
}

function checkServers(source: string, value: unknown): string[] {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list)) {
    throw new TypeError(
      `${WHERE}: ${source} must be a string or an array of strings`,
    );
  }
  if (list.length === 0) {
    throw new TypeError(
      `${WHERE}: ${source} must name at least one server`,
    );
  }
  return list.map((server) => {
    if (
      typeof server !== "string" ||
      !/^(?:(?:nats|tls|ws|wss):\/\/)?[^\s/]+(?::\d+)?\/?$/.test(server)
    ) {
      throw new TypeError(
        `${WHERE}: ${source} has an invalid server address ${
          JSON.stringify(server)
        } (expected nats://host:port)`,
      );
    }
    return server;
  });
}
