/**
 * Opens the carrier a run uses between processes, when it joins one (NATS
 * today): the one place that names its implementation, loaded only by a
 * program that joins it.
 *
 * @module
 */
import type { NatsSettings } from "../nats/options.ts";
import type { OpenRemoteCarrier } from "./remote.ts";

/** What a pool needs to open its end of the carrier between processes. */
export interface RemoteSetup {
  kind: "nats";
  settings: NatsSettings;
  /** The process's id, the same in all its pools. */
  processId: string;
  /** How long a stop waits for the carrier to deliver what it holds, in ms. */
  closeTimeout: number;
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
