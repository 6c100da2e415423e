/**
 * Which carrier a pool's durable queues take: JetStream on the pool's own
 * NATS connection when the program joins NATS, else the local log that the
 * main thread keeps. Decided here once; the bus sees only the client.
 *
 * @module
 */
import { type DurableCarrier, LocalCarrier } from "../durable/carrier.ts";
import { DurableClient } from "../durable/client.ts";
import type { Logger } from "../logger.ts";
import type { DurablePending } from "../run_report.ts";
import type { MessageMeta } from "../service_context.ts";
import { remoteDurable } from "./boot.ts";
import type { DurablePoolSettings, FromPool } from "./protocol.ts";

/** A pool's durable queues: the bus's client and the carrier under it. */
export interface PoolDurable {
  client: DurableClient;
  carrier: DurableCarrier;
  /** The carrier, when it is the local log's (it hears from the primary). */
  local: LocalCarrier | undefined;
  /**
   * Joined to NATS, what the pool's consumers leave pending, asked at its
   * stop for the run report; on the local log the broker reports instead.
   */
  report: (() => Promise<DurablePending[]>) | undefined;
}

/** What opening a pool's durable queues needs. */
export interface DurableSetup {
  settings: DurablePoolSettings;
  pool: string;
  poolIndex: number;
  log: Logger;
  send(message: FromPool): void;
  /** Runs a task on the pool's next macrotask (the scheduler's). */
  defer(task: () => void): void;
  handlerFailed(service: string, error: unknown, meta: MessageMeta): void;
}

/** Opens a pool's durable queues on the carrier the run calls for. */
export function openPoolDurable(setup: DurableSetup): PoolDurable {
  const { settings, pool, send } = setup;
  let carrier: DurableCarrier;
  let local: LocalCarrier | undefined;
  if (remoteDurable !== undefined) {
    // Joined to NATS: JetStream, on the pool's own connection.
    carrier = remoteDurable({
      pool,
      log: setup.log,
      status: (change) => send({ mf: 1, kind: "remote-status", ...change }),
    });
  } else {
    local = new LocalCarrier(
      (message) => send({ mf: 1, kind: "durable", message }),
      setup.defer,
    );
    carrier = local;
  }
  const client = new DurableClient({
    streams: settings.streams,
    groupOnly: settings.groupOnly,
    policy: settings,
    carrier,
    pool,
    poolIndex: setup.poolIndex,
    handlerFailed: setup.handlerFailed,
  });
  return {
    client,
    carrier,
    local,
    report: local === undefined ? () => client.report() : undefined,
  };
}
