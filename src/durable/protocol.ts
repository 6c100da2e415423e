/**
 * What a pool and the local broker (on the main thread) say to each other
 * about durable queues, carried inside the pool protocol's `durable`
 * messages (`pool/protocol.ts`).
 *
 * @module
 */
import type { SerializedError } from "../errors.ts";

/**
 * What a durable message carries besides its queue, its place and its id:
 * the part a record body keeps in V8's serialization (`message.ts`).
 */
export interface MessageFields {
  /** The publishing pool and service. */
  pool: string;
  service: string;
  /** When `publish` was called (ms since the epoch). */
  publishedAt: number;
  headers?: Record<string, string> | undefined;
  replyTo?: string | undefined;
  data: unknown;
}

/** A message a pool publishes on a durable queue. */
export interface OutgoingMessage extends MessageFields {
  queue: string;
  /** Deduplicates within the stream's window. */
  id?: string | undefined;
}

/** A message encoded by its pool, as the broker stores it. */
export interface EncodedMessage {
  /** The concrete queue (also in the body): the broker routes by it. */
  queue: string;
  /** The publisher's id (also in the body): the broker deduplicates by it. */
  id?: string | undefined;
  /** The record body, seq and storedAt still 0. */
  body: Uint8Array;
}

/** A subscription taking part in a durable consumer. */
export interface ConsumerMember {
  /** The subscription's id (unique in the run). */
  subscription: string;
  /** The pool holding it, by index. */
  pool: number;
  service: string;
  /** The subscription's pattern: the consumer's filter. */
  queue: string;
  group?: string | undefined;
  /** The most messages it may hold unacknowledged (`bufferSize`). */
  capacity: number;
}

/** A message delivered to a durable subscription. */
export interface DeliveredMessage extends MessageFields {
  /** The stream's pattern and the message's place in it. */
  stream: string;
  seq: number;
  /** 1 on the first delivery, then 2, 3, … */
  attempt: number;
  queue: string;
}

/**
 * A stored message as the broker delivers it to a pool: its record body,
 * which the pool decodes (`decodeMessage`), so the main thread never
 * deserializes data.
 */
export interface DeliveredRecord {
  seq: number;
  /** 1 on the first delivery, then 2, 3, … */
  attempt: number;
  body: Uint8Array;
}

/** Delivered records packed for a post (`packed_records.ts`): `seqs[i]`, `attempts[i]` and the body ending at `ends[i]`. */
export interface PackedRecords {
  seqs: number[];
  attempts: number[];
  /** The bodies, back to back. */
  bodies: Uint8Array;
  /** Where each body ends in `bodies`. */
  ends: number[];
}

/** What became of a delivered message. */
export type Settlement =
  | { seq: number; outcome: "ack" }
  | { seq: number; outcome: "dead-lettered" }
  | { seq: number; outcome: "retry"; delay: number };

/**
 * The backlog of the consumer a subscription belongs to, as its carrier
 * knows it when asked (metrics snapshots, and the run report on JetStream).
 */
export interface ConsumerBacklog {
  /** The subscription asked about. */
  subscription: string;
  /** The durable pattern (stream) the consumer reads. */
  stream: string;
  /**
   * The consumer's name: its file's stem on the local log
   * (`group+<pattern>+<group>`), the JetStream consumer's name joined to NATS.
   */
  consumer: string;
  /**
   * Stored messages it has not acknowledged yet: not delivered yet, plus
   * delivered and not settled (running, waiting, or due again after a retry).
   */
  pending: number;
}

/** Pool → broker. */
export type PoolToBroker =
  /** Encoded by the pool (`encodeOutgoing`): the broker stores the body as is. */
  | { op: "publish"; request: number; message: EncodedMessage }
  | { op: "subscribe"; request: number; member: ConsumerMember }
  | { op: "unsubscribe"; request: number; subscriptions: string[] }
  | { op: "settle"; subscription: string; settlements: Settlement[] }
  /** Asks for the backlog of the subscriptions' consumers. */
  | { op: "backlog"; request: number; subscriptions: string[] }
  /** The messages of one turn, in order. */
  | { op: "batch"; messages: PoolToBroker[] };

/** Broker → pool. */
export type BrokerToPool =
  | {
    op: "answer";
    request: number;
    error?: SerializedError | undefined;
    /** The answer to `backlog`. */
    backlog?: ConsumerBacklog[] | undefined;
  }
  | {
    op: "deliver";
    subscription: string;
    /** The stream's pattern. */
    stream: string;
    records: PackedRecords;
  }
  /** The answers and deliveries of one turn, in order. */
  | { op: "batch"; messages: BrokerToPool[] };
