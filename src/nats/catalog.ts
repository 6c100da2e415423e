/**
 * What the other processes of the namespace subscribe to, and what this
 * pool subscribes to, told to them: a node catalog, as Moleculer keeps one
 * with INFO, HEARTBEAT and DISCONNECT packets, on control subjects of the
 * namespace (`<namespace>._mf.all` for everyone, `<namespace>._mf.to.<node>`
 * for one pool).
 *
 * Each pool is a node (`<process id>-<pool index>-<incarnation>`); nodes of
 * the same process ignore each other (the primary's table links them).
 *
 * - **Joining** (and after each reconnect): a node sends `info` with
 *   `hello`; every node answers with its own `info` (its interests and the
 *   nodes it knows). The joiner waits until every node named has answered
 *   and none has for {@linkcode GATHER_QUIET_MS}, at most
 *   {@linkcode GATHER_MAX_MS}; until then the bus sends everything to NATS.
 * - **Subscribing**: the node sends `info` with its new version; each node
 *   known answers `ack`. The subscription's promise resolves once every
 *   node known when it was sent has acknowledged it, or been forgotten.
 * - **Heartbeat** `hb` every {@linkcode HEARTBEAT_MS} with the version; a
 *   node behind on it asks (`query`) for the `info`. A node not heard from
 *   for {@linkcode FORGET_MS} is forgotten (a process killed, cut off); a
 *   node that stops says `bye`.
 *
 * @module
 */
import type { Msg } from "./client.ts";
import { errorMessage } from "../_util/error_text.ts";
import type { RemoteEntry, RemoteInterest } from "../transport/remote.ts";
import type { Logger } from "../logger.ts";
import type { NatsLink } from "./connection.ts";

/** How often a node says it is alive. */
export const HEARTBEAT_MS = 1000;
/** A node not heard from for this long is forgotten (checked each beat). */
export const FORGET_MS = 3500;
/** A joining node is done once no answer came for this long… */
export const GATHER_QUIET_MS = 100;
/** …or after this long, whatever answered. */
export const GATHER_MAX_MS = 2000;

/** `[pattern]` or `[pattern, group]`. */
type Pair = [string] | [string, string];

type Packet =
  | {
    k: "info";
    id: string;
    p: string;
    v: number;
    i: Pair[];
    /** Asks every node for its `info` (a node joining). */
    hello?: true;
    /** The version of the addressee this answers (to a hello). */
    ack?: number;
    /** The nodes the sender knows (to a hello). */
    known?: string[];
  }
  | { k: "ack" | "hb"; id: string; p: string; v: number }
  | { k: "query" | "bye"; id: string; p: string };

interface Node {
  process: string;
  version: number;
  /** Entries by pattern and group. */
  entries: Map<string, RemoteEntry>;
  /** When it was last heard from. */
  seen: number;
}

interface AckWaiter {
  version: number;
  /** The nodes still to acknowledge; `undefined` until it is announced. */
  pending: Set<string> | undefined;
  resolve(): void;
}

/** What the catalog works with. */
export interface CatalogParts {
  namespace: string;
  processId: string;
  /** This pool's node id. */
  node: string;
  link: NatsLink;
  log: Logger;
  /** Entries of other processes came or went. */
  interests(add: RemoteEntry[], remove: string[]): void;
  /** Whether the entries are complete. */
  known(complete: boolean): void;
  /**
   * After a reconnect: the entries are complete again and every node known
   * before has been heard from since (its subscriptions are in force
   * again) or forgotten.
   */
  settled(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One pool's node catalog. */
export class Catalog {
  #parts: CatalogParts;
  #all: string;
  #inbox: string;
  #own = new Map<string, { pair: Pair; count: number }>();
  #version = 0;
  /** The version last told to the others. */
  #announced = 0;
  #nodes = new Map<string, Node>();
  #waiters: AckWaiter[] = [];
  #announceScheduled = false;
  #complete = false;
  #ready = Promise.withResolvers<void>();
  #gather: { heard: Set<string>; expected: Set<string> } | undefined;
  #gatherTimers: Array<ReturnType<typeof setTimeout>> = [];
  #quiet: ReturnType<typeof setTimeout> | undefined;
  #beat: ReturnType<typeof setInterval> | undefined;
  #subscribed = false;
  #closed = false;
  /** Nodes not heard from since this node reconnected. */
  #stale = new Set<string>();
  /** Set from a reconnect until `settled` is told. */
  #reconnected = false;

  constructor(parts: CatalogParts) {
    this.#parts = parts;
    this.#all = `${parts.namespace}._mf.all`;
    this.#inbox = `${parts.namespace}._mf.to.${parts.node}`;
  }

  /**
   * Resolves once the first gathering is done, or {@linkcode GATHER_MAX_MS}
   * after `start()` when the server cannot be reached (the entries then stay
   * incomplete until it can).
   */
  ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Starts the wait that bounds `ready()`. */
  start(): void {
    const timer = setTimeout(() => this.#ready.resolve(), GATHER_MAX_MS);
    void this.#ready.promise.then(() => clearTimeout(timer));
  }

  /** The link is up (first time or again): listens, then gathers. */
  up(): void {
    const connection = this.#parts.link.connection;
    if (this.#closed || connection === undefined) return;
    if (this.#subscribed) {
      // A reconnect: the others may not have subscribed again yet.
      this.#reconnected = true;
      this.#stale = new Set(this.#nodes.keys());
    } else {
      this.#subscribed = true;
      const callback = (error: unknown, msg: Msg): void => {
        if (error === null) this.#receive(msg);
      };
      connection.subscribe(this.#all, { callback });
      connection.subscribe(this.#inbox, { callback });
      this.#beat = setInterval(() => this.#heartbeat(), HEARTBEAT_MS);
    }
    void this.#parts.link.flush().then((flushed) => {
      if (flushed) this.#startGather();
    });
  }

  /** The link went down: the entries may be stale until gathered again. */
  down(): void {
    this.#setComplete(false);
  }

  /**
   * Adds one subscription's interest; resolves once every node known has
   * acknowledged it (or been forgotten), or the catalog closed.
   */
  add(interest: RemoteInterest): Promise<void> {
    const key = keyOf(interest.pattern, interest.group);
    const own = this.#own.get(key);
    if (own !== undefined) own.count++;
    else {
      this.#own.set(key, {
        pair: interest.group === undefined
          ? [interest.pattern]
          : [interest.pattern, interest.group],
        count: 1,
      });
      this.#version++;
    }
    // Announced again even when known already: an earlier announcement
    // may still wait for its acknowledgements.
    this.#scheduleAnnounce();
    if (this.#closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ version: this.#version, pending: undefined, resolve });
    return promise;
  }

  /** Removes one subscription's interest (told to the others, not awaited). */
  remove(interest: RemoteInterest): void {
    const key = keyOf(interest.pattern, interest.group);
    const own = this.#own.get(key);
    if (own === undefined || --own.count > 0) return;
    this.#own.delete(key);
    this.#version++;
    this.#scheduleAnnounce();
  }

  /** Says `bye` and stops; every waiter is released. */
  close(): void {
    if (this.#closed) return;
    this.#send(this.#all, { k: "bye", id: this.#parts.node, p: this.#pid });
    this.#closed = true;
    clearInterval(this.#beat);
    this.#endGather();
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters = [];
    this.#ready.resolve();
  }

  get #pid(): string {
    return this.#parts.processId;
  }

  #info(extra: Partial<Extract<Packet, { k: "info" }>> = {}): Packet {
    return {
      k: "info",
      id: this.#parts.node,
      p: this.#pid,
      v: this.#version,
      i: [...this.#own.values()].map((own) => own.pair),
      ...extra,
    };
  }

  #send(subject: string, packet: Packet, reply?: string): void {
    const { link } = this.#parts;
    if (!link.up || link.connection === undefined || this.#closed) return;
    try {
      link.connection.publish(
        subject,
        encoder.encode(JSON.stringify(packet)),
        reply === undefined ? undefined : { reply },
      );
    } catch (error) {
      this.#parts.log.debug(`NATS catalog: ${errorMessage(error)}`);
    }
  }

  // ---- joining -----------------------------------------------------------

  #startGather(): void {
    if (this.#closed) return;
    this.#endGather();
    this.#setComplete(false);
    this.#gather = { heard: new Set(), expected: new Set() };
    this.#announced = this.#version;
    this.#send(this.#all, this.#info({ hello: true }), this.#inbox);
    this.#gatherTimers.push(
      setTimeout(() => this.#finishGather(), GATHER_MAX_MS),
    );
    this.#restartQuiet();
  }

  #restartQuiet(): void {
    clearTimeout(this.#quiet);
    this.#quiet = setTimeout(() => {
      const gather = this.#gather;
      if (gather === undefined) return;
      for (const id of gather.expected) {
        // Still waiting for a node another named (and not forgotten since).
        if (!gather.heard.has(id) && this.#nodes.has(id)) return;
      }
      this.#finishGather();
    }, GATHER_QUIET_MS);
  }

  #finishGather(): void {
    if (this.#gather === undefined) return;
    this.#endGather();
    this.#setComplete(true);
    this.#ready.resolve();
    this.#announce();
    this.#checkSettled();
  }

  #checkSettled(): void {
    if (!this.#reconnected || !this.#complete || this.#stale.size > 0) return;
    this.#reconnected = false;
    this.#parts.settled();
  }

  #endGather(): void {
    this.#gather = undefined;
    for (const timer of this.#gatherTimers) clearTimeout(timer);
    this.#gatherTimers = [];
    clearTimeout(this.#quiet);
  }

  #setComplete(complete: boolean): void {
    if (this.#complete === complete) return;
    this.#complete = complete;
    this.#parts.known(complete);
  }

  // ---- announcing --------------------------------------------------------

  #scheduleAnnounce(): void {
    if (this.#announceScheduled) return;
    this.#announceScheduled = true;
    queueMicrotask(() => {
      this.#announceScheduled = false;
      this.#announce();
    });
  }

  /**
   * Tells every node the current interests (once gathered: the hello told
   * them before); the waiters up to this version then wait for the nodes
   * known now.
   */
  #announce(): void {
    if (!this.#complete || !this.#parts.link.up) return;
    const nodes = [...this.#nodes.keys()];
    for (const waiter of this.#waiters) {
      if (waiter.pending === undefined && waiter.version <= this.#version) {
        waiter.pending = new Set(nodes);
      }
    }
    // A change (a removal too) goes out at once; so does a version still
    // waiting for acknowledgements.
    if (
      this.#version > this.#announced ||
      this.#waiters.some((waiter) => waiter.pending !== undefined)
    ) {
      this.#announced = this.#version;
      this.#send(this.#all, this.#info(), this.#inbox);
    }
    this.#settleWaiters();
  }

  #acknowledged(id: string, version: number): void {
    for (const waiter of this.#waiters) {
      if (waiter.version <= version) waiter.pending?.delete(id);
    }
    this.#settleWaiters();
  }

  #settleWaiters(): void {
    const left: AckWaiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.pending !== undefined && waiter.pending.size === 0) {
        waiter.resolve();
      } else left.push(waiter);
    }
    this.#waiters = left;
  }

  // ---- receiving ---------------------------------------------------------

  #receive(msg: Msg): void {
    let packet: Packet;
    try {
      packet = JSON.parse(decoder.decode(msg.data)) as Packet;
    } catch {
      return;
    }
    if (packet.p === this.#pid || typeof packet.id !== "string") return;
    const reply = msg.reply === "" ? undefined : msg.reply;
    const node = this.#nodes.get(packet.id);
    if (node !== undefined) node.seen = Date.now();
    const wasStale = this.#stale.delete(packet.id);
    switch (packet.k) {
      case "info":
        this.#update(packet);
        if (packet.ack !== undefined) this.#acknowledged(packet.id, packet.ack);
        if (this.#gather !== undefined && packet.ack !== undefined) {
          this.#gather.heard.add(packet.id);
          for (const id of packet.known ?? []) {
            if (id !== this.#parts.node) this.#gather.expected.add(id);
          }
          this.#restartQuiet();
        }
        if (reply === undefined) break;
        if (packet.hello === true) {
          this.#send(
            reply,
            this.#info({
              ack: packet.v,
              known: [...this.#nodes.keys()],
            }),
            this.#inbox,
          );
        } else {
          this.#send(reply, {
            k: "ack",
            id: this.#parts.node,
            p: this.#pid,
            v: packet.v,
          });
        }
        break;
      case "ack":
        this.#acknowledged(packet.id, packet.v);
        if (node === undefined) this.#query(packet.id);
        break;
      case "hb":
        if (node === undefined || node.version < packet.v) {
          this.#query(packet.id);
        }
        break;
      case "query":
        if (reply !== undefined) this.#send(reply, this.#info(), this.#inbox);
        break;
      case "bye":
        this.#forget(packet.id, "it stopped");
        break;
    }
    // Its subscriptions are in force again (it sends after resubscribing).
    if (wasStale) this.#checkSettled();
  }

  #query(id: string): void {
    this.#send(
      `${this.#parts.namespace}._mf.to.${id}`,
      { k: "query", id: this.#parts.node, p: this.#pid },
      this.#inbox,
    );
  }

  /** Applies a node's `info`: its entries now, if newer than known. */
  #update(packet: Extract<Packet, { k: "info" }>): void {
    let node = this.#nodes.get(packet.id);
    if (node !== undefined && node.version >= packet.v) return;
    if (node === undefined) {
      node = {
        process: packet.p,
        version: packet.v,
        entries: new Map(),
        seen: Date.now(),
      };
      this.#nodes.set(packet.id, node);
    }
    node.version = packet.v;
    const next = new Map<string, RemoteEntry>();
    for (const [pattern, group] of packet.i) {
      const key = keyOf(pattern, group);
      next.set(
        key,
        node.entries.get(key) ??
          { id: `${packet.id}\u0000${key}`, pattern, group },
      );
    }
    const add = [...next].filter(([key]) => !node.entries.has(key)).map((
      [, entry],
    ) => entry);
    const remove = [...node.entries].filter(([key]) => !next.has(key)).map((
      [, entry],
    ) => entry.id);
    node.entries = next;
    if (add.length > 0 || remove.length > 0) {
      this.#parts.interests(add, remove);
    }
  }

  #forget(id: string, why: string): void {
    const node = this.#nodes.get(id);
    if (node === undefined) return;
    this.#nodes.delete(id);
    if (this.#stale.delete(id)) this.#checkSettled();
    const ids = [...node.entries.values()].map((entry) => entry.id);
    if (ids.length > 0) this.#parts.interests([], ids);
    this.#acknowledged(id, Infinity);
    this.#parts.log.info(
      `NATS: pool ${id} of process ${node.process} forgotten (${why})`,
    );
  }

  #heartbeat(): void {
    this.#send(this.#all, {
      k: "hb",
      id: this.#parts.node,
      p: this.#pid,
      v: this.#version,
    });
    const now = Date.now();
    for (const [id, node] of this.#nodes) {
      if (now - node.seen > FORGET_MS) {
        this.#forget(id, `not heard from for ${FORGET_MS / 1000} s`);
      }
    }
  }
}

function keyOf(pattern: string, group: string | undefined): string {
  return group === undefined ? pattern : `${pattern}\u0000${group}`;
}
