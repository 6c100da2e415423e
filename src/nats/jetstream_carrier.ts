/**
 * Durable queues on JetStream: a {@linkcode DurableCarrier} on a pool's own
 * NATS connection (`durable`), beside the two of its remote carrier.
 *
 * - `publish` is a JetStream publish on the queue's readable subject
 *   (`subject.ts`), resolved by the server's acknowledgement (the message is
 *   stored); its `id` is `Nats-Msg-Id`, deduplicated within the stream's
 *   `duplicate_window`.
 * - `consume` joins a durable pull consumer (created on first use, with
 *   explicit acks, `max_ack_pending` the subscription's `bufferSize`, no
 *   `max_deliver`: the pool moves a message to its `dlq://` queue itself),
 *   shared by every member in every process.
 * - `settle` is `ack()` (acknowledged or dead-lettered) or `nak(delay)`.
 * - While a message is held, `working()` tells the server every third of
 *   `ack_wait` (`durable.ackWait`), so a long handler keeps it.
 * - `cancel` and `close` stop pulling; what was delivered and not yet handed
 *   to a handler comes back after `ack_wait`. Not with `nak()`: with it,
 *   nats-server 2.9.10 delivered some of those messages twice in the next
 *   run in 2 runs of 2 of the stop scenario of `tests/durable_test.ts`;
 *   without it, only on a loaded machine (2 runs of 3), as the server seems to
 *   take back what it sent to a pull that went away.
 *
 * Streams and consumers are created when first used, and an existing one
 * is used as it is (another process, or an operator, made it). Their names:
 * `jetstream_names.ts`; their retention: docs/durable.md.
 *
 * @module
 */
import type { DurableCarrier } from "../durable/carrier.ts";
import type {
  ConsumerBacklog,
  ConsumerMember,
  DeliveredMessage,
  OutgoingMessage,
  Settlement,
} from "../durable/protocol.ts";
import { patternCovers } from "../durable/patterns.ts";
import type { RemoteStatus } from "../transport/remote.ts";
import type { Logger } from "../logger.ts";
import { serializeError } from "../errors.ts";
import { errorMessage } from "../_util/error_text.ts";
import { withTimeout } from "../_util/time.ts";
import { FROM_HEADER, fromValue, parseFrom } from "./arrival.ts";
import {
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JetStreamModule,
  type JsMsg,
  loadJetStream,
  loadNatsClient,
  type MsgHdrs,
  type NatsClient,
} from "./client.ts";
import { NatsLink } from "./connection.ts";
import { decodePayload, encodePayload, ENCODING_HEADER } from "./encoding.ts";
import { consumerName, streamName } from "./jetstream_names.ts";
import type { NatsPoolSettings } from "./options.ts";
import { queueToSubject, subjectToQueue } from "./subject.ts";

/** The header that carries a durable message's `replyTo` queue. */
const REPLY_HEADER = "Mf-Reply-To";
const NANOS_PER_MS = 1_000_000;

/** What the JetStream carrier is built with. */
export interface JetStreamSetup {
  /** The durable patterns (streams), their `dlq://` ones included. */
  streams: readonly string[];
  /** Those only groups subscribe to: work-queue retention. */
  groupOnly: readonly string[];
  /** The dedupe window of `Nats-Msg-Id`, in ms. */
  dedupeWindow: number;
  /** The consumers' `ack_wait`, in ms. */
  ackWait: number;
}

/** What a pool gives its JetStream carrier. */
export interface JetStreamParts {
  pool: string;
  log: Logger;
  /** The connection came up or went down. */
  status(change: RemoteStatus): void;
}

/** The queues whose publish route is remembered, at most. */
const ROUTES_KEPT = 10_000;

/** Where a publish on one queue goes. */
interface Route {
  /** The durable pattern (its stream). */
  pattern: string;
  subject: string;
}

/** How long a backlog waits for the server's consumer info, in ms. */
const BACKLOG_WAIT = 1000;

/** One subscription's consumer, as this pool holds it. */
interface Held {
  /** The durable pattern, the stream's name and the consumer's. */
  pattern: string;
  stream: string;
  consumer: string;
  /** The pull, once started. */
  messages: ConsumerMessages | undefined;
  /** Delivered and not settled, by stream sequence. */
  unsettled: Map<number, JsMsg>;
}

/** The opener of the JetStream carrier (its modules are loaded first). */
export async function jetStreamCarrier(
  settings: NatsPoolSettings,
  setup: JetStreamSetup,
): Promise<(parts: JetStreamParts) => JetStreamCarrier> {
  const [client, jetstream] = await Promise.all([
    loadNatsClient(),
    loadJetStream(),
  ]);
  return (parts) =>
    new JetStreamCarrier(settings, setup, parts, client, jetstream);
}

/** A pool's durable queues on JetStream. */
export class JetStreamCarrier implements DurableCarrier {
  #settings: NatsPoolSettings;
  #setup: JetStreamSetup;
  #parts: JetStreamParts;
  #client: NatsClient;
  #api: JetStreamModule;
  #link: NatsLink;
  #js: JetStreamClient | undefined;
  #jsm: Promise<JetStreamManager> | undefined;
  /** Stream name → its creation (or lookup), once asked for. */
  #streams = new Map<string, Promise<void>>();
  /** The patterns whose stream is known to exist. */
  #ready = new Set<string>();
  #from: { service: string; value: string } | undefined;
  /** Per queue published on, its route (publishes skip the pattern match). */
  #routes = new Map<string, Route>();
  /**
   * The headers of a plain publish (JSON, no id, headers or `replyTo`) by
   * the last service: only its `Mf-From`, built once. Never passed with an
   * id, which `js.publish` adds to the headers it is given.
   */
  #plain: { service: string; headers: MsgHdrs } | undefined;
  #held = new Map<string, Held>();
  /** Consumer name → its last pending figure (see `backlog`). */
  #lastPending = new Map<string, number>();
  #working: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(
    settings: NatsPoolSettings,
    setup: JetStreamSetup,
    parts: JetStreamParts,
    client: NatsClient,
    api: JetStreamModule,
  ) {
    this.#settings = settings;
    this.#setup = setup;
    this.#parts = parts;
    this.#client = client;
    this.#api = api;
    const status = (up: boolean) => (detail: string): void =>
      parts.status({ link: "durable", up, detail });
    this.#link = new NatsLink(
      settings,
      parts.log,
      `durable, pool "${parts.pool}"`,
      "no-echo",
      {
        up: status(true),
        down: status(false),
        refused: (error) =>
          parts.status({
            link: "durable",
            up: false,
            detail: error.message,
            refused: serializeError(error),
          }),
      },
    );
    this.#link.start();
    this.#working = setInterval(
      () => this.#keepWorking(),
      setup.ackWait / 3,
    );
  }

  /**
   * The JetStream client and manager, once connected (waiting at most
   * `publishTimeout` for the connection).
   */
  async #connected(what: string): Promise<
    { js: JetStreamClient; jsm: JetStreamManager }
  > {
    if (!this.#link.up && !this.#closed) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.#settings.publishTimeout);
      });
      const timedOut = await Promise.race([
        this.#link.whenUp().then(() => false),
        late,
      ]);
      clearTimeout(timer);
      if (timedOut) {
        throw new Error(
          `Cannot ${what}: NATS (JetStream) was out of reach for ${this.#settings.publishTimeout} ms`,
        );
      }
    }
    const connection = this.#link.connection;
    if (this.#closed || connection === undefined) {
      throw new Error(
        `Cannot ${what}: ${
          this.#link.refusal?.message ?? "the pool's JetStream carrier closed"
        }`,
      );
    }
    this.#js ??= this.#api.jetstream(connection);
    this.#jsm ??= this.#api.jetstreamManager(connection);
    try {
      return { js: this.#js, jsm: await this.#jsm };
    } catch (error) {
      // JetStream is not enabled (`nats-server -js`), or did not answer.
      this.#jsm = undefined;
      throw new Error(`Cannot ${what}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  /** The `Mf-From` value of this pool's `service` (the last one is kept). */
  #fromOf(service: string): string {
    if (this.#from?.service !== service) {
      this.#from = {
        service,
        value: fromValue(
          this.#settings.processId,
          "none",
          this.#parts.pool,
          service,
        ),
      };
    }
    return this.#from.value;
  }

  /** The durable pattern `queue` (a name or a pattern) lies inside. */
  #patternOf(queue: string): string {
    const pattern = this.#setup.streams.find((p) => patternCovers(p, queue));
    if (pattern === undefined) {
      throw new TypeError(`Cannot use "${queue}": it is not a durable queue`);
    }
    return pattern;
  }

  /** Creates the stream of `pattern` unless it exists; returns its name. */
  async #stream(pattern: string, jsm: JetStreamManager): Promise<string> {
    const name = streamName(this.#settings.namespace, pattern);
    let ready = this.#streams.get(name);
    if (ready === undefined) {
      ready = this.#createStream(name, pattern, jsm);
      this.#streams.set(name, ready);
      ready.catch(() => this.#streams.delete(name));
    }
    await ready;
    return name;
  }

  async #createStream(
    name: string,
    pattern: string,
    jsm: JetStreamManager,
  ): Promise<void> {
    try {
      await jsm.streams.info(name);
      return;
    } catch (error) {
      if (!notFound(error)) throw error;
    }
    const { RetentionPolicy, StorageType } = this.#api;
    const retention = this.#setup.groupOnly.includes(pattern)
      ? RetentionPolicy.Workqueue
      : RetentionPolicy.Limits;
    try {
      await jsm.streams.add({
        name,
        subjects: [queueToSubject(pattern, this.#settings.namespace)],
        retention,
        storage: StorageType.File,
        duplicate_window: this.#setup.dedupeWindow * NANOS_PER_MS,
        description: `magic-foundation durable queues ${pattern}`,
      });
    } catch (error) {
      // Another process made it meanwhile: use it.
      await jsm.streams.info(name).catch(() => {
        throw error;
      });
    }
  }

  async publish(message: OutgoingMessage): Promise<void> {
    const { payload, encoding } = encodePayload(message.data);
    const route = this.#route(message.queue);
    let js = this.#js;
    // Awaited only until the connection is up and the stream known: each
    // await costs a turn per publish.
    if (js === undefined || !this.#link.up || !this.#ready.has(route.pattern)) {
      const connected = await this.#connected(
        `publish on "${message.queue}"`,
      );
      js = connected.js;
      await this.#stream(route.pattern, connected.jsm);
      this.#ready.add(route.pattern);
    }
    const headers = this.#headersOf(message, encoding);
    await js.publish(
      route.subject,
      payload,
      message.id === undefined ? { headers } : { headers, msgID: message.id },
    );
  }

  /** The route of `queue`, remembered. */
  #route(queue: string): Route {
    let route = this.#routes.get(queue);
    if (route === undefined) {
      route = {
        pattern: this.#patternOf(queue),
        subject: queueToSubject(queue, this.#settings.namespace),
      };
      if (this.#routes.size >= ROUTES_KEPT) this.#routes.clear();
      this.#routes.set(queue, route);
    }
    return route;
  }

  /** The headers `message` carries (shared by the plain publishes of a service). */
  #headersOf(message: OutgoingMessage, encoding: string): MsgHdrs {
    const plain = message.id === undefined && message.headers === undefined &&
      message.replyTo === undefined && encoding === "json";
    if (plain && this.#plain?.service === message.service) {
      return this.#plain.headers;
    }
    const headers = this.#client.headers();
    if (message.headers !== undefined) {
      for (const [key, value] of Object.entries(message.headers)) {
        headers.set(key, value);
      }
    }
    if (encoding !== "json") headers.set(ENCODING_HEADER, encoding);
    headers.set(FROM_HEADER, this.#fromOf(message.service));
    if (message.replyTo !== undefined) {
      headers.set(REPLY_HEADER, message.replyTo);
    }
    if (plain) this.#plain = { service: message.service, headers };
    return headers;
  }

  async consume(
    member: ConsumerMember,
    deliver: (messages: DeliveredMessage[]) => void,
  ): Promise<void> {
    const { js, jsm } = await this.#connected(
      `subscribe to "${member.queue}"`,
    );
    const pattern = this.#patternOf(member.queue);
    const stream = await this.#stream(pattern, jsm);
    const namespace = this.#settings.namespace;
    const name = consumerName(
      namespace,
      member.queue,
      member.group,
      member.service,
    );
    try {
      await jsm.consumers.info(stream, name);
    } catch (error) {
      if (!notFound(error)) throw error;
      const { AckPolicy, DeliverPolicy } = this.#api;
      try {
        await jsm.consumers.add(stream, {
          durable_name: name,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          filter_subject: queueToSubject(member.queue, namespace),
          max_ack_pending: member.capacity,
          ack_wait: this.#setup.ackWait * NANOS_PER_MS,
          max_deliver: -1,
        });
      } catch (error) {
        // Another member made it meanwhile: join it.
        await jsm.consumers.info(stream, name).catch(() => {
          throw error;
        });
      }
    }
    const consumer = await js.consumers.get(stream, name);
    const id = member.subscription;
    const held: Held = {
      pattern,
      stream,
      consumer: name,
      messages: undefined,
      unsettled: new Map(),
    };
    this.#held.set(id, held);
    let batch: DeliveredMessage[] = [];
    const messages = await consumer.consume({
      max_messages: member.capacity,
      callback: (msg) => {
        if (this.#closed || this.#held.get(id) !== held) {
          return;
        }
        let delivered;
        try {
          delivered = this.#read(pattern, msg);
        } catch (error) {
          this.#parts.log.warn(
            `A durable message on "${msg.subject}" cannot be read (${
              errorMessage(error)
            }); it is acknowledged and dropped`,
          );
          msg.ack();
          return;
        }
        held.unsettled.set(msg.seq, msg);
        if (batch.length === 0) {
          queueMicrotask(() => {
            const taken = batch;
            batch = [];
            deliver(taken);
          });
        }
        batch.push(delivered);
      },
    }).catch((error) => {
      this.#held.delete(id);
      throw error;
    });
    held.messages = messages;
    // Left while the pull started.
    if (this.#held.get(id) !== held) await messages.close().catch(() => {});
  }

  /** What a handler sees of `msg`. */
  #read(pattern: string, msg: JsMsg): DeliveredMessage {
    let headers: Record<string, string> | undefined;
    let encoding: string | undefined;
    let from;
    let replyTo: string | undefined;
    if (msg.headers !== undefined) {
      for (const key of msg.headers.keys()) {
        const value = msg.headers.get(key);
        if (key === ENCODING_HEADER) encoding = value;
        else if (key === FROM_HEADER) from = parseFrom(value);
        else if (key === REPLY_HEADER) replyTo = value;
        else if (!key.startsWith("Nats-")) (headers ??= {})[key] = value;
      }
    }
    const queue = this.#queueOf(msg.subject);
    const message: DeliveredMessage = {
      stream: pattern,
      seq: msg.seq,
      attempt: msg.info.deliveryCount,
      queue,
      pool: from?.pool ?? "",
      service: from?.service ?? "",
      publishedAt: Math.floor(msg.info.timestampNanos / NANOS_PER_MS),
      data: decodePayload(msg.data, encoding),
    };
    if (headers !== undefined) message.headers = headers;
    if (replyTo !== undefined) message.replyTo = replyTo;
    return message;
  }

  #queueOf(subject: string): string {
    const queue = subjectToQueue(subject, this.#settings.namespace);
    if (queue === undefined) {
      throw new TypeError(`subject "${subject}" is not a queue name`);
    }
    return queue;
  }

  settle(subscription: string, settlements: Settlement[]): void {
    const held = this.#held.get(subscription);
    if (held === undefined) return;
    for (const settlement of settlements) {
      const msg = held.unsettled.get(settlement.seq);
      if (msg === undefined) continue;
      held.unsettled.delete(settlement.seq);
      try {
        if (settlement.outcome === "retry") msg.nak(settlement.delay);
        else msg.ack();
      } catch {
        // The connection is gone: the server redelivers after ack_wait.
      }
    }
  }

  /**
   * Each consumer's `num_pending + num_ack_pending`, from one consumer info
   * request per consumer, waited for at most a second; past that, or while
   * the server is out of reach, the last figure it gave (none before).
   */
  async backlog(subscriptions: readonly string[]): Promise<ConsumerBacklog[]> {
    const consumers = new Map<string, Held>();
    for (const id of subscriptions) {
      const held = this.#held.get(id);
      if (held !== undefined) consumers.set(held.consumer, held);
    }
    const jsm = this.#link.up && !this.#closed ? this.#jsm : undefined;
    if (jsm !== undefined) {
      await Promise.all([...consumers.values()].map(async (held) => {
        try {
          const info = await withTimeout(
            jsm.then((m) => m.consumers.info(held.stream, held.consumer)),
            BACKLOG_WAIT,
          );
          this.#lastPending.set(
            held.consumer,
            info.num_pending + info.num_ack_pending,
          );
        } catch {
          // Not answered: the last figure stands.
        }
      }));
    }
    const backlog: ConsumerBacklog[] = [];
    for (const subscription of subscriptions) {
      const held = this.#held.get(subscription);
      if (held === undefined) continue;
      const pending = this.#lastPending.get(held.consumer);
      if (pending === undefined) continue;
      backlog.push({
        subscription,
        stream: held.pattern,
        consumer: held.consumer,
        pending,
      });
    }
    return backlog;
  }

  async cancel(subscriptions: string[]): Promise<void> {
    await Promise.all(subscriptions.map((id) => this.#leave(id)));
  }

  /**
   * Stops pulling for `subscription`; what it holds unsettled comes back
   * after `ack_wait` (see the module documentation).
   */
  async #leave(subscription: string): Promise<void> {
    const held = this.#held.get(subscription);
    if (held === undefined) return;
    this.#held.delete(subscription);
    await held.messages?.close().catch(() => {});
    held.unsettled.clear();
  }

  /** Tells the server that every held message is still being worked on. */
  #keepWorking(): void {
    for (const held of this.#held.values()) {
      for (const msg of held.unsettled.values()) {
        try {
          msg.working();
        } catch {
          // Reconnecting: the next tick tries again.
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#working);
    await Promise.all([...this.#held.keys()].map((id) => this.#leave(id)));
    await this.#link.close("drain", this.#settings.closeTimeout);
  }
}

/** Whether a JetStream API error says the stream or consumer does not exist. */
function notFound(error: unknown): boolean {
  const api = error as { code?: unknown; status?: unknown; message?: unknown };
  return api.code === 404 || api.status === 404 ||
    /not found/i.test(String(api.message));
}
