/**
 * One pool's end of NATS: its own connections, what it publishes and what
 * it subscribes to.
 *
 * Each pool connects by itself, so a message goes from the publishing
 * pool's thread to the server and from the server to the subscribing pool's
 * thread with no hop through another thread. Pools of one process still
 * reach each other over the transport, never through the server: a pool
 * publishes on a connection that does not echo, and when other pools of its
 * process got the message over the transport it marks the NATS copy with the
 * process (header `Mf-Origin`), which those pools then drop. Groups are NATS
 * queue subscriptions on a second connection that does echo, so the server
 * picks each group message's member among every pool of every process.
 *
 * Nothing published is forgotten before the server has it: a message stays
 * in the pool's pending list until a flush (PING/PONG) after it returns;
 * after a reconnect whatever was not confirmed is sent again, in order, and
 * while the server is unreachable messages wait there, up to a bound past
 * which `publish` waits (see `NatsUnavailableError`).
 *
 * @module
 */
import type { Msg, MsgHdrs } from "./client.ts";
import {
  DataCloneError,
  JsonDataError,
  type NatsAuthError,
  type SerializedError,
  serializeError,
} from "../errors.ts";
import type { MetaFactory } from "../bus/meta.ts";
import {
  isRemoteReply,
  isReplyQueue,
  remoteReplyQueue,
  remoteReplySubject,
  type ReplyAddress,
} from "../bus/requests.ts";
import { groupKeyOf } from "../bus/routes.ts";
import { snapshot } from "../bus/snapshot.ts";
import type { LocalSubscription } from "../bus/subscription.ts";
import { errorMessage } from "../_util/error_text.ts";
import type { Scheduler } from "../scheduler.ts";
import { withTimeout } from "../_util/time.ts";
import type { WireMessage } from "../transport/transport.ts";
import type { Logger, Topology } from "../types.ts";
import { loadNatsClient } from "./client.ts";
import { NatsLink } from "./connection.ts";
import {
  decodePayload,
  encodePayload,
  ENCODING_HEADER,
  NotJsonError,
  type PayloadReader,
} from "./encoding.ts";
import type { NatsSettings } from "./options.ts";
import { queueToSubject, subjectToQueue } from "./subject.ts";

/** The header that names the process of a message other pools got already. */
export const ORIGIN_HEADER = "Mf-Origin";

/** What a pool needs to join NATS (the primary sends it in `init`). */
export interface NatsPoolSettings extends NatsSettings {
  /** The process's id, the same in all its pools. */
  processId: string;
  /** How long a stop waits for the server to confirm what was published, in ms. */
  closeTimeout: number;
}

/** How a pool's NATS end publishes, as the bus's sending side sees it. */
export interface NatsPublisher {
  /** How long a publish may wait for room, in ms. */
  readonly publishTimeout: number;
  /**
   * Publishes `message` (its `data` may be the caller's own: it is encoded
   * here, at once). With `tagged`, other pools of this process got it over
   * the transport. Returns a promise when the pending list is full.
   *
   * @throws {DataCloneError} When the data cannot be encoded.
   */
  publish(message: WireMessage, tagged: boolean): Promise<void> | undefined;
}

/** What a reply from NATS carries to the pool's requests. */
export type NatsReply =
  | { kind: "reply"; data: unknown }
  | { kind: "no-responders" };

/** What a pool's NATS end needs from its pool. */
export interface PoolLinkParts {
  settings: NatsPoolSettings;
  /** The pool's index and incarnation (its reply subjects hold them). */
  index: number;
  incarnation: number;
  /** The pool's name, for the log. */
  pool: string;
  /** The index `meta.from` names `nats` by (after the pools'). */
  natsIndex: number;
  metas: MetaFactory;
  scheduler: Scheduler;
  log: Logger;
  /** Settles a request of this pool. */
  reply(address: ReplyAddress, reply: NatsReply): void;
  /** Told when one of the pool's connections comes up or goes down. */
  status(change: NatsStatusChange): void;
}

/** A connection of a pool came up or went down. */
export interface NatsStatusChange {
  /** Which connection: `publish` or `groups`. */
  link: "publish" | "groups";
  /** Whether it is up now. */
  up: boolean;
  /** The server (up) or what went wrong (down). */
  detail: string;
  /**
   * Set when the server refused the connection for good (credentials,
   * TLS): a {@linkcode NatsAuthError}. The run cannot go on.
   */
  refused?: SerializedError | undefined;
}

/** Messages waiting for the server: over this bound, `publish` waits. */
const PENDING_MESSAGES = 10_000;
const PENDING_BYTES = 8 * 1024 * 1024;
/** Subjects that do not decode, reported once each (bounded). */
const REPORTED_LIMIT = 1000;

interface Outgoing {
  queue: string;
  subject: string;
  payload: Uint8Array;
  reply: string | undefined;
  /** The publisher's headers. */
  headers: Readonly<Record<string, string>> | undefined;
  /** `Mf-Encoding`, when not JSON. */
  encoding: string | undefined;
  /** Whether other pools of this process got it (`Mf-Origin`). */
  tagged: boolean;
  seq: number;
}

interface Interest {
  queue: string;
  group: string | undefined;
  subject: string;
  subscriptions: LocalSubscription[];
  turn: number;
  received: number;
  /** Resolves once the server has the NATS subscription. */
  ready: Promise<boolean>;
  unsubscribe(): void;
}

/** A pool's end of NATS. */
export class NatsPoolLink implements NatsPublisher {
  readonly publishTimeout: number;
  #parts: PoolLinkParts;
  #namespace: string;
  #publisher: NatsLink;
  #groups: NatsLink;
  #interests = new Map<string, Interest>();
  #pending: Outgoing[] = [];
  #pendingBytes = 0;
  /** How many of `#pending` went out on the current connection. */
  #sent = 0;
  #seq = 0;
  #generation = 0;
  #flushScheduled = false;
  #room: PromiseWithResolvers<void> | undefined;
  #replyPrefix: string;
  /** The root of every magic-foundation reply subject of the namespace. */
  #replyRoot: string;
  #processPrefix: string;
  #originHeaders: MsgHdrs | undefined;
  #reported = new Set<string>();
  #client: Awaited<ReturnType<typeof loadNatsClient>> | undefined;
  #closed = false;
  #refusedOnce = false;

  constructor(parts: PoolLinkParts) {
    this.#parts = parts;
    const { settings } = parts;
    this.publishTimeout = settings.publishTimeout;
    this.#namespace = settings.namespace;
    this.#replyRoot = `${settings.namespace}._r.`;
    this.#processPrefix = `${this.#replyRoot}${settings.processId}.`;
    this.#replyPrefix =
      `${this.#processPrefix}${parts.index}.${parts.incarnation}.`;
    const label = (what: string) => `${what}, pool "${parts.pool}"`;
    const status =
      (link: NatsStatusChange["link"], up: boolean) => (detail: string): void =>
        parts.status({ link, up, detail });
    this.#publisher = new NatsLink(
      settings,
      parts.log,
      label("publish"),
      false,
      {
        up: (server) => {
          status("publish", true)(server);
          this.#resend();
        },
        down: (reason) => {
          this.#generation++;
          this.#sent = 0;
          status("publish", false)(reason);
        },
        refused: (error) => this.#refused("publish", error),
      },
    );
    this.#groups = new NatsLink(settings, parts.log, label("groups"), true, {
      up: status("groups", true),
      down: status("groups", false),
      refused: (error) => this.#refused("groups", error),
    });
  }

  /** Tells the primary of the pool's first refusal (both links see it). */
  #refused(link: NatsStatusChange["link"], error: NatsAuthError): void {
    if (this.#refusedOnce) return;
    this.#refusedOnce = true;
    this.#parts.status({
      link,
      up: false,
      detail: error.message,
      refused: serializeError(error),
    });
  }

  /** Starts connecting; publishes wait in the pending list meanwhile. */
  start(): void {
    void loadNatsClient().then((client) => {
      this.#client = client;
      const origin = client.headers();
      origin.set(ORIGIN_HEADER, this.#parts.settings.processId);
      this.#originHeaders = origin;
    });
    this.#publisher.start();
    this.#groups.start();
    void this.#subscribeReplies();
  }

  // ---- publishing --------------------------------------------------------

  publish(message: WireMessage, tagged: boolean): Promise<void> | undefined {
    const { queue, replyTo, headers } = message;
    let subject: string;
    let reader: PayloadReader = "ours";
    if (isRemoteReply(queue)) {
      subject = remoteReplySubject(queue);
      // A reply subject no magic-foundation process of the namespace made
      // (`_INBOX.…`) is a plain NATS client's: it gets JSON or bytes only.
      if (!subject.startsWith(this.#replyRoot)) reader = "foreign";
    } else {
      subject = queueToSubject(queue, this.#namespace);
    }
    let encoded;
    try {
      encoded = encodePayload(message.data, reader);
    } catch (error) {
      throw error instanceof NotJsonError
        ? new JsonDataError(queue, error.path, error.what)
        : new DataCloneError(queue, error);
    }
    const outgoing: Outgoing = {
      queue,
      subject,
      payload: encoded.payload,
      reply: replyTo === undefined ? undefined : this.#replySubjectOf(replyTo),
      headers,
      encoding: encoded.encoding === "json" ? undefined : encoded.encoding,
      tagged,
      seq: ++this.#seq,
    };
    this.#pending.push(outgoing);
    this.#pendingBytes += outgoing.payload.length;
    if (this.#publisher.up) {
      // The first message of a turn leaves at once (a lone request or reply
      // waits for nothing); the rest of the turn's go together.
      if (!this.#flushScheduled && this.#sent === this.#pending.length - 1) {
        this.#sent++;
        this.#write(outgoing);
      }
      this.#scheduleFlush();
    }
    if (
      this.#pending.length < PENDING_MESSAGES &&
      this.#pendingBytes < PENDING_BYTES
    ) return undefined;
    return (this.#room ??= Promise.withResolvers<void>()).promise;
  }

  /** Whether messages wait for the server while it is reachable. */
  busy(): boolean {
    return this.#pending.length > 0 && this.#publisher.up;
  }

  /** The NATS headers of a message, or `undefined` when it needs none. */
  #headersOf(outgoing: Outgoing): MsgHdrs | undefined {
    const { headers, encoding, tagged } = outgoing;
    if (headers === undefined && encoding === undefined) {
      return tagged ? this.#originHeaders : undefined;
    }
    const hdrs = this.#client!.headers();
    if (headers !== undefined) {
      for (const key in headers) hdrs.set(key, headers[key]!);
    }
    if (encoding !== undefined) hdrs.set(ENCODING_HEADER, encoding);
    if (tagged) hdrs.set(ORIGIN_HEADER, this.#parts.settings.processId);
    return hdrs;
  }

  /** Hands a message to the client (connected, so the client is loaded). */
  #write(outgoing: Outgoing): void {
    const connection = this.#publisher.connection!;
    try {
      const headers = this.#headersOf(outgoing);
      if (outgoing.reply === undefined && headers === undefined) {
        connection.publish(outgoing.subject, outgoing.payload);
      } else {
        connection.publish(outgoing.subject, outgoing.payload, {
          reply: outgoing.reply,
          headers,
        });
      }
    } catch (error) {
      // Refused for good (too big for the server, a bad header): it would
      // be refused again, so it is reported and dropped from the list.
      this.#parts.log.error(
        `NATS refused a message on "${outgoing.queue}": ${errorMessage(error)}`,
      );
      outgoing.payload = new Uint8Array(0);
      outgoing.subject = "";
    }
  }

  /**
   * Once per turn of the event loop: hands the client, in order, what has
   * not gone out on this connection, and flushes. Writing per turn, not per
   * publish, lets the client put a turn's messages in one socket write; the
   * flush's PONG confirms them.
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#parts.scheduler.defer(() => {
      this.#flushScheduled = false;
      const connection = this.#publisher.connection;
      if (!this.#publisher.up || connection === undefined) return;
      while (this.#sent < this.#pending.length) {
        const outgoing = this.#pending[this.#sent++]!;
        if (outgoing.subject !== "") this.#write(outgoing);
      }
      const upTo = this.#seq;
      const generation = this.#generation;
      connection.flush().then(() => {
        if (generation === this.#generation) this.#confirm(upTo);
      }, () => {
        // Lost meanwhile: `down` resets what went out; `up` sends it again.
      });
    });
  }

  #confirm(seq: number): void {
    let count = 0;
    while (count < this.#pending.length && this.#pending[count]!.seq <= seq) {
      this.#pendingBytes -= this.#pending[count]!.payload.length;
      count++;
    }
    this.#pending.splice(0, count);
    this.#sent -= count;
    if (
      this.#room !== undefined && this.#pending.length < PENDING_MESSAGES &&
      this.#pendingBytes < PENDING_BYTES
    ) {
      this.#room.resolve();
      this.#room = undefined;
    }
  }

  /** After a (re)connect: sends, in order, what the server has not confirmed. */
  #resend(): void {
    if (this.#pending.length > this.#sent) this.#scheduleFlush();
  }

  /** The NATS reply subject of a `replyTo` queue. */
  #replySubjectOf(replyTo: string): string {
    if (isRemoteReply(replyTo)) return remoteReplySubject(replyTo);
    if (isReplyQueue(replyTo)) {
      // reply://<pool>/<incarnation>/<id>: that pool's reply subjects.
      return this.#processPrefix +
        replyTo.slice("reply://".length).replaceAll("/", ".");
    }
    return queueToSubject(replyTo, this.#namespace);
  }

  // ---- subscribing -------------------------------------------------------

  /**
   * Adds a subscription of the pool; resolves once the server has its NATS
   * subscription (waiting through an outage), `false` if the link closed.
   */
  subscribe(subscription: LocalSubscription): Promise<boolean> {
    const { queue, group } = subscription;
    const key = interestKey(queue, group);
    let interest = this.#interests.get(key);
    if (interest === undefined) {
      interest = this.#open(queue, group);
      this.#interests.set(key, interest);
    }
    interest.subscriptions.push(subscription);
    return interest.ready;
  }

  /** Removes a subscription; the last one of its pattern closes the NATS one. */
  unsubscribe(subscription: LocalSubscription): void {
    const { queue, group } = subscription;
    const key = interestKey(queue, group);
    const interest = this.#interests.get(key);
    if (interest === undefined) return;
    interest.subscriptions = interest.subscriptions.filter((s) =>
      s !== subscription
    );
    if (interest.subscriptions.length > 0) return;
    this.#interests.delete(key);
    interest.unsubscribe();
  }

  /** The NATS subscriptions, as topology entries of the pool `nats`. */
  topology(): Topology {
    const topology: Topology = {};
    for (const interest of this.#interests.values()) {
      ((topology[interest.queue] ??= {}).nats ??= []).push({
        service: interest.subject,
        group: interest.group,
        buffered: 0,
        highWater: 0,
        delivered: interest.received,
      });
    }
    return topology;
  }

  #open(queue: string, group: string | undefined): Interest {
    const link = group === undefined ? this.#publisher : this.#groups;
    const interest: Interest = {
      queue,
      group,
      subject: queueToSubject(queue, this.#namespace),
      subscriptions: [],
      turn: 0,
      received: 0,
      ready: Promise.resolve(false),
      unsubscribe: () => {},
    };
    let closed = false;
    interest.unsubscribe = () => {
      closed = true;
    };
    interest.ready = (async () => {
      await link.whenUp();
      // Not in force on the server, and it never will be.
      if (link.refusal !== undefined) throw link.refusal;
      if (closed || link.connection === undefined) return false;
      const nats = link.connection.subscribe(interest.subject, {
        queue: group === undefined ? undefined : groupName(group),
        callback: (error, msg) => {
          if (error !== null) {
            this.#parts.log.error(
              `NATS: the subscription to "${interest.subject}" failed: ${
                errorMessage(error)
              }`,
            );
            return;
          }
          this.#receive(interest, msg);
        },
      });
      interest.unsubscribe = () => nats.unsubscribe();
      return await link.flush();
    })();
    return interest;
  }

  /** Hands a message from NATS to the interest's subscriptions. */
  #receive(interest: Interest, msg: Msg): void {
    const msgHeaders = msg.headers;
    if (msgHeaders !== undefined) {
      // A status of the server (503 "no responders" to a request whose
      // reply subject we subscribe to) is not a message.
      if (msgHeaders.code !== 0) return;
      // Pools of this process got it over the transport already.
      if (
        interest.group === undefined &&
        msgHeaders.get(ORIGIN_HEADER) === this.#parts.settings.processId
      ) return;
    }
    const queue = subjectToQueue(msg.subject, this.#namespace);
    if (queue === undefined) {
      this.#reportOnce(
        msg.subject,
        `NATS subject "${msg.subject}" is not a queue name; its message is dropped`,
      );
      return;
    }
    const targets = interest.subscriptions;
    if (targets.length === 0) return;
    const envelope = this.#read(msg, queue);
    if (envelope === undefined) return;
    interest.received++;
    const meta = this.#parts.metas.of(envelope, this.#parts.natsIndex);
    if (interest.group !== undefined) {
      targets[interest.turn++ % targets.length]!.push(envelope.data, meta);
      return;
    }
    const last = targets.length - 1;
    for (let i = 0; i < last; i++) {
      targets[i]!.push(snapshot(envelope.data), meta);
    }
    targets[last]!.push(envelope.data, meta);
  }

  /** The envelope and data of a message from NATS; `undefined` if unreadable. */
  #read(msg: Msg, queue: string): WireMessage | undefined {
    let headers: Record<string, string> | undefined;
    let encoding: string | undefined;
    let data: unknown;
    try {
      if (msg.headers !== undefined) {
        for (const key of msg.headers.keys()) {
          if (key === ENCODING_HEADER) encoding = msg.headers.get(key);
          else if (key !== ORIGIN_HEADER) {
            (headers ??= {})[key] = msg.headers.get(key);
          }
        }
      }
      data = decodePayload(msg.data, encoding);
    } catch (error) {
      this.#reportOnce(
        queue,
        `A message on "${queue}" from NATS cannot be read (${
          errorMessage(error)
        }); it is dropped`,
      );
      return undefined;
    }
    const message: WireMessage = {
      queue,
      data,
      service: "",
      publishedAt: Date.now(),
      size: msg.data.length,
    };
    if (hasReply(msg)) {
      message.replyTo = this.#replyQueueOf(msg.reply!);
    }
    if (headers !== undefined) message.headers = headers;
    return message;
  }

  /** The queue a NATS reply subject is answered on, from this process. */
  #replyQueueOf(subject: string): string {
    if (subject.startsWith(this.#processPrefix)) {
      return `reply://${
        subject.slice(this.#processPrefix.length).replaceAll(".", "/")
      }`;
    }
    const queue = subjectToQueue(subject, this.#namespace);
    return queue !== undefined && !isReplyQueue(queue)
      ? queue
      : remoteReplyQueue(subject);
  }

  /** Replies to this pool's requests, and NATS's "no responders". */
  async #subscribeReplies(): Promise<void> {
    await this.#publisher.whenUp();
    const connection = this.#publisher.connection;
    if (this.#closed || connection === undefined) return;
    connection.subscribe(`${this.#replyPrefix}>`, {
      callback: (error, msg) => {
        if (error !== null) return;
        const id = Number(msg.subject.slice(this.#replyPrefix.length));
        const address: ReplyAddress = {
          index: this.#parts.index,
          incarnation: this.#parts.incarnation,
          id,
        };
        if (msg.headers !== undefined && msg.headers.code !== 0) {
          if (msg.headers.code === 503) {
            this.#parts.reply(address, { kind: "no-responders" });
          }
          return;
        }
        const message = this.#read(msg, `reply://${this.#parts.index}`);
        if (message !== undefined) {
          this.#parts.reply(address, { kind: "reply", data: message.data });
        }
      },
    });
  }

  // ---- stopping ----------------------------------------------------------

  /**
   * Stops: waits (up to `closeTimeout`) for the server to confirm what the
   * pool published (connecting first, when a pool stops before its first
   * connection is up), then drains both connections. Returns what the
   * server never confirmed, per queue.
   */
  async close(): Promise<Array<{ queue: string; count: number }>> {
    if (this.#closed) return [];
    const deadline = Date.now() + this.#parts.settings.closeTimeout;
    while (this.#pending.length > 0) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      if (!this.#publisher.up) {
        // Once up, what is pending is sent again (see the `up` event).
        const up = await withTimeout(this.#publisher.whenUp(), left)
          .then(() => this.#publisher.up, () => false);
        if (!up) break;
      }
      const flushed = await withTimeout(this.#publisher.flush(), left).catch(
        () => false,
      );
      if (!flushed) break;
      // That flush came back after everything sent before it.
      this.#confirm(this.#seq);
    }
    this.#closed = true;
    const left = Math.max(100, deadline - Date.now());
    await Promise.all([
      this.#publisher.close(true, left),
      this.#groups.close(true, left),
    ]);
    const unsent = new Map<string, number>();
    for (const outgoing of this.#pending) {
      if (outgoing.subject === "") continue;
      unsent.set(outgoing.queue, (unsent.get(outgoing.queue) ?? 0) + 1);
    }
    this.#pending = [];
    this.#room?.resolve();
    return [...unsent].map(([queue, count]) => ({ queue, count }));
  }

  #reportOnce(key: string, line: string): void {
    if (this.#reported.has(key) || this.#reported.size >= REPORTED_LIMIT) {
      return;
    }
    this.#reported.add(key);
    this.#parts.log.warn(line);
  }
}

/** One NATS subscription per pattern, and per pattern and group. */
function interestKey(queue: string, group: string | undefined): string {
  return group === undefined ? queue : groupKeyOf(queue, group);
}

const encoder = new TextEncoder();

/** A group's NATS queue name: white space and `%` escaped as in subjects. */
function groupName(group: string): string {
  return group.replace(
    /[\s%]/gu,
    (c) =>
      [...encoder.encode(c)].map((b) =>
        `%${b.toString(16).toUpperCase().padStart(2, "0")}`
      ).join(""),
  );
}

/**
 * Whether `msg` has a reply subject. `msg.reply` decodes it with a
 * `TextDecoder` on every message, even an empty one, which cost a third of
 * a subscriber's time here; the client's (pinned) parsed arguments say it
 * without decoding.
 */
function hasReply(msg: Msg): boolean {
  const parsed = (msg as unknown as { _msg?: { reply?: Uint8Array } })._msg;
  if (parsed === undefined) return msg.reply !== "";
  return parsed.reply !== undefined && parsed.reply.length > 0;
}
