/**
 * What a pool and the local broker (on the main thread) say to each other
 * about durable queues, carried inside the pool protocol's `durable`
 * messages (`pool/protocol.ts`).
 *
 * @module
 */
import type { SerializedError } from "../errors.ts";

/** A message a pool publishes on a durable queue. */
export interface OutgoingMessage {
  queue: string;
  pool: string;
  service: string;
  publishedAt: number;
  headers?: Record<string, string> | undefined;
  replyTo?: string | undefined;
  /** Deduplicates within the stream's window. */
  id?: string | undefined;
  data: unknown;
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
export interface DeliveredMessage {
  /** The stream's pattern and the message's place in it. */
  stream: string;
  seq: number;
  /** 1 on the first delivery, then 2, 3, … */
  attempt: number;
  queue: string;
  pool: string;
  service: string;
  publishedAt: number;
  headers?: Record<string, string> | undefined;
  replyTo?: string | undefined;
  data: unknown;
}

/** What became of a delivered message. */
export type Settlement =
  | { seq: number; outcome: "ack" }
  | { seq: number; outcome: "dead-lettered" }
  | { seq: number; outcome: "retry"; delay: number };

/** Pool → broker. */
export type PoolToBroker =
  | { op: "publish"; request: number; message: OutgoingMessage }
  | { op: "subscribe"; request: number; member: ConsumerMember }
  | { op: "unsubscribe"; request: number; subscriptions: string[] }
  | { op: "settle"; subscription: string; settlements: Settlement[] }
  /** The messages of one turn, in order. */
  | { op: "batch"; messages: PoolToBroker[] };

/** Broker → pool. */
export type BrokerToPool =
  | { op: "answer"; request: number; error?: SerializedError | undefined }
  | {
    op: "deliver";
    subscription: string;
    messages: DeliveredMessage[];
  }
  /** The answers and deliveries of one turn, in order. */
  | { op: "batch"; messages: BrokerToPool[] };
