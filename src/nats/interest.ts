/**
 * What the pools of this process subscribe to, seen from the NATS gateway:
 * one NATS subscription per pattern for the subscriptions outside a group,
 * one NATS queue subscription per group, and who gets what arrives on each.
 *
 * @module
 */
import type { SubscriptionEntry } from "../bus/entry.ts";
import { groupKeyOf } from "../bus/routes.ts";
import type { MemberPick } from "../transport/transport.ts";

/** A NATS subscription the gateway holds for the pools. */
export interface Interest {
  /** The queue pattern. */
  queue: string;
  /** The group, for a NATS queue subscription. */
  group?: string | undefined;
}

/** The subscriptions of one pool that a message on a pattern goes to. */
export interface PoolTargets {
  /** The pool's index. */
  pool: number;
  /** Its subscriptions with that pattern, addressed by id. */
  members: MemberPick[];
}

/** The NATS subscriptions to open and close after a change of the table. */
export interface InterestChange {
  open: Interest[];
  close: Interest[];
}

interface Fanout {
  queue: string;
  targets: PoolTargets[];
}

interface Group {
  queue: string;
  group: string;
  key: string;
  members: SubscriptionEntry[];
  turn: number;
}

/**
 * The table of this process's subscriptions, kept by pattern and by group.
 *
 * @example Two subscriptions on one pattern need one NATS subscription
 * ```ts
 * import { InterestTable } from "./interest.ts";
 * import assert from "node:assert/strict";
 *
 * const table = new InterestTable();
 * const entry = (id: string, poolIndex: number) => ({
 *   id, poolIndex, pool: `p${poolIndex}`, service: "S", queue: "q://a/*",
 * });
 * const change = table.apply([entry("0.1.1", 0), entry("1.1.1", 1)], []);
 * assert.deepEqual(change.open, [{ queue: "q://a/*" }]);
 * assert.deepEqual(table.fanout("q://a/*").map((t) => t.pool), [0, 1]);
 * assert.deepEqual(table.apply([], ["0.1.1", "1.1.1"]).close, [
 *   { queue: "q://a/*" },
 * ]);
 * ```
 */
export class InterestTable {
  #entries = new Map<string, SubscriptionEntry>();
  #fanouts = new Map<string, Fanout>();
  #groups = new Map<string, Group>();

  /** Applies a change of the table; says which NATS subscriptions change. */
  apply(
    add: readonly SubscriptionEntry[],
    remove: readonly string[],
  ): InterestChange {
    const touchedFanouts = new Set<string>();
    const touchedGroups = new Set<string>();
    // Patterns and group keys (which hold a NUL) share one set.
    const before = new Set([...this.#fanouts.keys(), ...this.#groups.keys()]);
    for (const id of remove) {
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      this.#entries.delete(id);
      if (entry.group === undefined) touchedFanouts.add(entry.queue);
      else touchedGroups.add(groupKeyOf(entry.queue, entry.group));
    }
    for (const entry of add) {
      if (this.#entries.has(entry.id)) continue;
      this.#entries.set(entry.id, entry);
      if (entry.group === undefined) touchedFanouts.add(entry.queue);
      else touchedGroups.add(groupKeyOf(entry.queue, entry.group));
    }
    for (const queue of touchedFanouts) this.#rebuildFanout(queue);
    for (const key of touchedGroups) this.#rebuildGroup(key);
    const change: InterestChange = { open: [], close: [] };
    for (const queue of touchedFanouts) {
      const had = before.has(queue);
      const has = this.#fanouts.has(queue);
      if (has && !had) change.open.push({ queue });
      if (had && !has) change.close.push({ queue });
    }
    for (const key of touchedGroups) {
      const had = before.has(key);
      const group = this.#groups.get(key);
      if (group !== undefined && !had) {
        change.open.push({ queue: group.queue, group: group.group });
      }
      if (group === undefined && had) change.close.push(splitGroupKey(key));
    }
    return change;
  }

  /** The pools (and their subscriptions) a message on pattern `queue` goes to. */
  fanout(queue: string): readonly PoolTargets[] {
    return this.#fanouts.get(queue)?.targets ?? NO_TARGETS;
  }

  /**
   * The next member, round robin, of the group `group` on pattern `queue`,
   * or `undefined` when it has none left in this process.
   */
  member(queue: string, group: string): PoolTargets | undefined {
    const found = this.#groups.get(groupKeyOf(queue, group));
    if (found === undefined) return undefined;
    const entry = found.members[found.turn++ % found.members.length]!;
    return {
      pool: entry.poolIndex,
      members: [{ id: entry.id, key: found.key }],
    };
  }

  /** The NATS subscriptions held now. */
  interests(): Interest[] {
    const all: Interest[] = [...this.#fanouts.keys()].map((queue) => ({
      queue,
    }));
    for (const group of this.#groups.values()) {
      all.push({ queue: group.queue, group: group.group });
    }
    return all;
  }

  #rebuildFanout(queue: string): void {
    const byPool = new Map<number, MemberPick[]>();
    for (const entry of this.#entries.values()) {
      if (entry.group !== undefined || entry.queue !== queue) continue;
      let members = byPool.get(entry.poolIndex);
      if (members === undefined) byPool.set(entry.poolIndex, members = []);
      members.push({ id: entry.id, key: "" });
    }
    if (byPool.size === 0) {
      this.#fanouts.delete(queue);
      return;
    }
    const targets = [...byPool].sort(([a], [b]) => a - b).map((
      [pool, members],
    ) => ({ pool, members }));
    this.#fanouts.set(queue, { queue, targets });
  }

  #rebuildGroup(key: string): void {
    const members = [...this.#entries.values()].filter((entry) =>
      entry.group !== undefined && groupKeyOf(entry.queue, entry.group) === key
    ).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (members.length === 0) {
      this.#groups.delete(key);
      return;
    }
    const existing = this.#groups.get(key);
    if (existing !== undefined) {
      existing.members = members;
      return;
    }
    const { queue, group } = splitGroupKey(key);
    this.#groups.set(key, { queue, group, key, members, turn: 0 });
  }
}

const NO_TARGETS: readonly PoolTargets[] = Object.freeze([]);

function splitGroupKey(key: string): { queue: string; group: string } {
  const at = key.indexOf("\u0000");
  return { queue: key.slice(0, at), group: key.slice(at + 1) };
}
