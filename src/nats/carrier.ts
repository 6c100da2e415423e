/**
 * One pool's end of NATS, as a remote carrier of the bus (see
 * `transport/remote.ts`): its own two connections, what it publishes
 * (`publisher.ts`), what it subscribes to (`interests.ts`), its replies
 * (`replies.ts`), and what arrives (`arrival.ts`), handed to the bus.
 *
 * Each pool connects by itself, so a message goes from the publishing
 * pool's thread to the server and from the server to the subscribing pool's
 * thread with no hop through another thread. Pools of one process reach
 * each other over the in-process transport, never through the server.
 *
 * @module
 */
import type { Msg } from "./client.ts";
import { type NatsAuthError, serializeError } from "../errors.ts";
import { errorMessage } from "../_util/error_text.ts";
import type {
  EncodedMessage,
  Handled,
  OpenRemoteCarrier,
  RemoteCarrier,
  RemoteCarrierParts,
  RemoteInterest,
  RemoteStatus,
  SharedStore,
} from "../transport/remote.ts";
import type { WireMessage } from "../transport/transport.ts";
import type { Topology } from "../service_context.ts";
import { fromOf, handledHere, hasReply, readMessage } from "./arrival.ts";
import { ArrivalBatches } from "./arrival_batches.ts";
import { Catalog } from "./catalog.ts";
import { loadNatsClient } from "./client.ts";
import { NatsLink } from "./connection.ts";
import { type HeldInterest, NatsInterests } from "./interests.ts";
import type { NatsPoolSettings } from "./options.ts";
import { NatsPublisher } from "./publisher.ts";
import { ReplySubjects } from "./replies.ts";
import { NatsStore } from "./store.ts";
import { subjectToQueue } from "./subject.ts";

/** Subjects that do not decode, reported once each (bounded). */
const REPORTED_LIMIT = 1000;

/**
 * The opener of the NATS carrier for `settings` (the client is loaded
 * first: a pool that cannot load it fails to start).
 */
export async function natsCarrier(
  settings: NatsPoolSettings,
): Promise<OpenRemoteCarrier> {
  await loadNatsClient();
  return (parts) => new NatsCarrier(settings, parts);
}

/** A pool's end of NATS. */
export class NatsCarrier implements RemoteCarrier {
  readonly publishTimeout: number;
  readonly arrivalBytes: number;
  /** JetStream on the publishing connection (see `store.ts`). */
  readonly store: SharedStore;
  #settings: NatsPoolSettings;
  #parts: RemoteCarrierParts;
  #plain: NatsLink;
  #groups: NatsLink;
  #publisher: NatsPublisher;
  #interests: NatsInterests;
  #replies: ReplySubjects;
  #catalog: Catalog;
  #reported = new Set<string>();
  /** What arrives, handed to the bus once per read of a connection. */
  #arrivals: ArrivalBatches;
  #closed = false;
  #refusedOnce = false;
  #connectedOnce = false;

  constructor(settings: NatsPoolSettings, parts: RemoteCarrierParts) {
    this.#settings = settings;
    this.#parts = parts;
    this.publishTimeout = settings.publishTimeout;
    this.arrivalBytes = settings.arrivalBytes;
    this.store = new NatsStore(settings.namespace, async () => {
      await this.#plain.whenUp();
      const connection = this.#plain.connection;
      if (connection === undefined) {
        throw new Error(`Cannot use JetStream: NATS is not connected`);
      }
      return connection;
    });
    const label = (what: string): string => `${what}, pool "${parts.pool}"`;
    const status = (link: string, up: boolean) => (detail: string): void =>
      parts.events.status({ link, up, detail });
    this.#replies = new ReplySubjects(
      settings.namespace,
      settings.processId,
      parts.index,
      parts.incarnation,
    );
    this.#plain = new NatsLink(
      settings,
      parts.log,
      label("publish"),
      "no-echo",
      {
        up: (server) => {
          status("publish", true)(server);
          // After a reconnect, what was held waits until the others are
          // subscribed again (or forgotten): never replayed into nobody.
          if (this.#connectedOnce) this.#publisher.pause();
          this.#connectedOnce = true;
          this.#publisher.up();
          this.#catalog.up();
        },
        down: (reason) => {
          this.#publisher.down();
          this.#catalog.down();
          status("publish", false)(reason);
        },
        refused: (error) => this.#refused("publish", error),
      },
    );
    this.#groups = new NatsLink(settings, parts.log, label("groups"), "echo", {
      up: status("groups", true),
      down: status("groups", false),
      refused: (error) => this.#refused("groups", error),
    });
    this.#publisher = new NatsPublisher({
      link: this.#plain,
      pool: parts.pool,
      exports: settings.exports,
      namespace: settings.namespace,
      processId: settings.processId,
      replies: this.#replies,
      scheduler: parts.scheduler,
      log: parts.log,
    });
    this.#catalog = new Catalog({
      namespace: settings.namespace,
      processId: settings.processId,
      node: `${settings.processId}-${parts.index}-${parts.incarnation}`,
      link: this.#plain,
      log: parts.log,
      interests: (add, remove) => parts.events.interests(add, remove),
      known: (complete) => parts.events.known(complete),
      settled: () => this.#resume(),
    });
    this.#arrivals = new ArrivalBatches((interest, batch) =>
      parts.events.arrive(interest, batch)
    );
    this.#interests = new NatsInterests({
      namespace: settings.namespace,
      plain: this.#plain,
      groups: this.#groups,
      log: parts.log,
      receive: (held, msg) => this.#receive(held, msg),
    });
  }

  /** Tells the pool of its first refusal (both links see it). */
  #refused(link: RemoteStatus["link"], error: NatsAuthError): void {
    if (this.#refusedOnce) return;
    this.#refusedOnce = true;
    this.#parts.events.status({
      link,
      up: false,
      detail: error.message,
      refused: serializeError(error),
    });
  }

  start(): void {
    void loadNatsClient().then((client) =>
      this.#publisher.useHeaders(() => client.headers())
    );
    // Plain NATS clients may want these, whoever else does.
    this.#parts.events.interests(
      this.#settings.exports.map((pattern) => ({
        id: `exports\u0000${pattern}`,
        pattern,
      })),
      [],
    );
    this.#catalog.start();
    this.#plain.start();
    this.#groups.start();
    void this.#subscribeReplies();
  }

  ready(): Promise<void> {
    return this.#catalog.ready();
  }

  get maxBytes(): number | undefined {
    return this.#publisher.maxBytes;
  }

  encode(message: WireMessage): EncodedMessage {
    return this.#publisher.encode(message);
  }

  send(message: EncodedMessage, handled: Handled): Promise<void> | undefined {
    // Only this carrier's `encode` makes them.
    return this.#publisher.send(
      message as ReturnType<NatsPublisher["encode"]>,
      handled,
    );
  }

  async subscribe(interest: RemoteInterest): Promise<boolean> {
    // Counted by both at once, so an unsubscribe meanwhile undoes both.
    const inForce = this.#interests.add(interest);
    const told = this.#catalog.add(interest);
    if (!await inForce) return false;
    await told;
    return !this.#closed;
  }

  unsubscribe(interest: RemoteInterest): void {
    this.#interests.remove(interest);
    this.#catalog.remove(interest);
  }

  topology(): Topology {
    return this.#interests.topology();
  }

  busy(): boolean {
    return this.#publisher.busy();
  }

  /** Hands a message from NATS to the pool's bus. */
  #receive(held: HeldInterest, msg: Msg): void {
    // A status of the server (503 "no responders" to a request whose
    // reply subject we subscribe to) is not a message.
    if (msg.headers !== undefined && msg.headers.code !== 0) return;
    const { from, payload } = fromOf(msg);
    // Pools of this process got it over the transport already.
    const kind = held.interest.group === undefined ? "plain" : "group";
    if (handledHere(from, this.#settings.processId, kind)) return;
    // `msg.subject` decodes the subject's bytes on every message.
    const queue = held.queue ??
      subjectToQueue(msg.subject, this.#settings.namespace);
    if (queue === undefined) {
      this.#reportOnce(
        msg.subject,
        `NATS subject "${msg.subject}" is not a queue name; its message is dropped`,
      );
      return;
    }
    // Dropped before decoding when the pool cannot take it.
    const events = this.#parts.events;
    if (!events.admits(held.interest, queue, payload.length)) return;
    let read;
    try {
      read = readMessage(msg, payload);
    } catch (error) {
      this.#unreadable(queue, error);
      return;
    }
    held.received++;
    this.#arrivals.add(held.interest, {
      queue,
      data: read.data,
      size: payload.length,
      service: from?.service ?? "",
      pool: from?.pool,
      replyTo: hasReply(msg) ? this.#replies.queueOf(msg.reply!) : undefined,
      headers: read.headers,
    });
  }

  /** After a reconnect: sends what is still wanted, reports the rest. */
  #resume(): void {
    const dropped = this.#publisher.resume((queue) =>
      this.#parts.events.wanted(queue)
    );
    if (dropped.size === 0) return;
    const counts = [...dropped].map(([queue, count]) =>
      `${count} on "${queue}"`
    ).join(", ");
    this.#parts.log.warn(
      `NATS: after reconnecting, messages held for other processes that no process subscribes to any more were dropped: ${counts}`,
    );
  }

  /** Replies to this pool's requests, and NATS's "no responders". */
  async #subscribeReplies(): Promise<void> {
    await this.#plain.whenUp();
    const connection = this.#plain.connection;
    if (this.#closed || connection === undefined) return;
    this.#replies.subscribe(
      connection,
      (address, reply) => this.#parts.events.reply(address, reply),
      (error) => this.#unreadable(`reply://${this.#parts.index}`, error),
    );
  }

  /**
   * Stops: waits (up to `closeTimeout`) for the server to confirm what the
   * pool published (connecting first, when a pool stops before its first
   * connection is up), then drains both connections. Returns what the
   * server never confirmed, per queue.
   */
  async close(): Promise<Array<{ queue: string; count: number }>> {
    if (this.#closed) return [];
    const deadline = Date.now() + this.#settings.closeTimeout;
    await this.#publisher.settle(deadline);
    this.#catalog.close();
    this.#closed = true;
    const left = Math.max(100, deadline - Date.now());
    await Promise.all([
      this.#plain.close("drain", left),
      this.#groups.close("drain", left),
    ]);
    return this.#publisher.abandon();
  }

  #unreadable(queue: string, error: unknown): void {
    this.#reportOnce(
      queue,
      `A message on "${queue}" from NATS cannot be read (${
        errorMessage(error)
      }); it is dropped`,
    );
  }

  #reportOnce(key: string, line: string): void {
    if (this.#reported.has(key) || this.#reported.size >= REPORTED_LIMIT) {
      return;
    }
    this.#reported.add(key);
    this.#parts.log.warn(line);
  }
}
