/**
 * Opens the carrier a run uses between processes, when it joins one (NATS
 * today): the one place that names its implementation, loaded only by a
 * program that joins it.
 *
 * @module
 */
import type { NatsSettings } from "../nats/options.ts";
import type {
  JetStreamParts,
  JetStreamSetup,
} from "../nats/jetstream_carrier.ts";
import type { DurableCarrier } from "../durable/carrier.ts";
import type { OpenRemoteCarrier } from "./remote.ts";

/** What a pool needs to open its end of the carrier between processes. */
export interface RemoteSetup {
  kind: "nats";
  settings: NatsSettings;
  /** The process's id, the same in all its pools. */
  processId: string;
  /** How long a stop waits for the carrier to deliver what it holds, in ms. */
  closeTimeout: number;
  /** The durable queues, kept by the carrier (JetStream), when there are. */
  durable?: JetStreamSetup | undefined;
}

/** Opens a pool's carrier of durable queues between processes. */
export type OpenDurableCarrier = (parts: JetStreamParts) => DurableCarrier;

/**
 * Loads the durable-queue carrier of `setup` (JetStream), when the program
 * has durable queues; `undefined` otherwise.
 */
export async function loadDurableCarrier(
  setup: RemoteSetup,
): Promise<OpenDurableCarrier | undefined> {
  if (setup.durable === undefined) return undefined;
  const { jetStreamCarrier } = await import("../nats/jetstream_carrier.ts");
  return await jetStreamCarrier({
    ...setup.settings,
    processId: setup.processId,
    closeTimeout: setup.closeTimeout,
  }, setup.durable);
}

/**
 * Loads the carrier of `setup` (its client included: a pool that cannot
 * load it fails to start) and returns its opener.
 */
export async function loadRemoteCarrier(
  setup: RemoteSetup,
): Promise<OpenRemoteCarrier> {
  switch (setup.kind) {
    case "nats": {
      const { natsCarrier } = await import("../nats/carrier.ts");
      return await natsCarrier({
        ...setup.settings,
        processId: setup.processId,
        closeTimeout: setup.closeTimeout,
      });
    }
    default: {
      const unknown: never = setup.kind;
      throw new TypeError(`Unknown remote carrier "${String(unknown)}"`);
    }
  }
}
