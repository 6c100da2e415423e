import type { RemoteEntry } from "../transport/remote.ts";
import type { Address } from "../transport/transport.ts";
import type { SubscriptionEntry } from "./entry.ts";
import {
  type PatternCounter,
  type PublisherCounters,
  PublisherTally,
} from "./publisher_counters.ts";
import { QueueIndex } from "../queue_name.ts";
import type { LocalSubscription } from "./subscription.ts";
import type { PublisherMetrics } from "../metrics_snapshot.ts";

/** A member of a competing-consumer group, in this pool or another. */
export interface Member {
  /** The subscription's number (its table id). */
  id: number;
  /** The index of the member's pool. */
  pool: number;
  /** The subscription, when the member is in this pool. */
  local: LocalSubscription | undefined;
}

/** The members of one group whose pattern matches a queue. */
export interface GroupRoute {
  key: string;
  members: Member[];
}

/** The pools a message is sent to, and its subscriptions there. */
export interface Delivery {
  /** The receiving pools, in order. */
  pools: readonly number[];
  /** The subscriptions in each (shared by every message sent alike). */
  address: Address;
}

/** Where a message on one concrete queue goes. */
export interface Route {
  /** This pool's subscriptions outside any group. */
  local: readonly LocalSubscription[];
  /** The other pools' subscriptions outside any group. */
  plain: Delivery;
  /** The groups, each to get the message once. */
  groups: GroupRoute[];
  /**
   * Whether a subscriber outside this process may want it (another process
   * announced a matching subscription, it is exported, or the carrier does
   * not know yet): then it goes to the carrier between processes.
   */
  elsewhere: boolean;
  /**
   * Whether one of `groups` has members outside this process too (or the
   * carrier does not know yet): then the server picks each group's member.
   */
  groupsElsewhere: boolean;
  /** The distinct patterns (in any pool) that match the queue. */
  patterns: readonly string[];
  /** The counters of each service of this pool that published here. */
  publishers: Map<string, RoutePublisher>;
  /** `local` narrowed to one pattern, for messages from other processes. */
  byPattern: Map<string, readonly LocalSubscription[]>;
  /** Each group's members in this pool, for messages from other processes. */
  localGroups: Map<string, GroupRoute>;
  /**
   * `plain` plus one group member of another pool, by the member's number
   * (the publisher picked it), built once per member.
   */
  withMember: Map<number, Delivery>;
}

/** One service's counters a route adds to. */
interface RoutePublisher {
  /** The service's counters. */
  counters: PublisherCounters;
  /** Its counter of each of the route's patterns. */
  patterns: readonly PatternCounter[];
}

/** How many departed group members `Routes` remembers at most. */
const DEPARTED_KEPT = 4096;

/** The key that identifies a competing-consumer group. */
export function groupKeyOf(queue: string, group: string): string {
  return `${queue}\u0000${group}`;
}

/** The group's name in a key made by {@linkcode groupKeyOf}. */
export function groupNameOf(key: string): string {
  return key.slice(key.indexOf("\u0000") + 1);
}

/**
 * Who subscribes to what, in this pool and (as the primary tells) in the
 * others, and the route of each concrete queue, cached until a subscription
 * changes.
 */
export class Routes {
  #index: number;
  #local = new QueueIndex<LocalSubscription>();
  #localById = new Map<number, LocalSubscription>();
  /**
   * The group key of this pool's group members removed lately, by number:
   * messages already on their way to one are handed to another member.
   */
  #departed = new Map<number, string>();
  #remote = new QueueIndex<SubscriptionEntry>();
  #remoteById = new Map<number, SubscriptionEntry>();
  #routes = new Map<string, Route>();
  /** The queue {@linkcode Routes.route} was last asked for, and its route. */
  #lastQueue: string | undefined;
  #lastRoute: Route | undefined;
  #roundRobin = new Map<string, number>();
  #publishers = new PublisherTally();
  /** Subscriptions outside this process, as the carrier learned them. */
  #elsewhere = new QueueIndex<RemoteEntry>();
  #elsewhereById = new Map<string, RemoteEntry>();
  /** Set while the carrier has not heard from the other processes. */
  #elsewhereUnknown = false;

  /** @param index This pool's index; its own entries in the table are skipped. */
  constructor(index: number) {
    this.#index = index;
  }

  /** This pool's subscriptions. */
  subscriptions(): IterableIterator<LocalSubscription> {
    return this.#localById.values();
  }

  /** This pool's subscription with number `id`, if it still exists. */
  subscription(id: number): LocalSubscription | undefined {
    return this.#localById.get(id);
  }

  /**
   * The group key of this pool's group member `id` once it is removed
   * (while remembered: the last few thousand), `undefined` for any other.
   */
  departedGroup(id: number): string | undefined {
    return this.#departed.get(id);
  }

  /** Adds a subscription of this pool. */
  add(subscription: LocalSubscription): void {
    this.#local.add(subscription.queue, subscription);
    this.#localById.set(subscription.id, subscription);
    this.#forgetRoutes();
  }

  /** Removes a subscription of this pool. */
  remove(subscription: LocalSubscription): void {
    this.#local.remove(subscription.queue, subscription);
    this.#localById.delete(subscription.id);
    if (subscription.group !== undefined) {
      if (this.#departed.size >= DEPARTED_KEPT) {
        this.#departed.delete(this.#departed.keys().next().value!);
      }
      this.#departed.set(
        subscription.id,
        groupKeyOf(subscription.queue, subscription.group),
      );
    }
    this.#forgetRoutes();
    this.#dropUnsubscribed(subscription.queue);
  }

  /** Forgets this pool's subscriptions (the pool stopped). */
  clear(): void {
    this.#localById.clear();
    this.#local = new QueueIndex();
    this.#forgetRoutes();
    this.#publishers.clear();
  }

  /** Applies a change of the table of the other pools' subscriptions. */
  applyTable(add: SubscriptionEntry[], remove: number[]): void {
    for (const id of remove) {
      const entry = this.#remoteById.get(id);
      if (entry === undefined) continue;
      this.#remoteById.delete(id);
      this.#remote.remove(entry.queue, entry);
      this.#dropUnsubscribed(entry.queue);
    }
    for (const entry of add) {
      if (entry.poolIndex === this.#index || this.#remoteById.has(entry.id)) {
        continue;
      }
      this.#remoteById.set(entry.id, entry);
      this.#remote.add(entry.queue, entry);
    }
    this.#forgetRoutes();
  }

  /** Applies a change of the subscriptions outside this process. */
  applyElsewhere(add: readonly RemoteEntry[], remove: readonly string[]): void {
    for (const id of remove) {
      const entry = this.#elsewhereById.get(id);
      if (entry === undefined) continue;
      this.#elsewhereById.delete(id);
      this.#elsewhere.remove(entry.pattern, entry);
    }
    for (const entry of add) {
      if (this.#elsewhereById.has(entry.id)) continue;
      this.#elsewhereById.set(entry.id, entry);
      this.#elsewhere.add(entry.pattern, entry);
    }
    this.#forgetRoutes();
  }

  /**
   * Whether the subscriptions outside this process are known; until they
   * are, every message may be wanted elsewhere.
   */
  knowElsewhere(known: boolean): void {
    if (this.#elsewhereUnknown === !known) return;
    this.#elsewhereUnknown = !known;
    this.#forgetRoutes();
  }

  /**
   * The route of a concrete queue. The last one asked for is kept beside
   * the map: a flow on one queue then costs a comparison, not a lookup.
   */
  route(queue: string): Route {
    if (queue === this.#lastQueue) return this.#lastRoute!;
    let route = this.#routes.get(queue);
    if (route !== undefined) {
      this.#lastQueue = queue;
      this.#lastRoute = route;
      return route;
    }
    const local: LocalSubscription[] = [];
    const groups = new Map<string, GroupRoute>();
    const member = (key: string, m: Member): void => {
      let group = groups.get(key);
      if (group === undefined) groups.set(key, group = { key, members: [] });
      group.members.push(m);
    };
    for (const subscription of this.#local.match(queue)) {
      if (subscription.group === undefined) local.push(subscription);
      else {
        member(groupKeyOf(subscription.queue, subscription.group), {
          id: subscription.id,
          pool: this.#index,
          local: subscription,
        });
      }
    }
    const plain: number[][] = [];
    for (const entry of this.#remote.match(queue)) {
      if (entry.group === undefined) {
        (plain[entry.poolIndex] ??= []).push(entry.id);
      } else {
        member(groupKeyOf(entry.queue, entry.group), {
          id: entry.id,
          pool: entry.poolIndex,
          local: undefined,
        });
      }
    }
    for (const group of groups.values()) {
      group.members.sort((a, b) => a.pool - b.pool || a.id - b.id);
    }
    const patterns = new Set<string>();
    for (const subscription of this.#local.match(queue)) {
      patterns.add(subscription.queue);
    }
    for (const entry of this.#remote.match(queue)) patterns.add(entry.queue);
    let elsewhere = this.#elsewhereUnknown;
    let groupsElsewhere = elsewhere && groups.size > 0;
    for (const entry of this.#elsewhere.match(queue)) {
      elsewhere = true;
      if (
        entry.group !== undefined &&
        groups.has(groupKeyOf(entry.pattern, entry.group))
      ) groupsElsewhere = true;
    }
    route = {
      local,
      plain: deliveryOf(plain),
      groups: [...groups.values()],
      elsewhere,
      groupsElsewhere,
      patterns: [...patterns],
      publishers: new Map(),
      byPattern: new Map(),
      localGroups: new Map(),
      withMember: new Map(),
    };
    if (this.#routes.size > 10_000) this.#forgetRoutes();
    this.#lastQueue = queue;
    this.#lastRoute = route;
    this.#routes.set(queue, route);
    return route;
  }

  /**
   * Counts a message `service` published on the route's queue: once, and
   * once per pattern it reaches. The service's counters are looked up once
   * per route (and again after a subscription changes): then a message
   * costs one `Map` lookup and an addition per pattern, and allocates
   * nothing.
   */
  countPublish(route: Route, service: string): void {
    let publisher = route.publishers.get(service);
    if (publisher === undefined) {
      const counters = this.#publishers.of(service);
      publisher = {
        counters,
        patterns: route.patterns.map((pattern) => counters.pattern(pattern)),
      };
      route.publishers.set(service, publisher);
    }
    publisher.counters.published++;
    const patterns = publisher.patterns;
    for (let i = 0; i < patterns.length; i++) patterns[i]!.published++;
  }

  /** Counts a reply `service` published (it reaches no pattern). */
  countReply(service: string): void {
    this.#publishers.of(service).published++;
  }

  /** What this pool's services published: in all, and per pattern reached. */
  publisherMetrics(pool: string): PublisherMetrics[] {
    return this.#publishers.snapshot(pool);
  }

  /** Forgets every route (a subscription changed). */
  #forgetRoutes(): void {
    this.#routes.clear();
    this.#lastQueue = this.#lastRoute = undefined;
  }

  /** Drops the publishers' counters of `pattern` once no pool subscribes to it. */
  #dropUnsubscribed(pattern: string): void {
    if (!this.#local.has(pattern) && !this.#remote.has(pattern)) {
      this.#publishers.drop(pattern);
    }
  }

  /**
   * This pool's subscriptions outside groups with exactly `pattern` that
   * match `queue` (another process sent it for that pattern).
   */
  withPattern(queue: string, pattern: string): readonly LocalSubscription[] {
    const route = this.route(queue);
    let targets = route.byPattern.get(pattern);
    if (targets === undefined) {
      targets = route.local.filter((s) => s.queue === pattern);
      route.byPattern.set(pattern, targets);
    }
    return targets;
  }

  /**
   * The next member in this pool of group `key` on `queue` (another process
   * sent it to this pool's member of the group), or `undefined` when the
   * pool has none left.
   */
  pickHere(queue: string, key: string): LocalSubscription | undefined {
    const group = this.#localGroup(queue, key);
    if (group.members.length === 0) return undefined;
    return this.pick(group).local;
  }

  /** This pool's members of group `key` on `queue`. */
  membersHere(queue: string, key: string): LocalSubscription[] {
    return this.#localGroup(queue, key).members.map((m) => m.local!);
  }

  #localGroup(queue: string, key: string): GroupRoute {
    const route = this.route(queue);
    let group = route.localGroups.get(key);
    if (group === undefined) {
      const members = route.groups.find((g) => g.key === key)?.members
        .filter((m) => m.local !== undefined) ?? [];
      group = { key: `${key}\u0000here`, members };
      route.localGroups.set(key, group);
    }
    return group;
  }

  /** The group's next member, round robin, other than `exclude`. */
  pick(group: GroupRoute, exclude?: number): Member {
    const members = exclude === undefined
      ? group.members
      : group.members.filter((m) => m.id !== exclude);
    const turn = this.#roundRobin.get(group.key) ?? 0;
    this.#roundRobin.set(group.key, turn + 1);
    return members[turn % members.length]!;
  }
}

/**
 * The delivery to the subscriptions `byPool` lists (`[pool] → numbers`),
 * frozen: messages sent alike share it, so they travel as one run.
 *
 * @example
 * ```ts
 * import { deliveryOf } from "./routes.ts";
 * import assert from "node:assert/strict";
 *
 * const delivery = deliveryOf([, [4, 7], , [9]]);
 * assert.deepEqual(delivery.pools, [1, 3]);
 * assert.deepEqual(delivery.address.subscriptions[1], [4, 7]);
 * assert.ok(Object.isFrozen(delivery.address.subscriptions[3]));
 * ```
 */
export function deliveryOf(
  byPool: ReadonlyArray<readonly number[] | undefined>,
  publisher?: number,
): Delivery {
  const pools: number[] = [];
  const subscriptions: Array<readonly number[] | undefined> = [];
  for (let pool = 0; pool < byPool.length; pool++) {
    const ids = byPool[pool];
    if (ids === undefined || ids.length === 0) continue;
    pools.push(pool);
    subscriptions[pool] = Object.freeze([...ids]);
  }
  const address: Address = publisher === undefined
    ? { subscriptions: Object.freeze(subscriptions) }
    : { subscriptions: Object.freeze(subscriptions), publisher };
  return Object.freeze({
    pools: Object.freeze(pools),
    address: Object.freeze(address),
  });
}
