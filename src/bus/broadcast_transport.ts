import type { ReceivedBatch, Transport, WireMessage } from "./transport.ts";
import { CreditGate, type SharedState } from "./credits.ts";

/**
 * One channel message, columnar: V8's serializer writes every string and
 * every object key anew, so a batch of `{ q, d, f, t, r, h }` objects costs
 * about 3× a batch of the bare data. Queue and service names go once per
 * batch, times as small offsets, rare fields sparsely.
 */
interface ChannelBatch {
  /** Sender index. */
  s: number;
  /** Receivers counted: `[index, tag, …]`. */
  c: number[];
  /** The distinct (queue, service) pairs: `[queue, service, …]`. */
  k: string[];
  /** Per message: its pair's index in `k`, halved. */
  i: Uint32Array;
  /** The first message's `publishedAt`. */
  b: number;
  /** Per message: `publishedAt - b`. */
  t: Float64Array;
  /** Per message: the data. */
  d: unknown[];
  /** Messages with more fields (`r`, `h`, `g`, `o`, `p`): `[position, fields, …]`. */
  x?: unknown[];
}

function encode(s: number, c: number[], messages: WireMessage[]): ChannelBatch {
  const n = messages.length;
  const k: string[] = [];
  const known = new Map<string, Map<string, number>>();
  // Typed arrays travel as one block of bytes; plain arrays of numbers
  // would cost an element (and, for fractions, a heap number) each. `d` is
  // filled by `push`: V8 writes an array made by `new Array(n)` (holey) as a
  // sparse one, key by key, which is much slower to read back.
  const i = new Uint32Array(n);
  const t = new Float64Array(n);
  const d: unknown[] = [];
  const b = n > 0 ? messages[0]!.t : 0;
  let x: unknown[] | undefined;
  let lastQueue: string | undefined;
  let lastService: string | undefined;
  let lastPair = 0;
  for (let j = 0; j < n; j++) {
    const m = messages[j]!;
    if (m.q !== lastQueue || m.f !== lastService) {
      let services = known.get(m.q);
      if (services === undefined) known.set(m.q, services = new Map());
      let pair = services.get(m.f);
      if (pair === undefined) {
        pair = k.length / 2;
        k.push(m.q, m.f);
        services.set(m.f, pair);
      }
      lastQueue = m.q;
      lastService = m.f;
      lastPair = pair;
    }
    i[j] = lastPair;
    t[j] = m.t - b;
    d.push(m.d);
    if (
      m.r !== undefined || m.h !== undefined || m.g !== undefined ||
      m.o !== undefined || m.p !== undefined
    ) {
      const more: Partial<WireMessage> = {};
      if (m.r !== undefined) more.r = m.r;
      if (m.h !== undefined) more.h = m.h;
      if (m.g !== undefined) more.g = m.g;
      if (m.o !== undefined) more.o = m.o;
      if (m.p !== undefined) more.p = m.p;
      (x ??= []).push(j, more);
    }
  }
  const batch: ChannelBatch = { s, c, k, i, b, t, d };
  if (x !== undefined) batch.x = x;
  return batch;
}

function decode(batch: ChannelBatch): WireMessage[] {
  const { k, i, b, t, d, x } = batch;
  const n = d.length;
  const messages: WireMessage[] = new Array(n);
  for (let j = 0; j < n; j++) {
    const pair = 2 * i[j]!;
    messages[j] = { q: k[pair]!, d: d[j], f: k[pair + 1]!, t: b + t[j]! };
  }
  if (x !== undefined) {
    for (let j = 0; j < x.length; j += 2) {
      Object.assign(messages[x[j] as number]!, x[j + 1]);
    }
  }
  return messages;
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
    const batch = encode(this.#gate.index, counted, messages);
    this.#channel.postMessage(batch);
    return true;
  }

  whenWritable(timeout: number): Promise<void> {
    return this.#gate.whenCredits(timeout);
  }

  idle(): boolean {
    return this.#gate.outbound() === 0;
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
      messages: decode(batch),
      ack: () => {
        if (acked) return;
        acked = true;
        this.#gate.release(sender, tag);
      },
    });
  }
}
