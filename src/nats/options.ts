/**
 * The options that join a program to NATS, and their checks.
 *
 * @module
 */
import { checkDuration } from "../_util/duration.ts";
import { readEnv } from "../_util/env.ts";
import { errorMessage } from "../_util/error_text.ts";
import {
  type NatsAuth,
  type NatsTlsFiles,
  readCredentials,
  splitServer,
} from "./auth.ts";
import { validateQueueName } from "../queue_name.ts";
import { validateNamespace } from "./subject.ts";

/**
 * Joins the program to every other program on the same NATS server and
 * namespace (`main.run({ nats })`, or `MAGIC_FOUNDATION_NATS`): the same
 * queues, across processes and machines.
 */
export interface NatsOptions {
  /**
   * The server, or several of one cluster: `"nats://host:4222"`,
   * `["nats://a:4222", "nats://b:4222"]`. Credentials may go in the URL:
   * `nats://user:password@host:4222`, or `nats://token@host:4222` (they are
   * taken out of it: no log line or error shows them).
   */
  servers: string | readonly string[];
  /**
   * The user, with `password`. Default: `MAGIC_FOUNDATION_NATS_USER`.
   */
  user?: string;
  /** The user's password. Default: `MAGIC_FOUNDATION_NATS_PASSWORD`. */
  password?: string;
  /**
   * A token (`nats-server --auth`). Default: `MAGIC_FOUNDATION_NATS_TOKEN`.
   */
  token?: string;
  /**
   * The path of a credentials file: a `.creds` file (a user JWT and its
   * NKEY seed, as `nsc` writes it) or a file holding a user NKEY seed
   * (`SU…`) alone. Read again at each connection, so a renewed file is used
   * at the next reconnect. Default: `MAGIC_FOUNDATION_NATS_CREDS`.
   */
  credentials?: string;
  /**
   * Require TLS, with these files (all optional). Default: from
   * `MAGIC_FOUNDATION_NATS_TLS_CA`, `_TLS_CERT` and `_TLS_KEY` when one is
   * set, else TLS only if the server requires it (with the system's CAs).
   */
  tls?: NatsTlsOptions;
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
  /**
   * The queues (names or patterns) whose messages go to NATS for plain NATS
   * clients (a Go or Python service) even when no magic-foundation process
   * subscribes to them: other messages stay in their process unless another
   * magic-foundation process of the namespace wants them. What plain clients
   * publish reaches our subscribers whatever this says. Default:
   * `MAGIC_FOUNDATION_NATS_EXPORTS` (comma-separated), else none.
   */
  exports?: readonly string[];
  /**
   * How many bytes of messages from other processes a pool keeps waiting
   * beyond its subscriptions' buffers (`bufferSize` messages each), per
   * pool. NATS cannot pause a subscription: past this, what arrives for a
   * full subscription is dropped, counted (`RunReport.undelivered`,
   * `magic_foundation_dropped_total`) and logged at most once a second.
   * Default 8 MiB.
   */
  arrivalBytes?: number;
}

/**
 * The TLS files of {@linkcode NatsOptions.tls} (paths, PEM). Given, TLS is
 * required: a server without it is refused.
 *
 * @example Client certificates
 * ```ts
 * import type { NatsOptions } from "@magic/foundation";
 *
 * const nats: NatsOptions = {
 *   servers: "nats://nats.internal:4222",
 *   tls: { ca: "ca.pem", cert: "client.pem", key: "client.key" },
 * };
 * ```
 */
export interface NatsTlsOptions {
  /** The CA that vouches for the server. Default: the system's CAs. */
  ca?: string;
  /** The client certificate, for a server that asks for one (with `key`). */
  cert?: string;
  /** The client certificate's private key. */
  key?: string;
}

/** {@linkcode NatsOptions} with the defaults applied and checked. */
export interface NatsSettings {
  /** The servers, without credentials. */
  servers: string[];
  /** How to authenticate (it travels to each pool; never logged). */
  auth: NatsAuth;
  /** The TLS files, when TLS is required. */
  tls: NatsTlsFiles | undefined;
  namespace: string;
  publishTimeout: number;
  reconnectAttempts: number;
  reconnectWait: number;
  reconnectWaitMax: number;
  name: string;
  /** The queues plain NATS clients may subscribe to (names or patterns). */
  exports: string[];
  /** The bytes a pool keeps waiting beyond its subscriptions' buffers. */
  arrivalBytes: number;
}

/** What a pool needs to join NATS (the primary sends it in `init`). */
export interface NatsPoolSettings extends NatsSettings {
  /** The process's id, the same in all its pools. */
  processId: string;
  /** How long a stop waits for the server to confirm what was published, in ms. */
  closeTimeout: number;
}

const WHERE = "Cannot run";

/**
 * The NATS settings of a run: from `option`, else from the environment
 * (`MAGIC_FOUNDATION_NATS`, comma-separated servers), else `undefined` (the
 * program does not join NATS, and nothing about NATS is loaded). The one
 * place that reads the `MAGIC_FOUNDATION_NATS*` variables; an option that
 * is not given falls back to its variable.
 *
 * @param option `main.run({ nats })`.
 * @returns The checked settings, or `undefined`.
 * @throws {TypeError} When an option has the wrong type, a server is not a
 * `nats://`, `tls://` or `host:port` address, credentials are given two
 * ways or half (a user without a password), or a credentials or TLS file
 * cannot be read.
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
 * const url = resolveNats({ servers: "nats://alice:s3cret@127.0.0.1:4222" });
 * assert.deepEqual(url?.servers, ["nats://127.0.0.1:4222"]);
 * assert.deepEqual(url?.auth, {
 *   kind: "password",
 *   user: "alice",
 *   password: "s3cret",
 * });
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
  const split = checkServers(
    source === "nats" ? "nats.servers" : source,
    options.servers,
  ).map(splitServer);
  const servers = split.map((s) => s.server);
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
    auth: resolveAuth(options, split.map((s) => s.auth)),
    tls: resolveTls(options.tls),
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
    exports: resolveExports(options.exports),
    arrivalBytes: resolveArrivalBytes(options.arrivalBytes),
  };
}

/** `nats.arrivalBytes`: a whole number of bytes, at least 1 KiB. */
function resolveArrivalBytes(value: number | undefined): number {
  if (value === undefined) return 8 * 1024 * 1024;
  if (!Number.isSafeInteger(value) || value < 1024) {
    throw new RangeError(
      `${WHERE}: nats.arrivalBytes must be an integer >= 1024, got ${
        String(value)
      }`,
    );
  }
  return value;
}

/** `nats.exports`, else `MAGIC_FOUNDATION_NATS_EXPORTS`, each a valid pattern. */
function resolveExports(option: readonly string[] | undefined): string[] {
  let from = "nats.exports";
  let list: unknown = option;
  if (option === undefined) {
    from = "MAGIC_FOUNDATION_NATS_EXPORTS";
    list = (readEnv(from) ?? "").split(",").map((s) => s.trim()).filter((s) =>
      s !== ""
    );
  }
  if (!Array.isArray(list)) {
    throw new TypeError(`${WHERE}: ${from} must be an array of queue names`);
  }
  return list.map((pattern: unknown) => {
    try {
      return validateQueueName(pattern, "subscribe");
    } catch (error) {
      throw new TypeError(`${WHERE}: ${from}: ${errorMessage(error)}`);
    }
  });
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
          JSON.stringify(
            typeof server === "string" ? splitServer(server).server : server,
          )
        } (expected nats://host:port)`,
      );
    }
    return server;
  });
}

/** A credential given as an option or a variable, and where it came from. */
interface Given {
  value: string;
  from: string;
}

/** Option `key`, else variable `env`; checked to be a non-empty string. */
function given(
  options: NatsOptions,
  key: "user" | "password" | "token" | "credentials",
  env: string,
): Given | undefined {
  const value: unknown = options[key];
  if (value === undefined) {
    const fromEnv = readEnv(env);
    return fromEnv === undefined ? undefined : { value: fromEnv, from: env };
  }
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`${WHERE}: nats.${key} must be a non-empty string`);
  }
  return { value, from: `nats.${key}` };
}

/**
 * How the run authenticates: the servers' URLs, user and password, a token
 * or a credentials file, at most one of them.
 */
function resolveAuth(options: NatsOptions, fromUrls: NatsAuth[]): NatsAuth {
  const ways: Array<[string, NatsAuth]> = [];
  const inUrls = fromUrls.filter((auth) => auth.kind !== "none");
  if (inUrls.length > 0) {
    const first = JSON.stringify(inUrls[0]);
    if (inUrls.some((auth) => JSON.stringify(auth) !== first)) {
      throw new TypeError(
        `${WHERE}: the NATS server URLs carry different credentials; give the same to all (or give them once, as options)`,
      );
    }
    ways.push(["the server URL", inUrls[0]!]);
  }
  const user = given(options, "user", "MAGIC_FOUNDATION_NATS_USER");
  const password = given(options, "password", "MAGIC_FOUNDATION_NATS_PASSWORD");
  if (user !== undefined && password !== undefined) {
    ways.push([
      `${user.from} and ${password.from}`,
      { kind: "password", user: user.value, password: password.value },
    ]);
  } else if (user !== undefined || password !== undefined) {
    throw new TypeError(
      user === undefined
        ? `${WHERE}: ${
          password!.from
        } is set without a user (nats.user or MAGIC_FOUNDATION_NATS_USER)`
        : `${WHERE}: ${user.from} is set without a password (nats.password or MAGIC_FOUNDATION_NATS_PASSWORD)`,
    );
  }
  const token = given(options, "token", "MAGIC_FOUNDATION_NATS_TOKEN");
  if (token !== undefined) {
    ways.push([token.from, { kind: "token", token: token.value }]);
  }
  const credentials = given(
    options,
    "credentials",
    "MAGIC_FOUNDATION_NATS_CREDS",
  );
  if (credentials !== undefined) {
    try {
      readCredentials(credentials.value);
    } catch (error) {
      throw new TypeError(
        `${WHERE}: ${credentials.from}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    ways.push([
      credentials.from,
      { kind: "credentials", file: credentials.value },
    ]);
  }
  if (ways.length > 1) {
    throw new TypeError(
      `${WHERE}: NATS credentials are given ${ways.length} ways (${
        ways.map(([from]) => from).join("; ")
      }); give one`,
    );
  }
  return ways[0]?.[1] ?? { kind: "none" };
}

/** The TLS files: from the option, else the variables; each one readable. */
function resolveTls(
  option: NatsTlsOptions | undefined,
): NatsTlsFiles | undefined {
  const names = { ca: "CA", cert: "CERT", key: "KEY" } as const;
  const tls: NatsTlsFiles = {};
  const from: Record<string, string> = {};
  if (option !== undefined) {
    if (typeof option !== "object" || option === null) {
      throw new TypeError(`${WHERE}: nats.tls must be an object`);
    }
    for (const key of ["ca", "cert", "key"] as const) {
      const value: unknown = option[key];
      if (value === undefined) continue;
      if (typeof value !== "string" || value === "") {
        throw new TypeError(
          `${WHERE}: nats.tls.${key} must be a non-empty string (a file path)`,
        );
      }
      tls[key] = value;
      from[key] = `nats.tls.${key}`;
    }
  } else {
    for (const key of ["ca", "cert", "key"] as const) {
      const env = `MAGIC_FOUNDATION_NATS_TLS_${names[key]}`;
      const value = readEnv(env);
      if (value === undefined) continue;
      tls[key] = value;
      from[key] = env;
    }
    if (Object.keys(tls).length === 0) return undefined;
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError(
      `${WHERE}: ${
        from.cert ?? from.key
      } is set without its pair: a client certificate needs both a cert and a key`,
    );
  }
  for (const [key, file] of Object.entries(tls)) {
    try {
      Deno.statSync(file);
    } catch (error) {
      throw new TypeError(
        `${WHERE}: ${from[key]} "${file}": ${errorMessage(error)}`,
        { cause: error },
      );
    }
  }
  return tls;
}
