/**
 * The NATS client and its JetStream API, loaded on first use: a program that
 * does not join NATS never loads them, one without durable queues never
 * loads JetStream.
 *
 * @module
 */
// The one place in src/ that names the client. A full npm: specifier: a bare
// one resolves only through this repository's deno.json, so a program in its
// own folder (importing mod.ts by file URL or over HTTP) could not load it.
// tests/dependencies_test.ts checks that it matches deno.json's imports.
import type * as Nats from "npm:@nats-io/transport-node@3.4.0";

/** The client module (`npm:@nats-io/transport-node`). */
export type NatsClient = typeof Nats;

export type {
  Authenticator,
  Msg,
  MsgHdrs,
  NatsConnection,
  Status,
} from "npm:@nats-io/transport-node@3.4.0";

let loading: Promise<NatsClient> | undefined;

/** Loads the client once; later calls share the same module. */
export function loadNatsClient(): Promise<NatsClient> {
  return loading ??= import("npm:@nats-io/transport-node@3.4.0");
}

/** The JetStream module (`npm:@nats-io/jetstream`). */
export type JetStreamModule = typeof import("npm:@nats-io/jetstream@3.4.0");

export type {
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
  StreamConfig,
} from "npm:@nats-io/jetstream@3.4.0";

let loadingJetStream: Promise<JetStreamModule> | undefined;

/**
 * Loads the JetStream module once, on first use (a program that uses no
 * JetStream never loads it).
 */
export function loadJetStream(): Promise<JetStreamModule> {
  return loadingJetStream ??= import("npm:@nats-io/jetstream@3.4.0");
}
