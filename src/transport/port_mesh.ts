import type { Scheduler } from "../scheduler.ts";
import { PortLink } from "./port_link.ts";
import { UnsentTally } from "./unsent.ts";
import type {
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
  #unsent = new UnsentTally();
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
    let wait: Promise<void> | undefined;
    let waits: Promise<void>[] | undefined;
    for (let i = 0; i < to.length; i++) {
      const peer = to[i]!;
      const link = this.#links[peer];
      if (link === undefined) {
        this.#unsent.add(peer, message.queue, 1);
        continue;
      }
      const full = link.push(message);
      if (full === undefined) continue;
      if (wait === undefined) wait = full;
      else (waits ??= [wait]).push(full);
    }
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
    this.#disconnect(change.peer);
    if (change.kind === "peer-up") this.#connect(change.peer, change.port);
  }

  takeUnsent(): UnsentCount[] {
    return this.#unsent.take();
  }

  close(): UnsentCount[] {
    this.#closed = true;
    for (let peer = 0; peer < this.#links.length; peer++) {
      this.#disconnect(peer);
    }
    return this.#unsent.take();
  }

  #connect(peer: number, port: MessagePort): void {
    this.#links[peer] = new PortLink(
      peer,
      port,
      this.#scheduler,
      (batch) => this.#handler(batch),
    );
  }

  #disconnect(peer: number): void {
    const link = this.#links[peer];
    if (link === undefined) return;
    this.#links[peer] = undefined;
    for (const message of link.close()) {
      this.#unsent.add(peer, message.queue, 1);
    }
  }
}
