/**
 * The primary's hookup of the durable queues' local log: the broker opens
 * before the pools start, carries the pools' durable messages, and closes
 * once every pool has stopped, saying what is left pending.
 *
 * @module
 */
import { LocalBroker } from "../durable/broker.ts";
import type { DurableSettings } from "../durable/options.ts";
import type { PoolToBroker } from "../durable/protocol.ts";
import { logPending } from "../durable/pending_report.ts";
import type { DurablePending } from "../run_report.ts";
import type { Logger } from "../logger.ts";
import type { PoolHandle } from "./pool_handle.ts";

/** The durable queues' local log, open while the program runs. */
export class DurableLink {
  #broker: LocalBroker | undefined;
  readonly #log: Logger;

  private constructor(broker: LocalBroker, log: Logger) {
    this.#broker = broker;
    this.#log = log;
  }

  /** Opens the log of `settings`; its deliveries go to `pools`. */
  static async open(
    settings: DurableSettings,
    pools: readonly PoolHandle[],
    log: Logger,
  ): Promise<DurableLink> {
    const broker = await LocalBroker.open(
      settings,
      (index, message) =>
        pools[index]?.send({ mf: 1, kind: "durable", message }),
      log,
    );
    return new DurableLink(broker, log);
  }

  /** A durable message from pool `index`. */
  receive(index: number, message: PoolToBroker): void {
    this.#broker?.receive(index, message);
  }

  /** Pool `index` died: its deliveries go to the other consumers. */
  poolGone(index: number): void {
    this.#broker?.poolGone(index);
  }

  /** The ordered stop began: nothing more is delivered. */
  stopDelivering(): void {
    this.#broker?.stopDelivering();
  }

  /**
   * Closes the log once every pool has stopped; logs what is left pending
   * and returns each consumer's counts (`undefined` if already closed).
   */
  async close(): Promise<DurablePending[] | undefined> {
    const broker = this.#broker;
    if (broker === undefined) return undefined;
    this.#broker = undefined;
    const pending = await broker.close();
    logPending(pending, this.#log);
    return pending;
  }
}
