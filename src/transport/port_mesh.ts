import type { Scheduler } from "../scheduler.ts";
import { approximateSize } from "../_util/size.ts";
import { DataEncoder } from "./data_encoder.ts";
import { Cloned } from "./link_bytes.ts";
import { PortLink } from "./port_link.ts";
import { UnsentTally } from "./unsent.ts";

/**
 * How long a pool waits for a departed peer's bye before it counts what the
 * peer had not acknowledged as unsent. The bye comes over the port, the
 * departure over the primary: they may arrive in either order.
 */
const BYE_GRACE_MS = 1000;
import type {
  LinkWaits,
  ReceivedBatch,
  Transport,
  TransportUpdate,
  UnsentCount,
  WireMessage,
} from "./transport.ts";

/**
 * The MessagePort mesh: one `MessageChannel` per pair of pools, made by the
 * primary (see `port_hub.ts`). A pool receives only the batches addressed to
 * it, and each link has its own flow control.
 *
 * A restarted pool gets fresh ports and its peers drop the old ones, so
 * nothing sent to a dead incarnation reaches the new one.
 */
export class PortMeshTransport implements Transport {
  #scheduler: Scheduler;
  #links: Array<PortLink | undefined> = [];
  #handler: (batch: ReceivedBatch) => void = () => {};
  /** Encodes each message's data once for all its links. */
  #encoder = new DataEncoder();
  #unsent = new UnsentTally();
  #byeTimers = new Map<number, ReturnType<typeof setTimeout>>();
  /** The waits per peer index, kept across the peer's restarts. */
  #waits: LinkWaits[] = [];
  #closed = false;

  /**
   * @param peers A port to each peer pool that is up, by the peer's index.
   * @param scheduler The pool's scheduler.
   */
  constructor(peers: Array<[number, MessagePort]>, scheduler: Scheduler) {
    this.#scheduler = scheduler;
    for (const [peer, port] of peers) this.#connect(peer, port);
  }

  send(to: readonly number[], message: WireMessage): Promise<void> | undefined {
    if (to.length === 0) return undefined;
    // The one copy of the data: written as bytes now, or cloned (which
    // throws structuredClone's error) when the encoder does not know it.
    let data: DataEncoder | Cloned;
    if (this.#encoder.encode(message.data)) {
      data = this.#encoder;
      message.size = this.#encoder.size;
    } else {
      data = new Cloned(structuredClone(message.data));
      message.size = approximateSize(message.data);
    }
    let wait: Promise<void> | undefined;
    let waits: Promise<void>[] | undefined;
    for (let i = 0; i < to.length; i++) {
      const peer = to[i]!;
      const link = this.#links[peer];
      if (link === undefined) {
        // The peer is gone (its departure and the table's change are on
        // their way): counted, not lost silently.
        this.#unsent.add(peer, message.queue, 1);
        continue;
      }
      const full = link.push(message, data);
      if (full === undefined) continue;
      if (wait === undefined) wait = full;
      else (waits ??= [wait]).push(full);
    }
    // The bytes (or the clone) are the copy: the publisher's value need not
    // live until the batch leaves (it would outlive a young-generation
    // collection, and be copied by it, for nothing).
    message.data = undefined;
    return waits === undefined ? wait : Promise.all(waits).then(() => {});
  }

  async flush(to?: number): Promise<void> {
    if (to !== undefined) {
      await this.#links[to]?.flush();
      return;
    }
    await Promise.all(this.#links.map((link) => link?.flush()));
  }

  busy(): boolean {
    return this.#links.some((link) => link?.busy() === true);
  }

  held(): number {
    let count = 0;
    for (const link of this.#links) count += link?.held ?? 0;
    return count;
  }

  onReceive(handler: (batch: ReceivedBatch) => void): void {
    this.#handler = handler;
  }

  update(change: TransportUpdate): void {
    if (this.#closed) {
      if (change.kind === "peer-up") change.port.close();
      return;
    }
    if (change.kind === "peer-up") {
      this.#drop(change.peer);
      this.#connect(change.peer, change.port);
      return;
    }
    if (this.#links[change.peer] === undefined) return;
    clearTimeout(this.#byeTimers.get(change.peer));
    this.#byeTimers.set(
      change.peer,
      setTimeout(() => this.#drop(change.peer), BYE_GRACE_MS),
    );
  }

  close(): Promise<UnsentCount[]> {
    if (!this.#closed) {
      this.#closed = true;
      for (const timer of this.#byeTimers.values()) clearTimeout(timer);
      this.#byeTimers.clear();
      for (const link of this.#links) link?.close();
      this.#links = [];
    }
    return Promise.resolve(this.#unsent.take());
  }

  linkWaits(): LinkWaits[] {
    return this.#waits.filter((w) => w !== undefined).map((w) => ({ ...w }));
  }

  #connect(peer: number, port: MessagePort): void {
    const link = new PortLink(
      peer,
      port,
      this.#scheduler,
      (batch) => this.#handler(batch),
      this.#unsent,
      () => {
        // The peer closed its end: forget the link (and any wait for it).
        if (this.#links[peer] === link) this.#forget(peer);
      },
      this.#waits[peer] ??= { to: peer, publisherWaits: 0, windowWaits: 0 },
    );
    this.#links[peer] = link;
  }

  /** Counts what peer `peer` never acknowledged and forgets its link. */
  #drop(peer: number): void {
    this.#links[peer]?.drop();
    this.#forget(peer);
  }

  #forget(peer: number): void {
    this.#links[peer] = undefined;
    clearTimeout(this.#byeTimers.get(peer));
    this.#byeTimers.delete(peer);
  }
}
