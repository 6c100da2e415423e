/**
 * How a connection proves who it is: the credentials of a run as plain data
 * (they travel to each pool), the client's connect options made of them,
 * and which connect errors no retry cures.
 *
 * The client (nats.js 3.4) ignores credentials in a server URL, so they are
 * taken out of the URL here and passed as options; the URLs that remain,
 * the only ones ever logged or put in an error, hold none.
 *
 * @module
 */
import type { Authenticator, NatsClient } from "./client.ts";

/** How the run authenticates to the server (one way at most). */
export type NatsAuth =
  | { kind: "none" }
  | { kind: "password"; user: string; password: string }
  | { kind: "token"; token: string }
  /** A `.creds` file (a user JWT and its NKEY seed) or a bare NKEY seed file. */
  | { kind: "credentials"; file: string };

/** The TLS files of a run (paths); set means TLS is required. */
export interface NatsTlsFiles {
  /** The CA that vouches for the server (default: the system's). */
  ca?: string | undefined;
  /** The client certificate (with `key`). */
  cert?: string | undefined;
  /** The client certificate's private key. */
  key?: string | undefined;
}

/** What a credentials file holds. */
export interface Credentials {
  /** The user JWT, absent in a bare NKEY seed file. */
  jwt: string | undefined;
  /** The user NKEY seed (`SU…`). */
  seed: string;
}

/** A user JWT: three base64url parts, the first `{"typ":"JWT"…`. */
const JWT = /\beyJ[\w-]*\.[\w-]+\.[\w-]+/;
/** A user NKEY seed: `SU` and 56 base32 characters. */
const SEED = /\bSU[A-Z2-7]{56}\b/;

/**
 * A server address without the credentials it may carry, and those
 * credentials: `nats://user:password@host` has a user and a password,
 * `nats://token@host` a token (as the Go client reads it).
 *
 * @param server A server address (`nats://…`, `tls://…`, `host:port`).
 * @returns The address without credentials, and the credentials.
 *
 * @example Take credentials out of a URL
 * ```ts
 * import { splitServer } from "./auth.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(splitServer("nats://al%40ce:s3cret@h:4222"), {
 *   server: "nats://h:4222",
 *   auth: { kind: "password", user: "al@ce", password: "s3cret" },
 * });
 * assert.deepEqual(splitServer("nats://t0ken@h:4222").auth, {
 *   kind: "token",
 *   token: "t0ken",
 * });
 * assert.equal(splitServer("alice:s3cret@h:4222").server, "h:4222");
 * assert.deepEqual(splitServer("h:4222"), {
 *   server: "h:4222",
 *   auth: { kind: "none" },
 * });
 * ```
 */
export function splitServer(
  server: string,
): { server: string; auth: NatsAuth } {
  const match = /^((?:[a-z]+:\/\/)?)([^@/]*)@(.*)$/i.exec(server);
  if (match === null) return { server, auth: { kind: "none" } };
  const [, scheme, userinfo, rest] = match as unknown as [
    string,
    string,
    string,
    string,
  ];
  const stripped = scheme + rest;
  const colon = userinfo.indexOf(":");
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  if (colon === -1) {
    return {
      server: stripped,
      auth: { kind: "token", token: decode(userinfo) },
    };
  }
  return {
    server: stripped,
    auth: {
      kind: "password",
      user: decode(userinfo.slice(0, colon)),
      password: decode(userinfo.slice(colon + 1)),
    },
  };
}

/**
 * Reads a credentials file's text: a `.creds` file (a user JWT and its seed,
 * as `nsc` writes it) or a bare user NKEY seed.
 *
 * @param text The file's text.
 * @returns What it holds, or `undefined` when it holds no user seed.
 *
 * @example Read a bare seed and a .creds file
 * ```ts
 * import { parseCredentials } from "./auth.ts";
 * import assert from "node:assert/strict";
 *
 * const seed = "SU" + "A".repeat(56);
 * assert.deepEqual(parseCredentials(seed + "\n"), { jwt: undefined, seed });
 * const creds = `-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVIn0.c2ln\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
 * assert.deepEqual(parseCredentials(creds), {
 *   jwt: "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVIn0.c2ln",
 *   seed,
 * });
 * assert.equal(parseCredentials("nothing here"), undefined);
 * ```
 */
export function parseCredentials(text: string): Credentials | undefined {
  const seed = SEED.exec(text)?.[0];
  if (seed === undefined) return undefined;
  return { jwt: JWT.exec(text)?.[0], seed };
}

/** Reads and parses a credentials file; throws a clear error if it cannot. */
export function readCredentials(file: string): Credentials {
  const credentials = parseCredentials(Deno.readTextFileSync(file));
  if (credentials === undefined) {
    throw new TypeError(
      `Cannot read NATS credentials "${file}": it holds no user NKEY seed (SU…)`,
    );
  }
  return credentials;
}

/** The client's connect options for `auth` and `tls`. */
export interface AuthConnectOptions {
  user?: string;
  pass?: string;
  token?: string;
  authenticator?: Authenticator;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/**
 * The client's connect options for a run's credentials and TLS files. A
 * credentials file is read again at each connection, so a renewed file is
 * used at the next reconnect.
 *
 * @param client The loaded client module.
 * @param auth How to authenticate.
 * @param tls The TLS files, or `undefined` for no TLS required.
 * @returns Options to spread into `connect()`.
 */
export function authConnectOptions(
  client: NatsClient,
  auth: NatsAuth,
  tls: NatsTlsFiles | undefined,
): AuthConnectOptions {
  const options: AuthConnectOptions = {};
  switch (auth.kind) {
    case "none":
      break;
    case "password":
      options.user = auth.user;
      options.pass = auth.password;
      break;
    case "token":
      options.token = auth.token;
      break;
    case "credentials":
      options.authenticator = (nonce?: string) => {
        const { jwt, seed } = readCredentials(auth.file);
        const bytes = new TextEncoder().encode(seed);
        return jwt === undefined
          ? client.nkeyAuthenticator(bytes)(nonce)
          : client.jwtAuthenticator(jwt, bytes)(nonce);
      };
      break;
    default: {
      const unknown: never = auth;
      throw new TypeError(`Unknown NATS auth ${JSON.stringify(unknown)}`);
    }
  }
  if (tls !== undefined) {
    options.tls = {};
    if (tls.ca !== undefined) options.tls.caFile = tls.ca;
    if (tls.cert !== undefined) options.tls.certFile = tls.cert;
    if (tls.key !== undefined) options.tls.keyFile = tls.key;
  }
  return options;
}

/** Node's codes for a server certificate that does not verify. */
const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Why a failed connection attempt can never succeed as configured (the
 * server refused the credentials, or TLS cannot work), or `undefined` when
 * a retry may help (the server is down, the network failed).
 *
 * @param error What the client's `connect()` threw, or what closed it.
 * @param auth How the connection authenticated, named in the reason.
 * @returns The reason, for a {@linkcode NatsAuthError}, or `undefined`.
 *
 * @example Tell a refusal from an outage
 * ```ts
 * import { refusalReason } from "./auth.ts";
 * import assert from "node:assert/strict";
 *
 * const violation = Object.assign(new Error("'Authorization Violation'"), {
 *   name: "AuthorizationError",
 * });
 * assert.equal(
 *   refusalReason(violation, { kind: "token", token: "x" }),
 *   "the server refused a token ('Authorization Violation')",
 * );
 * const refused = Object.assign(new Error("connection refused"), {
 *   name: "ConnectionError",
 * });
 * assert.equal(refusalReason(refused, { kind: "none" }), undefined);
 * ```
 */
export function refusalReason(
  error: unknown,
  auth: NatsAuth,
): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (
    error.name === "AuthorizationError" ||
    error.name === "UserAuthenticationExpiredError"
  ) {
    return `the server refused ${describeAuth(auth)} (${error.message})`;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && TLS_CODES.has(code)) {
    return `TLS failed: the server's certificate does not verify (${error.message}); check nats.tls.ca`;
  }
  if (/does not support 'tls'|tls.*is not available/i.test(error.message)) {
    return `TLS failed: the server does not offer TLS (${error.message})`;
  }
  return undefined;
}

/** The credentials of `auth` as a refusal names them (never the secret). */
function describeAuth(auth: NatsAuth): string {
  switch (auth.kind) {
    case "none":
      return "a connection with no credentials";
    case "password":
      return `user ${JSON.stringify(auth.user)} and its password`;
    case "token":
      return "a token";
    case "credentials":
      return `the credentials in ${JSON.stringify(auth.file)}`;
  }
}
