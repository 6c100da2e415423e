import type { PoolBus } from "../bus/bus.ts";
import type { Logger } from "../logger.ts";
import type {
  MessageHandler,
  PublishOptions,
  RequestOptions,
  ServiceContext,
  SubscribeOptions,
  Subscription,
  Topology,
  TopologyEntry,
} from "../service_context.ts";
import type { MetricsSnapshot } from "../metrics_snapshot.ts";
import { abortableDelay } from "../_util/time.ts";
import { checkDuration } from "../_util/duration.ts";
import { SHARED_STORE, type SharedStore } from "../transport/remote.ts";

/** The context of one service: its names, its logger, and the bus on its behalf. */
export class PoolServiceContext implements ServiceContext {
  readonly pool: string;
  readonly service: string;
  readonly signal: AbortSignal;
  readonly log: Logger;
  #bus: PoolBus;

  constructor(
    bus: PoolBus,
    pool: string,
    service: string,
    signal: AbortSignal,
    log: Logger,
  ) {
    this.#bus = bus;
    this.pool = pool;
    this.service = service;
    this.signal = signal;
    this.log = log;
  }

  sleep(ms: number): Promise<void> {
    try {
      checkDuration("Cannot sleep", "ms", ms, ">= 0");
    } catch (error) {
      return Promise.reject(error);
    }
    return abortableDelay(ms, this.signal);
  }

  publish(
    queue: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<void> {
    return this.#bus.publish(this.service, queue, data, options);
  }

  subscribe<T = unknown>(
    queue: string,
    handler: MessageHandler<T>,
    options?: SubscribeOptions,
  ): Promise<Subscription> {
    return this.#bus.subscribe(this.service, queue, handler, options);
  }

  unsubscribe<T = unknown>(
    queue: string,
    handler: MessageHandler<T>,
  ): Promise<void> {
    return this.#bus.unsubscribe(
      this.service,
      queue,
      handler as MessageHandler<never>,
    );
  }

  request<T = unknown>(
    queue: string,
    data: unknown,
    options?: RequestOptions,
  ): Promise<T> {
    if (options?.timeout !== undefined) {
      try {
        checkDuration(
          `Cannot request on "${queue}"`,
          "timeout",
          options.timeout,
        );
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#bus.request<T>(this.service, queue, data, options);
  }

  topology(): Promise<Topology> {
    return this.#bus.globalTopology();
  }

  metrics(): Promise<MetricsSnapshot> {
    return this.#bus.globalMetrics();
  }

  async dumpQueueTree(): Promise<void> {
    this.log.info(formatQueueTree(await this.topology()));
  }

  /** The pool's store shared between processes (see `sharedStoreOf`). */
  [SHARED_STORE](): SharedStore | undefined {
    return this.#bus.sharedStore();
  }
}

/** Renders a topology as the Python original's queue tree. */
function formatQueueTree(topology: Topology): string {
  const lines = ["queue tree:"];
  const queues = Object.keys(topology).sort();
  for (const queue of queues) {
    lines.push(`  ${queue}`);
    const pools = topology[queue]!;
    for (const pool of Object.keys(pools).sort()) {
      lines.push(`    ${pool}`);
      for (const entry of pools[pool]!) {
        lines.push(`      ${describeEntry(entry)}`);
      }
    }
  }
  if (queues.length === 0) lines.push("  (no subscriptions)");
  return lines.join("\n");
}

function describeEntry(entry: TopologyEntry): string {
  const group = entry.group === undefined ? "" : ` group=${entry.group}`;
  return `${entry.service}${group} buffered=${entry.buffered} highWater=${entry.highWater} delivered=${entry.delivered}`;
}
