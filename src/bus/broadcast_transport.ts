import type {
  Envelope,
  ReceivedBatch,
  Run,
  Transport,
  WireMessage,
} from "./transport.ts";
import { CreditGate, type SharedState } from "./credits.ts";

/**
 * One channel message, columnar: V8's serializer writes every string and
 * every object key anew, so a batch of `{ q, d, f, t, r, h }` objects costs
 * about 3× a batch of the bare data. Queue and service names go once per
 * batch, and the messages that share a queue, a service and a millisecond
 * go as one run, so a flood on one queue costs little more than its data.
 * Only plain arrays of small integers: a typed array costs a fresh
 * `ArrayBuffer` on every receive, which took 30% off the channel's
 * throughput here.
 */
interface ChannelBatch {
  /** Sender index. */
  s: number;
  /** Receivers counted: `[index, tag, …]`. */
  c: number[];
  /** The distinct (queue, service) pairs: `[queue, service, …]`. */
  k: string[];
  /** The first message's `publishedAt`. */
  b: number;
  /** Runs: `[length, pair index in k halved, publishedAt - b, …]`. */
  r: number[];
  /** Per message: the data. */
  d: unknown[];
  /** Messages with more fields (`r`, `h`, `g`, `o`, `p`), each a run of one: `[position, fields, …]`. */
  x?: unknown[];
}

function hasExtras(m: WireMessage): boolean {
  return m.r !== undefined || m.h !== undefined || m.g !== undefined ||
    m.o !== undefined || m.p !== undefined;
}

function encode(s: number, c: number[], messages: WireMessage[]): ChannelBatch {
  const n = messages.length;
  const k: string[] = [];
  const known = new Map<string, Map<string, number>>();
  const r: number[] = [];
  const d: unknown[] = [];
  const b = n > 0 ? messages[0]!.t : 0;
  let x: unknown[] | undefined;
  let lastQueue: string | undefined;
  let lastService: string | undefined;
  let lastPair = 0;
  let lastTime = NaN;
  // Where the open run's length is in `r`, or -1 when none may grow.
  let open = -1;
  for (let j = 0; j < n; j++) {
    const m = messages[j]!;
    d.push(m.d);
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
      open = -1;
    }
    const extras = hasExtras(m);
    if (open >= 0 && m.t === lastTime && !extras) {
      (r[open] as number)++;
      continue;
    }
    open = extras ? -1 : r.length;
    lastTime = m.t;
    r.push(1, lastPair, m.t - b);
    if (extras) {
      const more: Partial<WireMessage> = {};
      if (m.r !== undefined) more.r = m.r;
      if (m.h !== undefined) more.h = m.h;
      if (m.g !== undefined) more.g = m.g;
      if (m.o !== undefined) more.o = m.o;
      if (m.p !== undefined) more.p = m.p;
      (x ??= []).push(j, more);
    }
  }
  const batch: ChannelBatch = { s, c, k, b, r, d };
  if (x !== undefined) batch.x = x;
  return batch;
}

function decode(batch: ChannelBatch): Run[] {
  const { k, b, r, x } = batch;
  const runs: Run[] = [];
  let end = 0;
  let extra = 0;
  for (let i = 0; i < r.length; i += 3) {
    end += r[i]!;
    const pair = 2 * r[i + 1]!;
    const envelope: Envelope = {
      q: k[pair]!,
      f: k[pair + 1]!,
      t: b + r[i + 2]!,
    };
    if (x !== undefined && x[extra] === end - 1) {
      Object.assign(envelope, x[extra + 1]);
      extra += 2;
    }
    runs.push({ envelope, end });
  }
  return runs;
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
      data: batch.d,
      runs: decode(batch),
      ack: () => {
        if (acked) return;
        acked = true;
        this.#gate.release(sender, tag);
      },
    });
  }
}
