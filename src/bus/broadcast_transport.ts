import type { ReceivedBatch, Transport, WireMessage } from "./transport.ts";
import { CreditGate, type SharedState } from "./credits.ts";

interface ChannelBatch {
  /** Sender index. */
  s: number;
  /** Receivers counted: `[index, tag, …]`. */
  c: number[];
  /** Messages. */
  m: WireMessage[];
}

/**
 * The lossless BroadcastChannel carrier: one channel per run, one message per
 * batch, and credits in shared memory so the process-wide ring of 256 entries
 * never overflows (see `credits.ts`).
 */
export class BroadcastTransport implements Transport {
  #channel: BroadcastChannel;
  #gate: CreditGate;
  #handler: ((batch: ReceivedBatch) => void) | undefined;
  #closed = false;

  constructor(
    name: string,
    state: SharedState,
    index: number,
    incarnation: number,
  ) {
    this.#gate = new CreditGate(state, index, incarnation);
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (event: MessageEvent<ChannelBatch>) =>
      this.#receive(event.data);
    this.#gate.join();
  }

  trySend(messages: WireMessage[]): boolean {
    if (this.#closed) return true;
    const counted = this.#gate.tryAcquire();
    if (counted === undefined) return false;
    if (counted.length === 0) return true;
    const batch: ChannelBatch = {
      s: this.#gate.index,
      c: counted,
      m: messages,
    };
    this.#channel.postMessage(batch);
    return true;
  }

  whenWritable(timeout: number): Promise<void> {
    return this.#gate.whenCredits(timeout);
  }

  pendingInbound(): number {
    return this.#gate.inbound();
  }

  onReceive(handler: (batch: ReceivedBatch) => void): void {
    this.#handler = handler;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gate.leave();
    this.#channel.close();
  }

  #receive(batch: ChannelBatch): void {
    const { index } = this.#gate;
    const counted = batch.c;
    let tag = 0;
    for (let i = 0; i < counted.length; i += 2) {
      if (counted[i] === index) {
        tag = counted[i + 1]!;
        break;
      }
    }
    if (tag === 0 || tag !== this.#gate.tag || this.#closed) return;
    let acked = false;
    const sender = batch.s;
    this.#handler?.({
      sender,
      messages: batch.m,
      ack: () => {
        if (acked) return;
        acked = true;
        this.#gate.release(sender, tag);
      },
    });
  }
}
