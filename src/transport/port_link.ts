import { releaseAll } from "../_util/waiters.ts";
import type { Scheduler } from "../scheduler.ts";
import {
  countRuns,
  decodeRuns,
  type EncodedRuns,
  encodeRuns,
} from "./codec.ts";
import { DataDecoder } from "./data_decoder.ts";
import type { DataEncoder } from "./data_encoder.ts";
import { type Cloned, LinkBytes } from "./link_bytes.ts";
import { Outbox } from "./outbox.ts";
import type { LinkWaits, ReceivedBatch, WireMessage } from "./transport.ts";
import type { UnsentTally } from "./unsent.ts";

/**
 * Batches a sender may have unacknowledged on one link. 64 batches of up to
 * 1,000 messages keep both threads busy (the bare MessagePort yardstick in
 * `bench/bus_bench.ts` uses the same window); with the byte bound of a
 * batch ({@linkcode PORT_BATCH_BYTES}), at most 16 MiB are in flight per
 * link.
 */
export const WINDOW = 64;

/**
 * Bytes per batch on a port (as the encoder counts them: its bytes and two
 * per character of the strings beside them). More than the channel's
 * 16 KiB (`outbox.ts`): a port's batch reaches one pool, its bytes cross
 * in a transferred buffer, and a post costs about as much as encoding 20
 * small messages, so that a flow of 500-byte messages in batches of 30
 * spent most of its publisher's time posting. 256 KiB bound a window of
 * 64 batches to 16 MiB per link.
 */
export const PORT_BATCH_BYTES = 256 * 1024;

/**
 * The smallest batch whose bytes are transferred rather than copied. A
 * transfer costs a fixed ~7 µs a post (sending and receiving, one thread,
 * Deno 2.9.6), a copy grows with the bytes: they cost the same at 10–30
 * KiB. Between two workers at 1 message/ms, a transferred 16-byte buffer
 * took 103–158 µs (p50) from `postMessage` to `onmessage` against 86–104 µs
 * copied (three runs each, load ~4).
 */
export const TRANSFER_BYTES = 16 * 1024;

/**
 * Batches in flight below which a message published into an empty outbox
 * leaves at once, alone, rather than on the scheduler's next turn. 2, not
 * 1: a paced publisher that catches up (its timer fired late) publishes two
 * at once, and the second waited a turn. Bus bench row 6, at 1 message/ms:
 * with 1, half the messages waited a turn (publish → `postMessage` p50
 * 38–45 µs under load); with 2, a fifth (p50 17–23 µs). A flow that fills
 * the window is not affected; one with acknowledgements back between its
 * turns sends at most one batch more a turn.
 */
export const AT_ONCE_BELOW = 2;

/** Lazy acknowledgements due that go alone, without waiting for a batch back. */
const LAZY_ACKS = WINDOW / 4;

/** The last message a closing pool sends on each of its ports. */
const BYE = "bye";
/** A sender that waits for acknowledgements asks for them (see `flush`). */
const ASK = "ack?";

/** What the sender keeps of a batch until it is acknowledged: enough to count it. */
type Sent = Pick<EncodedRuns, "names" | "runs">;

/**
 * A batch on the port: the envelopes by columns, the data as bytes
 * (transferred from {@linkcode TRANSFER_BYTES}, else copied; see
 * `data_encoder.ts`) and the values that travel beside them.
 */
interface PortBatch extends EncodedRuns {
  bytes: ArrayBuffer;
  /** Long strings and clones of data the encoder did not know, in order. */
  beside?: unknown[];
  /**
   * Acknowledge promptly (on the next turn). Absent, the acknowledgement
   * may wait for a batch going back (see {@linkcode PortLink}).
   */
  prompt?: true;
}

/**
 * One pool's end of a `MessageChannel` to one other pool. Both directions
 * share the port: batches are objects (their data in a buffer of bytes,
 * encoded at `push`), acknowledgements are numbers (how many
 * batches were routed, sent at most once per turn) or ride in a batch going
 * the other way (its `acks`), and `"bye"` is the last
 * message of a pool that closes its end: every batch it had received is
 * acknowledged by then, so whatever is still unacknowledged never reached
 * it, and is counted as unsent.
 *
 * A batch sent while nothing else is in flight, after a batch came back
 * from the peer (a request/response flow), is acknowledged lazily: its
 * acknowledgement rides on the next batch going back, and goes alone only
 * when a prompt batch follows, when the sender asks (`"ack?"`, from
 * `flush`) or when a quarter of the window is due. In a request/response
 * flow (a WebSocket echo through a consumer in another pool) the answers'
 * acknowledgements then ride on the next requests instead of waking the
 * answering pool once per turn with a post of their own (at 1 connection,
 * one post a round trip). A batch sent with one or more in flight is
 * prompt, so a sender keeps at most one batch lazily unacknowledged; a
 * one-way flow is always prompt, its at-once rule (`AT_ONCE_BELOW`) as
 * before.
 *
 * Flow control is this link's alone: when the peer stops acknowledging, only
 * what is sent to it waits.
 */
export class PortLink {
  /** The peer pool's index. */
  readonly peer: number;
  #port: MessagePort;
  #outbox: Outbox<WireMessage>;
  /** The data of the messages in the outbox, encoded, in the same order. */
  #bytes = new LinkBytes();
  /** Reads what the peer's encoder wrote (it knows the peer's shapes). */
  #decoder = new DataDecoder();
  #unsent: UnsentTally;
  /** Batches sent and not acknowledged, oldest first. */
  #inFlight: Sent[] = [];
  #inFlightHead = 0;
  #sent = 0;
  #acked = 0;
  #writable: Array<() => void> = [];
  #ackWaiters: Array<{ upTo: number; resolve: () => void }> = [];
  #acks = 0;
  /** The acknowledgements due go on the next turn (a prompt batch or an ask). */
  #promptly = false;
  #acksScheduled = false;
  /** A batch came from the peer since this link last sent one. */
  #answered = false;
  #held = 0;
  #closed = false;
  #onBye: () => void;
  #scheduler: Scheduler;
  #waits: LinkWaits;

  /**
   * @param peer The peer pool's index.
   * @param port This pool's end of the channel.
   * @param scheduler The pool's scheduler (batches leave on its turns).
   * @param receive Called with each batch the peer sends.
   * @param unsent Where messages that never reached the peer are counted.
   * @param onBye Called when the peer has closed its end.
   * @param waits Where the waits for this peer are counted (kept by the
   * mesh, so they outlive a link replaced when the peer restarts).
   */
  constructor(
    peer: number,
    port: MessagePort,
    scheduler: Scheduler,
    receive: (batch: ReceivedBatch) => void,
    unsent: UnsentTally,
    onBye: () => void,
    waits: LinkWaits = { to: peer, publisherWaits: 0, windowWaits: 0 },
  ) {
    this.peer = peer;
    this.#waits = waits;
    this.#port = port;
    this.#unsent = unsent;
    this.#onBye = onBye;
    this.#scheduler = scheduler;
    this.#outbox = new Outbox<WireMessage>(
      {
        trySend: (items, start, end) => this.#trySend(items, start, end),
        idle: () => this.#inFlightCount < AT_ONCE_BELOW,
        whenWritable: () => this.#whenWritable(),
      },
      scheduler,
      (message) => message.size,
      PORT_BATCH_BYTES,
    );
    port.onmessage = (event: MessageEvent<PortBatch | number | string>) => {
      const message = event.data;
      if (typeof message === "number") this.#acknowledged(message);
      else if (message === ASK) this.#asked();
      else if (message === BYE) this.#peerClosed();
      else if (typeof message === "object") {
        if (message.acks !== undefined) this.#acknowledged(message.acks);
        this.#receive(message, receive);
      }
    };
  }

  /** Batches received from the peer and not acknowledged yet. */
  get held(): number {
    return this.#held;
  }

  get #inFlightCount(): number {
    return this.#inFlight.length - this.#inFlightHead;
  }

  /**
   * Queues a message whose data is the encoder's last message (or a clone);
   * returns a promise when publishers should wait.
   */
  push(
    message: WireMessage,
    data: DataEncoder | Cloned,
  ): Promise<void> | undefined {
    if (this.#closed) {
      this.#unsent.add(this.peer, message.queue, 1);
      return undefined;
    }
    this.#bytes.push(data);
    this.#outbox.push(message);
    if (!this.#outbox.full) return undefined;
    this.#waits.publisherWaits++;
    return this.#outbox.whenSpace();
  }

  /** Whether anything is queued or unacknowledged. */
  busy(): boolean {
    return !this.#closed &&
      (this.#outbox.size > 0 || this.#inFlightCount > 0);
  }

  /** Resolves once everything queued so far has been acknowledged. */
  async flush(): Promise<void> {
    await this.#outbox.flush();
    if (this.#closed || this.#acked >= this.#sent) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#ackWaiters.push({ upTo: this.#sent, resolve });
    // The last batch may be acknowledged lazily: ask.
    this.#port.postMessage(ASK);
    await promise;
  }

  /**
   * This pool closes its end: it acknowledges what it received, says bye
   * and closes the port. Messages it had not sent yet are counted as unsent.
   */
  close(): void {
    if (this.#closed) return;
    this.#sendAcks();
    this.#port.postMessage(BYE);
    this.#end();
  }

  /**
   * The peer is gone without a bye (its worker died): whatever it had not
   * acknowledged is counted as unsent.
   */
  drop(): void {
    if (this.#closed) return;
    this.#countInFlight();
    this.#end();
  }

  #peerClosed(): void {
    if (this.#closed) return;
    this.#countInFlight();
    this.#end();
    this.#onBye();
  }

  #end(): void {
    this.#closed = true;
    this.#port.close();
    for (const message of this.#outbox.close()) {
      this.#unsent.add(this.peer, message.queue, 1);
    }
    this.#bytes.clear();
    releaseAll(this.#writable);
    for (const waiter of this.#ackWaiters.splice(0)) waiter.resolve();
  }

  #countInFlight(): void {
    for (let i = this.#inFlightHead; i < this.#inFlight.length; i++) {
      countRuns(
        this.#inFlight[i]!,
        (queue, n) => this.#unsent.add(this.peer, queue, n),
      );
    }
    this.#inFlight = [];
    this.#inFlightHead = 0;
  }

  #trySend(items: readonly WireMessage[], start: number, end: number): boolean {
    if (this.#closed) return true;
    if (this.#inFlightCount >= WINDOW) return false;
    const { bytes, beside } = this.#bytes.take(end - start);
    const batch: PortBatch = { ...encodeRuns(items, start, end), bytes };
    if (beside !== undefined) batch.beside = beside;
    // Lazy only when batches come back (to carry the acknowledgement) and
    // nothing else is in flight: a one-way flow is acknowledged promptly.
    if (this.#inFlightCount > 0 || !this.#answered) batch.prompt = true;
    this.#answered = false;
    if (this.#acks > 0) {
      // The acknowledgements due ride with the batch: one message less.
      batch.acks = this.#takeAcks();
    }
    this.#inFlight.push({ names: batch.names, runs: batch.runs });
    this.#sent++;
    // Small batches are copied: a transfer costs more than copying them, and
    // makes the hop slower (see TRANSFER_BYTES).
    if (bytes.byteLength >= TRANSFER_BYTES) {
      this.#port.postMessage(batch, [bytes]);
    } else this.#port.postMessage(batch);
    return true;
  }

  #whenWritable(): Promise<void> {
    if (this.#inFlightCount < WINDOW || this.#closed) return Promise.resolve();
    this.#waits.windowWaits++;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#writable.push(resolve);
    return promise;
  }

  #acknowledged(count: number): void {
    this.#acked += count;
    this.#inFlightHead += count;
    if (this.#inFlightHead >= this.#inFlight.length) {
      this.#inFlight = [];
      this.#inFlightHead = 0;
    } else if (this.#inFlightHead >= WINDOW) {
      this.#inFlight = this.#inFlight.slice(this.#inFlightHead);
      this.#inFlightHead = 0;
    }
    // Wake the outbox when half the window is free, not at every batch: one
    // wake-up then sends many batches.
    if (this.#inFlightCount <= WINDOW / 2) releaseAll(this.#writable);
    if (this.#ackWaiters.length > 0) {
      this.#ackWaiters = this.#ackWaiters.filter((waiter) => {
        if (waiter.upTo > this.#acked) return true;
        waiter.resolve();
        return false;
      });
    }
  }

  #receive(
    batch: PortBatch,
    receive: (batch: ReceivedBatch) => void,
  ): void {
    if (this.#closed) return;
    if (batch.prompt === true) this.#promptly = true;
    this.#answered = true;
    const runs = decodeRuns(batch);
    const data = this.#decoder.decode(
      new Uint8Array(batch.bytes),
      runs.length === 0 ? 0 : runs[runs.length - 1]!.end,
      batch.beside ?? [],
    );
    let acked = false;
    this.#held++;
    receive({
      sender: this.peer,
      data,
      runs,
      ack: () => {
        if (acked || this.#closed) return;
        acked = true;
        this.#held--;
        this.#acks++;
        if (this.#promptly || this.#acks >= LAZY_ACKS) this.#scheduleAcks();
      },
    });
  }

  /** The peer waits for acknowledgements (it flushes). */
  #asked(): void {
    this.#promptly = true;
    // Every batch it waits for came before the ask: those handled already.
    if (this.#acks > 0) this.#scheduleAcks();
  }

  /**
   * Acknowledgements go back on the next macrotask, as one message,
   * unless a batch to the peer leaves first and takes them along (a
   * reply published by a handler of this batch, say). The turn is
   * asked for from a microtask: the batch's first handler, queued
   * while it was routed, starts before that post (5–8 µs), not after.
   */
  #scheduleAcks(): void {
    if (this.#acksScheduled) return;
    this.#acksScheduled = true;
    queueMicrotask(this.#deferAcks);
  }

  /** Sends the acknowledgements due on the scheduler's next turn. */
  #deferAcks = (): void => {
    // None left when a batch to the peer took them along meanwhile.
    if (this.#closed || this.#acks === 0) {
      this.#acksScheduled = false;
      return;
    }
    this.#scheduler.defer(() => {
      this.#acksScheduled = false;
      this.#sendAcks();
    });
  };

  #sendAcks(): void {
    const count = this.#takeAcks();
    if (!this.#closed && count > 0) this.#port.postMessage(count);
  }

  /** The acknowledgements due, now on their way. */
  #takeAcks(): number {
    const count = this.#acks;
    this.#acks = 0;
    // Prompt until every batch received is acknowledged.
    if (this.#held === 0) this.#promptly = false;
    return count;
  }
}
