/**
 * The NATS client, loaded on first use: a program that does not join NATS
 * never loads it.
 *
 * @module
 */
import type * as Nats from "@nats-io/transport-node";

/** The client module (`npm:@nats-io/transport-node`, version pinned in `deno.json`). */
export type NatsClient = typeof Nats;

let loading: Promise<NatsClient> | undefined;

/** Loads the client once; later calls share the same module. */
export function loadNatsClient(): Promise<NatsClient> {
  return loading ??= import("@nats-io/transport-node");
}
