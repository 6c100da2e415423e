/**
 * Opens the transport a run uses: the primary's hub and each pool's end.
 *
 * @module
 */
import type { Scheduler } from "../scheduler.ts";
import { BroadcastTransport } from "./broadcast.ts";
import { BroadcastHub } from "./broadcast_hub.ts";
import { PortHub } from "./port_hub.ts";
import { PortMeshTransport } from "./port_mesh.ts";
import type {
  PostToPool,
  Transport,
  TransportHub,
  TransportSetup,
} from "./transport.ts";
import type { TransportKind } from "./kinds.ts";

/** The primary's hub for a run of `pools` pools on transport `kind`. */
export function createHub(
  kind: TransportKind,
  runId: string,
  pools: number,
  post: PostToPool,
): TransportHub {
  switch (kind) {
    case "ports":
      return new PortHub(post);
    case "broadcast":
      return new BroadcastHub(runId, pools);
    default: {
      const unknown: never = kind;
      throw new TypeError(`Unknown transport "${String(unknown)}"`);
    }
  }
}

/** Opens pool `index`'s end of the transport described by `setup`. */
export function openTransport(
  setup: TransportSetup,
  index: number,
  incarnation: number,
  scheduler: Scheduler,
): Transport {
  switch (setup.kind) {
    case "ports":
      return new PortMeshTransport(setup.peers, scheduler);
    case "broadcast":
      return new BroadcastTransport(
        setup.name,
        setup.credits,
        index,
        incarnation,
        scheduler,
      );
    default: {
      const unknown: never = setup;
      throw new TypeError(`Unknown transport setup ${JSON.stringify(unknown)}`);
    }
  }
}
