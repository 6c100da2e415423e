import type { PoolBus } from "../bus/bus.ts";
import type {
  Logger,
  MessageHandler,
  MessageMeta,
  PublishOptions,
  RequestOptions,
  ServiceContext,
  SubscribeOptions,
  Subscription,
  Topology,
  TopologyEntry,
} from "../types.ts";
import { abortableDelay } from "../_util/time.ts";
import { checkDuration } from "../_util/duration.ts";

/** Where a context reports a handler's throw. */
export type HandlerErrorSink = (error: unknown, meta: MessageMeta) => void;

/** The context of one service: its names, its logger, and the bus on its behalf. */
export class PoolServiceContext implements ServiceContext {
  readonly pool: string;
  readonly service: string;
  readonly signal: AbortSignal;
  readonly log: Logger;
  #bus: PoolBus;
  #onHandlerError: HandlerErrorSink;
  /** Each handler and the wrapper that reports its throws (one per handler, so `unsubscribe` finds it). */
  #wrapped = new WeakMap<MessageHandler<never>, MessageHandler<never>>();

  constructor(
    bus: PoolBus,
    pool: string,
    service: string,
    signal: AbortSignal,
    log: Logger,
    onHandlerError: HandlerErrorSink = () => {},
  ) {
    this.#bus = bus;
    this.#onHandlerError = onHandlerError;
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
    return this.#bus.subscribe(
      this.service,
      queue,
      this.#wrap(handler as MessageHandler<never>) as MessageHandler<T>,
      options,
    );
  }

  unsubscribe<T = unknown>(
    queue: string,
    handler: MessageHandler<T>,
  ): Promise<void> {
    const original = handler as MessageHandler<never>;
    return this.#bus.unsubscribe(
      this.service,
      queue,
      this.#wrapped.get(original) ?? original,
    );
  }

  /**
   * The handler, wrapped so that a throw (or a rejection) is reported as an
   * `error` event instead of only logged. A synchronous handler stays
   * synchronous: the bus awaits only what returns a promise.
   */
  #wrap(handler: MessageHandler<never>): MessageHandler<never> {
    if (typeof handler !== "function") return handler; // the bus refuses it
    let wrapped = this.#wrapped.get(handler);
    if (wrapped !== undefined) return wrapped;
    const report = this.#onHandlerError;
    wrapped = (data: never, meta: MessageMeta): void | Promise<void> => {
      try {
        const result = handler(data, meta);
        if (result instanceof Promise) {
          return result.then(undefined, (error) => report(error, meta));
        }
        return result;
      } catch (error) {
        report(error, meta);
      }
    };
    this.#wrapped.set(handler, wrapped);
    return wrapped;
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

  async dumpQueueTree(): Promise<void> {
    this.log.info(formatQueueTree(await this.topology()));
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
