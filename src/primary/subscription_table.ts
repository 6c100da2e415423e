/**
 * The table of every pool's subscriptions, kept by the primary: a pool
 * tells it of a subscription, and the primary tells every other pool.
 *
 * @module
 */
import type { SubscriptionEntry } from "../bus/entry.ts";
import type { PoolCalls } from "./pool_calls.ts";

/** Every pool's subscriptions, by id, and the broadcast of their changes. */
export class SubscriptionTable {
  #table = new Map<number, SubscriptionEntry>();
  readonly #calls: PoolCalls;

  constructor(calls: PoolCalls) {
    this.#calls = calls;
  }

  /** Every subscription, for a pool that joins. */
  entries(): SubscriptionEntry[] {
    return [...this.#table.values()];
  }

  /** Adds pool `from`'s subscription; resolves once the other pools have it. */
  add(entry: SubscriptionEntry, from: number): Promise<unknown[]> {
    this.#table.set(entry.id, entry);
    return this.broadcast([entry], [], from);
  }

  /** Removes pool `from`'s subscriptions; resolves once the other pools know. */
  remove(ids: readonly number[], from: number): Promise<unknown[]> {
    for (const id of ids) this.#table.delete(id);
    return this.broadcast([], [...ids], from);
  }

  /** Removes every subscription of pool `index` (not told to the others). */
  dropPool(index: number): number[] {
    const removed = [...this.#table.values()].filter((e) =>
      e.poolIndex === index
    )
      .map((e) => e.id);
    for (const id of removed) this.#table.delete(id);
    return removed;
  }

  /**
   * Tells every pool but `except` of a change of the table; resolves once
   * each has applied it, or is stalled (see `stalls.ts`): a pool whose
   * event loop is blocked holds up nobody's `subscribe()` beyond the stall
   * threshold. It applies the change before any later message from the
   * primary once its loop turns again.
   */
  broadcast(
    add: SubscriptionEntry[],
    remove: number[],
    except: number,
  ): Promise<unknown[]> {
    return this.#calls.ask(
      (ack) => ({ mf: 1, kind: "table", add, remove, ack }),
      except,
      "skip-stalled",
    );
  }
}
