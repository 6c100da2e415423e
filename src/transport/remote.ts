/**
 * The seam between a pool's bus and whatever carries messages to other
 * processes (NATS today), beside the in-process {@linkcode Transport}.
 *
 * The bus decides where a message goes; a remote carrier takes what must
 * leave the process and hands back what arrives, with the subscription
 * (pattern, or pattern and group) it arrived for. What arrives goes through
 * the bus's one inbound path, as a batch from another pool does. The
 * carrier knows nothing of the bus's classes: only these types.
 *
 * @module
 */
import type { SerializedError } from "../errors.ts";
import type { Scheduler } from "../scheduler.ts";
import type { Logger } from "../logger.ts";
import type { Topology } from "../service_context.ts";
import type { ReplyAddress } from "./reply_queue.ts";
import type { Envelope, WireMessage } from "./transport.ts";

/** A subscription as the carrier holds it: a pattern, or a pattern and group. */
export interface RemoteInterest {
  /** The queue name or pattern. */
  pattern: string;
  /** The competing-consumer group, if any. */
  group?: string | undefined;
}

/**
 * A subscription outside this process that the carrier learned of (another
 * process announced it, or it is exported to plain clients).
 */
export interface RemoteEntry {
  /** Unique among the carrier's entries. */
  id: string;
  /** The queue name or pattern. */
  pattern: string;
  /** The competing-consumer group, if any. */
  group?: string | undefined;
}

/** What a reply from another process carries to a request of this pool. */
export type RemoteReply =
  | { kind: "reply"; data: unknown }
  | { kind: "no-responders" };

/** A connection of a pool's carrier came up or went down. */
export interface RemoteStatus {
  /** Which connection, in the carrier's words (`publish`, `groups`). */
  link: string;
  /** Whether it is up now. */
  up: boolean;
  /** The server (up) or what went wrong (down). */
  detail: string;
  /**
   * Set when the server refused the connection for good (credentials,
   * TLS): the run cannot go on.
   */
  refused?: SerializedError | undefined;
}

/** How a message from another process was marked by its publisher. */
export type Handled =
  /** Nothing in the publisher's process got it but through the carrier. */
  | "none"
  /** The publisher's process got it already, but for groups spanning processes. */
  | "plain"
  /** The publisher's process got it already, groups included. */
  | "all";

/**
 * Messages from other processes that arrived together for one interest, in
 * order. A run of consecutive messages shares its envelope and publisher:
 * the bus looks their subscriptions up once, and gives them one meta.
 */
export interface RemoteBatch {
  /** The data of each message. */
  data: unknown[];
  /** The size of each message as it arrived, in bytes. */
  sizes: number[];
  /** The runs, in order; the last one ends at `data.length`. */
  runs: RemoteRun[];
}

/** Consecutive messages of a {@linkcode RemoteBatch} alike but for their data. */
export interface RemoteRun {
  /** Their queue, publishing service, time, `replyTo` and headers. */
  envelope: Envelope;
  /**
   * The publisher's pool, when the carrier knows it (then
   * `envelope.service` names its service).
   */
  pool: string | undefined;
  /** The position in `data` just after the run's last message. */
  end: number;
}

/** What the carrier tells the pool's bus. */
export interface RemoteEvents {
  /**
   * Messages arrived for `interest` (those of one read of the carrier's
   * connection, in order): the bus routes them into the subscriptions with
   * that pattern (or each to a member of that group).
   */
  arrive(interest: RemoteInterest, batch: RemoteBatch): void;
  /**
   * Asked before a message of `bytes` for `interest` on `queue` is decoded:
   * `false` when the pool drops it (every subscription it is for is full,
   * and so is the pool's arrival bound); the bus has counted the drop.
   */
  admits(interest: RemoteInterest, queue: string, bytes: number): boolean;
  /** A reply (or "no responders") to a request of this pool. */
  reply(address: ReplyAddress, reply: RemoteReply): void;
  /** A connection came up or went down. */
  status(change: RemoteStatus): void;
  /** Subscriptions outside this process came (`add`) or went (`remove`, ids). */
  interests(add: RemoteEntry[], remove: string[]): void;
  /**
   * Whether the entries are complete: `false` while the carrier has not
   * heard from the other processes (joining, reconnecting), when the bus
   * must assume that anything may be wanted elsewhere.
   */
  known(complete: boolean): void;
  /**
   * Whether a subscriber outside this process wants messages on `queue` now
   * (asked, with the entries complete, about what the carrier held through
   * an outage: the rest is dropped and reported, not replayed).
   */
  wanted(queue: string): boolean;
}

/** What a pool opens its remote carrier with. */
export interface RemoteCarrierParts {
  /** The pool's index and incarnation. */
  index: number;
  incarnation: number;
  /** The pool's name, for the log. */
  pool: string;
  scheduler: Scheduler;
  log: Logger;
  events: RemoteEvents;
}

/** A message the carrier has encoded, ready to send. */
export interface EncodedMessage {
  /** The queue. */
  readonly queue: string;
  /** Its size on the wire (payload and headers), in bytes. */
  readonly bytes: number;
}

/** A pool's end of the carrier between processes. */
export interface RemoteCarrier {
  /** How long a publish may wait for the carrier to take it, in ms. */
  readonly publishTimeout: number;
  /**
   * How many bytes of what arrives the pool may keep waiting beyond its
   * subscriptions' buffers; past it, the bus drops (the carrier cannot
   * pause the sender).
   */
  readonly arrivalBytes: number;
  /** Starts connecting; what is sent meanwhile waits in the carrier. */
  start(): void;
  /**
   * Resolves once the carrier has first learned what the other processes
   * subscribe to (or given up waiting for them), so a pool's `run()` begins
   * knowing it.
   */
  ready(): Promise<void>;
  /**
   * The largest message the carrier takes (payload and headers), in bytes,
   * once it knows (NATS: the server's `max_payload`).
   */
  readonly maxBytes: number | undefined;
  /**
   * Encodes `message` (its `data` may be the caller's own: it is read now).
   *
   * @throws {TypeError} When the data cannot be carried (a
   * `DataCloneError`, a `JsonDataError`).
   * @throws {RangeError} A `MessageTooLargeError` when it is larger than
   * {@linkcode RemoteCarrier.maxBytes}.
   */
  encode(message: WireMessage): EncodedMessage;
  /**
   * Sends a message `encode` made to other processes. `handled` says what
   * of this process got it already. Returns a promise when the publisher
   * should wait for room.
   */
  send(message: EncodedMessage, handled: Handled): Promise<void> | undefined;
  /**
   * Adds a subscription's interest (counted: one per subscription);
   * resolves `true` once other processes' messages reach it (every process
   * known has acknowledged it, or has been forgotten), `false` when the
   * carrier closed first; rejects when the server refused for good.
   */
  subscribe(interest: RemoteInterest): Promise<boolean>;
  /** Removes one subscription's interest. */
  unsubscribe(interest: RemoteInterest): void;
  /** The carrier's own subscriptions, as topology entries. */
  topology(): Topology;
  /** Whether messages wait for the carrier while it is reachable. */
  busy(): boolean;
  /**
   * Stops (within the carrier's close timeout); resolves with what it never
   * delivered, per queue.
   */
  close(): Promise<Array<{ queue: string; count: number }>>;
  /** The store shared by the processes of the run, when the carrier has one. */
  readonly store?: SharedStore | undefined;
}

/** Opens a pool's end of a remote carrier. */
export type OpenRemoteCarrier = (parts: RemoteCarrierParts) => RemoteCarrier;

/**
 * How a shared log is bounded (JetStream: a stream with limits retention).
 */
export interface SharedLogConfig {
  /**
   * Its name: letters, digits, `-` and `_` (others become `_`); the
   * carrier prefixes its namespace.
   */
  name: string;
  /** Oldest entry kept, in ms (> 0). */
  maxAge: number;
  /** How long an appended id is remembered (not appended again), in ms. */
  dedupeWindow: number;
  /** Most entries kept per key. */
  maxPerKey: number;
  /** Most payload bytes kept in all. */
  maxBytes: number;
}

/** One entry of a shared log. */
export interface SharedLogEntry {
  /** Its position in the log: grows by one per entry appended, from 1. */
  seq: number;
  /** The queue name it was appended under. */
  key: string;
  data: Uint8Array;
  /** The id it was appended with (`read` gives it; `follow` may not). */
  id?: string | undefined;
  /** When it was appended, in ms since the epoch (when known). */
  at?: number | undefined;
}

/**
 * An append-only log shared by the processes of a run, ordered by `seq`
 * (JetStream: one stream, the queue names as subjects).
 */
export interface SharedLog {
  /**
   * Appends `data` under `key` (a queue name); an `id` appended already
   * within the log's dedupe window is not appended again.
   *
   * @returns The entry's `seq` (the first one's, for a duplicate).
   */
  append(key: string, data: Uint8Array, id: string): Promise<number>;
  /** The first and last `seq` held (`first > last` when empty). */
  bounds(): Promise<{ first: number; last: number }>;
  /** The entries with `after < seq <= until`, in order. */
  read(after: number, until: number): Promise<SharedLogEntry[]>;
  /**
   * Calls `each` for every entry after `after`, in order, as they come,
   * until `stop()`; `failed` when the following cannot begin.
   */
  follow(
    after: number,
    each: (entry: SharedLogEntry) => void,
    failed: (error: unknown) => void,
  ): { stop(): Promise<void> };
}

/**
 * A table of small records shared by the processes of a run, each
 * forgotten `ttl` ms after its last write (JetStream: a KV bucket).
 */
export interface SharedTable {
  /** The record of `key`, if written within the TTL. */
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
}

/** The store shared by the processes of a run, beside the carrier. */
export interface SharedStore {
  /** Opens the log `config.name` (creating it, or updating its bounds). */
  log(config: SharedLogConfig): Promise<SharedLog>;
  /**
   * Opens the table `name` (letters, digits, `-`, `_`), creating it with
   * `ttl` (ms) or updating it.
   */
  table(name: string, ttl: number): Promise<SharedTable>;
}

/**
 * The key under which a service's context offers the pool's
 * {@linkcode SharedStore} (a method returning it, or `undefined` when the
 * program joins no carrier between processes).
 */
export const SHARED_STORE: unique symbol = Symbol(
  "magic-foundation.sharedStore",
);

/** The pool's shared store, reached through a service's context. */
export function sharedStoreOf(context: object): SharedStore | undefined {
  const offer = (context as { [SHARED_STORE]?: () => SharedStore | undefined })[
    SHARED_STORE
  ];
  return typeof offer === "function" ? offer.call(context) : undefined;
}
