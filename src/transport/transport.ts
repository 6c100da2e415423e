/**
 * The seam between the bus and whatever carries messages between pools.
 *
 * The bus decides where a message goes (which pools, which group member);
 * a transport carries it to the pools it is given and decides how: batching,
 * encoding and flow control. Flow control is per link (sender → receiver)
 * where the carrier allows it, so a slow, stuck or blocked receiver holds
 * back only what is sent to it. Two implementations exist, chosen with
 * `main.run({ transport })`: a MessagePort mesh (`ports`, the default) and a
 * BroadcastChannel (`broadcast`).
 */

import type { SharedCredits } from "./broadcast_credits.ts";
import type { ReplyAddress } from "./reply_queue.ts";

/**
 * Where a message goes in the pools it is sent to, decided once by its
 * publisher: each receiving pool looks its subscriptions up by number (the
 * subscription table's ids), matching no queue names.
 */
export interface Address {
  /** Per receiving pool (by index): the numbers of its subscriptions that get it. */
  readonly subscriptions: readonly (readonly number[] | undefined)[];
  /**
   * The publishing pool, set only when a receiver hands the message on to
   * another group member (one left): otherwise the sender published it.
   */
  readonly publisher?: number | undefined;
}

/** One message between pools. */
export interface WireMessage {
  /** The concrete queue. */
  queue: string;
  /**
   * The data: the publisher's own value (the transport takes its copy in
   * `send`, and may let go of the value then: `ports` sets it to
   * `undefined`), or one of this pool's copies.
   */
  data: unknown;
  /** The publishing service. */
  service: string;
  /** When `publish` was called (`Date.now()`). */
  publishedAt: number;
  /** Where the publisher expects an answer (`meta.replyTo`). */
  replyTo?: string | undefined;
  /** Extra string fields. */
  headers?: Readonly<Record<string, string>> | undefined;
  /** The subscriptions that get it, in each receiving pool (not on a reply). */
  to?: Address | undefined;
  /** The request it answers, when it is a reply to a pool of this process. */
  reply?: ReplyAddress | undefined;
  /**
   * About how many bytes `data` holds: set by the transport's `send` (it
   * bounds batches), not sent.
   */
  size: number;
}

/** Everything of a message but its data and size. */
export type Envelope = Omit<WireMessage, "data" | "size">;

/** Consecutive messages of a batch that share their envelope. */
export interface Run {
  /** The envelope of every message of the run. */
  envelope: Envelope;
  /** The position in `data` just after the run's last message. */
  end: number;
}

/** A batch as it arrives: who sent it and what it holds. */
export interface ReceivedBatch {
  /** The sending pool's index. */
  sender: number;
  /** Every message's data, in publish order. */
  data: unknown[];
  /** The runs that cover `data`, in order. */
  runs: Run[];
  /** Gives the sender its credit back; call once the batch is routed. */
  ack(): void;
}

/** Messages a transport could not deliver: to which pool, on which queue. */
export interface UnsentCount {
  /** The receiving pool's index. */
  to: number;
  /** The concrete queue. */
  queue: string;
  /** How many messages. */
  count: number;
}

/** How often sending to one peer pool had to wait, since this end opened. */
export interface LinkWaits {
  /** The receiving pool's index. */
  to: number;
  /** Times `send` told its publisher to wait (the link's queue was full). */
  publisherWaits: number;
  /** Times a batch waited for the link's window (the peer's acknowledgements). */
  windowWaits: number;
}

/** Carries batches of messages between the pools of one program (one pool's end). */
export interface Transport {
  /**
   * Queues `message` for each pool in `to`, with a copy of its data taken
   * now, as `structuredClone` would take it (the publisher may change its
   * value afterwards). Returns a promise when the publisher should wait
   * before sending more (a receiver's queue is full), `undefined` otherwise.
   *
   * @throws {DOMException} `DataCloneError` when the data cannot be cloned
   * (nothing is queued then).
   */
  send(to: readonly number[], message: WireMessage): Promise<void> | undefined;
  /**
   * Resolves once everything queued so far (for pool `to`, or for every
   * pool) has been received and acknowledged.
   */
  flush(to?: number): Promise<void>;
  /** Whether anything this pool sent is queued or not acknowledged yet. */
  busy(): boolean;
  /** Batches received that have not been acknowledged yet. */
  held(): number;
  /** The waits of each link, where the carrier counts them (both do). */
  linkWaits?(): LinkWaits[];
  /** Sets the function that receives every batch addressed to this pool. */
  onReceive(handler: (batch: ReceivedBatch) => void): void;
  /** Applies a change the primary announces (a peer came or went). */
  update(change: TransportUpdate): void;
  /**
   * Stops sending and receiving; resolves with every message it gave up on
   * (still queued here, or sent to this pool and never routed), within a
   * second.
   */
  close(): Promise<UnsentCount[]>;
}

/** What a pool needs to open its end of the transport (sent in `init`). */
export type TransportSetup =
  | {
    kind: "ports";
    /** A port to each peer pool that is up, by the peer's index. */
    peers: Array<[number, MessagePort]>;
  }
  | {
    kind: "broadcast";
    /** The channel's name. */
    name: string;
    /** The shared credit counters. */
    credits: SharedCredits;
  };

/** A change of peers, announced by the primary to a pool. */
export type TransportUpdate =
  | { kind: "peer-up"; peer: number; port: MessagePort }
  | { kind: "peer-down"; peer: number };

/**
 * The primary's half of a transport: gives each pool what it needs to open
 * its end, and tells the others when a pool comes or goes.
 */
export interface TransportHub {
  /**
   * Pool `index` (incarnation `incarnation`) is ready: returns its setup
   * and the objects to transfer with it; announces it to the pools up.
   */
  connect(
    index: number,
    incarnation: number,
  ): { setup: TransportSetup; transfer: Transferable[] };
  /** Pool `index` has stopped or died: its peers drop their links to it. */
  disconnect(index: number): void;
}

/** How a hub reaches a live pool's worker. */
export type PostToPool = (
  index: number,
  update: TransportUpdate,
  transfer: Transferable[],
) => void;
