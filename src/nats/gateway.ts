/**
 * The NATS gateway: the main thread's bridge between this program's pools
 * and every other program on the same NATS server and namespace.
 *
 * It is one more peer on the pools' transport (its index comes after the
 * pools'). Pools hand it every message they publish; it publishes each on
 * the queue's subject, once, on a connection that does not echo (so local
 * subscriptions, served in-process, never get a message twice). For what the
 * pools subscribe to, it holds one NATS subscription per pattern (addressed
 * to exactly the subscriptions with that pattern) and one NATS queue
 * subscription per group, on a second connection that does echo: the server
 * picks each group message's member among all processes, this one included.
 *
 * Nothing the pools hand it is acknowledged before the server has it: a
 * batch is acknowledged once a flush (PING/PONG) after it returns, so while
 * the server is unreachable the pools' links fill up and their publishes
 * wait (see `NatsUnavailableError`); after a reconnect, whatever was not
 * confirmed goes out again, in order.
 *
 * @module
 */
import {
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
} from "@nats-io/transport-node";
import type { SubscriptionEntry } from "../bus/entry.ts";
import {
  isRemoteReply,
  isReplyQueue,
  NO_RESPONDERS_HEADER,
  remoteReplyQueue,
  remoteReplySubject,
} from "../bus/requests.ts";
import { errorMessage } from "../_util/error_text.ts";
import { Scheduler } from "../scheduler.ts";
import { openTransport } from "../transport/open.ts";
import type {
  ReceivedBatch,
  Transport,
  TransportSetup,
  TransportUpdate,
  WireMessage,
} from "../transport/transport.ts";
import type { Logger, Topology, Undelivered } from "../types.ts";
import { NatsLink } from "./connection.ts";
import { decodePayload, encodePayload, ENCODING_HEADER } from "./encoding.ts";
import { type Interest, InterestTable, type PoolTargets } from "./interest.ts";
import type { NatsSettings } from "./options.ts";
import { queueToSubject, subjectToQueue } from "./subject.ts";

/** What the gateway needs from the primary. */
export interface GatewaySettings {
  nats: NatsSettings;
  /** The gateway's index on the transport (the number of pools). */
  index: number;
  /** The pools' names, by index. */
  pools: readonly string[];
  log: Logger;
}

/** A NATS subscription the gateway holds, and what arrived on it. */
interface Held {
  interest: Interest;
  subject: string;
  unsubscribe(): void;
  received: number;
}

/** A batch from a pool, waiting for the server to confirm it. */
interface Pending {
  batch: ReceivedBatch;
  seq: number;
}

/** Different subjects whose name did not decode, reported once each (bounded). */
const REPORTED_LIMIT = 1000;

/** The main thread's bridge between the pools and NATS. */
export class NatsGateway {
  /** The gateway's index on the transport. */
  readonly index: number;
  #settings: GatewaySettings;
  #namespace: string;
  #log: Logger;
  #scheduler = new Scheduler();
  #transport: Transport | undefined;
  #interest = new InterestTable();
  #held = new Map<string, Held>();
  /** Publishes, replies, and subscriptions outside groups; no echo. */
  #publisher: NatsLink;
  /** The groups' queue subscriptions; echo, so this process is a candidate. */
  #groups: NatsLink;
  /** Batches received from pools, in order, not confirmed by the server. */
  #pending: Pending[] = [];
  /** How many of `#pending` went out on the current connection. */
  #sent = 0;
  #seq = 0;
  /** Bumped when the connection is lost: older flushes confirm nothing. */
  #generation = 0;
  #replyPrefix: string;
  /** Messages that could not be sent or delivered: queue → count. */
  #lost = new Map<string, number>();
  #reported = new Set<string>();
  #closed = false;

  constructor(settings: GatewaySettings) {
    this.#settings = settings;
    this.index = settings.index;
    this.#namespace = settings.nats.namespace;
    this.#log = settings.log;
    const process = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    this.#replyPrefix = `${this.#namespace}._r.${process}.`;
    this.#publisher = new NatsLink(
      settings.nats,
      settings.log,
      "publish",
      false,
      {
        up: () => this.#pump(),
        down: () => {
          this.#generation++;
          this.#sent = 0;
        },
      },
    );
    this.#groups = new NatsLink(
      settings.nats,
      settings.log,
      "groups",
      true,
      { up: () => {}, down: () => {} },
    );
  }

  /** Opens the gateway's end of the transport (from the hub's setup). */
  open(setup: TransportSetup): void {
    const transport = openTransport(setup, this.index, 1, this.#scheduler);
    transport.onReceive((batch) => this.#receive(batch));
    this.#transport = transport;
  }

  /** Applies a change of peers the hub announces. */
  update(change: TransportUpdate): void {
    this.#transport?.update(change);
  }

  /** Starts connecting; pools may publish meanwhile (their messages wait). */
  start(): void {
    this.#log.info(
      `NATS: joining ${
        this.#settings.nats.servers.join(", ")
      } (namespace "${this.#namespace}")`,
    );
    this.#publisher.start();
    this.#groups.start();
    void this.#subscribeReplies();
  }

  /**
   * Applies a change of the pools' table: opens and closes NATS
   * subscriptions, and resolves once the server has them (waiting through
   * an outage), so a publish from another process after that cannot miss
   * them.
   */
  async applyTable(
    add: readonly SubscriptionEntry[],
    remove: readonly string[],
  ): Promise<void> {
    const change = this.#interest.apply(add, remove);
    if (change.open.length === 0 && change.close.length === 0) return;
    const links = new Set<NatsLink>();
    for (const interest of change.close) {
      const key = interestKey(interest);
      this.#held.get(key)?.unsubscribe();
      this.#held.delete(key);
      links.add(this.#linkOf(interest));
    }
    for (const interest of change.open) {
      const link = this.#linkOf(interest);
      await link.whenUp();
      if (this.#closed) return;
      this.#subscribe(interest, link);
      links.add(link);
    }
    await Promise.all([...links].map((link) => link.flush()));
  }

  /** Resolves once what the gateway sent to pool `to` (or to all) is acknowledged. */
  flush(to?: number): Promise<void> {
    return this.#transport?.flush(to) ?? Promise.resolve();
  }

  /**
   * Whether messages wait in the gateway and can move: for the pools, or
   * for NATS while it is connected (during an outage nothing can, and a
   * stop does not wait for it).
   */
  busy(): boolean {
    return (this.#pending.length > 0 && this.#publisher.up) ||
      (this.#transport?.busy() ?? false);
  }

  /** The NATS subscriptions held, as topology entries of the pool `nats`. */
  topology(): Topology {
    const topology: Topology = {};
    for (const held of this.#held.values()) {
      (topology[held.interest.queue] ??= {}).nats ??= [];
      topology[held.interest.queue]!.nats!.push({
        service: held.subject,
        group: held.interest.group,
        buffered: 0,
        highWater: 0,
        delivered: held.received,
      });
    }
    return topology;
  }

  /**
   * Stops: waits (up to `timeout` ms) for the server to confirm what the
   * pools handed over, drains both connections, and closes the transport.
   * Returns what it could not send or deliver. Call it once the pools have
   * stopped (what they sent and never saw acknowledged, they count).
   */
  async close(timeout: number): Promise<Undelivered[]> {
    if (this.#closed) return [];
    const deadline = Date.now() + timeout;
    while (this.#pending.length > 0 && this.#publisher.up) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.#publisher.flush())) break;
      // The flush resolved the confirmations: go round while more arrive.
      await this.#scheduler.yield();
    }
    this.#closed = true;
    const left = Math.max(100, deadline - Date.now());
    await Promise.all([
      this.#publisher.close(true, left),
      this.#groups.close(true, left),
    ]);
    const undelivered: Undelivered[] = [];
    for (const [queue, count] of this.#lost) {
      undelivered.push({ pool: "nats", queue, count, heldBy: "nats" });
    }
    for (const unsent of await this.#transport?.close() ?? []) {
      undelivered.push({
        pool: this.#settings.pools[unsent.to] ?? String(unsent.to),
        queue: unsent.queue,
        count: unsent.count,
        heldBy: "nats",
      });
    }
    this.#scheduler.close();
    return undelivered;
  }

  // ---- pools → NATS ----------------------------------------------------

  #receive(batch: ReceivedBatch): void {
    if (this.#closed) return;
    this.#pending.push({ batch, seq: ++this.#seq });
    this.#pump();
  }

  /** Publishes what has not gone out on this connection, then flushes. */
  #pump(): void {
    const connection = this.#publisher.connection;
    if (!this.#publisher.up || connection === undefined) return;
    if (this.#sent === this.#pending.length) return;
    while (this.#sent < this.#pending.length) {
      this.#publishBatch(this.#pending[this.#sent++]!.batch);
    }
    const upTo = this.#seq;
    const generation = this.#generation;
    connection.flush().then(() => {
      if (generation === this.#generation) this.#confirm(upTo);
    }, () => {
      // The connection was lost: `down` resets what went out, and the
      // reconnect publishes it again.
    });
  }

  /** The server has everything up to `seq`: the pools get their credit. */
  #confirm(seq: number): void {
    while (this.#pending.length > 0 && this.#pending[0]!.seq <= seq) {
      this.#pending.shift()!.batch.ack();
      this.#sent--;
    }
  }

  #publishBatch(batch: ReceivedBatch): void {
    const connection = this.#publisher.connection!;
    let start = 0;
    for (const { envelope, end } of batch.runs) {
      const { queue, replyTo, headers } = envelope;
      const subject = isRemoteReply(queue)
        ? remoteReplySubject(queue)
        : queueToSubject(queue, this.#namespace);
      const reply = replyTo === undefined
        ? undefined
        : this.#replySubjectOf(replyTo);
      let shared: MsgHdrs | undefined;
      for (let j = start; j < end; j++) {
        try {
          const { payload, encoding } = encodePayload(batch.data[j]);
          let hdrs: MsgHdrs | undefined;
          if (encoding !== "json") {
            hdrs = toNatsHeaders(headers);
            hdrs.set(ENCODING_HEADER, encoding);
          } else if (headers !== undefined) {
            hdrs = shared ??= toNatsHeaders(headers);
          }
          if (reply === undefined && hdrs === undefined) {
            connection.publish(subject, payload);
          } else connection.publish(subject, payload, { reply, headers: hdrs });
        } catch (error) {
          this.#lose(
            queue,
            `NATS refused a message on "${queue}": ${errorMessage(error)}`,
          );
        }
      }
      start = end;
    }
  }

  /** The NATS subject a `replyTo` queue is answered on. */
  #replySubjectOf(replyTo: string): string {
    if (isRemoteReply(replyTo)) return remoteReplySubject(replyTo);
    if (isReplyQueue(replyTo)) {
      // reply://<pool>/<incarnation>/<id>: this process's reply subject.
      return this.#replyPrefix +
        replyTo.slice("reply://".length).replaceAll("/", ".");
    }
    return queueToSubject(replyTo, this.#namespace);
  }

  // ---- NATS → pools ----------------------------------------------------

  #linkOf(interest: Interest): NatsLink {
    return interest.group === undefined ? this.#publisher : this.#groups;
  }

  #subscribe(interest: Interest, link: NatsLink): void {
    const subject = queueToSubject(interest.queue, this.#namespace);
    const { queue, group } = interest;
    const held: Held = {
      interest,
      subject,
      unsubscribe: () => {},
      received: 0,
    };
    const subscription = link.connection!.subscribe(subject, {
      queue: group === undefined ? undefined : groupName(group),
      callback: (error, msg) => {
        if (error !== null) {
          this.#log.error(
            `NATS: the subscription to "${subject}" failed: ${
              errorMessage(error)
            }`,
          );
          return;
        }
        held.received++;
        if (group === undefined) {
          this.#deliver(msg, this.#interest.fanout(queue));
        } else {
          const member = this.#interest.member(queue, group);
          if (member !== undefined) this.#deliver(msg, [member]);
          else {
            this.#lose(
              msg.subject,
              `No member of group "${group}" is left in this process for a message on "${msg.subject}"; it is not delivered`,
            );
          }
        }
      },
    });
    held.unsubscribe = () => subscription.unsubscribe();
    this.#held.set(interestKey(interest), held);
  }

  /** Hands a message from NATS to the named subscriptions of each pool. */
  #deliver(msg: Msg, targets: readonly PoolTargets[]): void {
    // A status from the server (503 "no responders" to a request whose
    // reply subject one of our subscriptions matches) is not a message.
    if (targets.length === 0 || isStatus(msg)) return;
    const queue = subjectToQueue(msg.subject, this.#namespace);
    if (queue === undefined) {
      this.#reportOnce(
        msg.subject,
        `NATS subject "${msg.subject}" is not a queue name; its message is dropped`,
      );
      return;
    }
    const message = this.#fromNats(msg, queue);
    if (message === undefined) return;
    for (const { pool, members } of targets) {
      this.#transport!.send([pool], { ...message, members, membersOnly: true });
    }
  }

  /** The message on `queue` a pool gets for `msg`, or `undefined` if unreadable. */
  #fromNats(msg: Msg, queue: string): WireMessage | undefined {
    let data: unknown;
    let headers: Record<string, string> | undefined;
    let encoding: string | undefined;
    try {
      if (msg.headers !== undefined) {
        for (const key of msg.headers.keys()) {
          if (key === ENCODING_HEADER) encoding = msg.headers.get(key);
          else (headers ??= {})[key] = msg.headers.get(key);
        }
      }
      data = decodePayload(msg.data, encoding);
    } catch (error) {
      this.#lose(
        queue,
        `A message on "${queue}" from NATS cannot be read: ${
          errorMessage(error)
        }`,
      );
      return undefined;
    }
    const message: WireMessage = {
      queue,
      data,
      service: "",
      publishedAt: Date.now(),
      origin: this.index,
      size: msg.data.length,
    };
    if (msg.reply !== undefined && msg.reply !== "") {
      message.replyTo = this.#replyQueueOf(msg.reply);
    }
    if (headers !== undefined) message.headers = headers;
    return message;
  }

  /** The queue a NATS reply subject is answered on, from a pool. */
  #replyQueueOf(subject: string): string {
    if (subject.startsWith(this.#replyPrefix)) {
      return `reply://${
        subject.slice(this.#replyPrefix.length).replaceAll(".", "/")
      }`;
    }
    const queue = subjectToQueue(subject, this.#namespace);
    return queue !== undefined && !isReplyQueue(queue)
      ? queue
      : remoteReplyQueue(subject);
  }

  /** Replies to this process's requests, and NATS's "no responders". */
  async #subscribeReplies(): Promise<void> {
    await this.#publisher.whenUp();
    if (this.#closed) return;
    this.#publisher.connection!.subscribe(`${this.#replyPrefix}>`, {
      callback: (error, msg) => {
        if (error !== null) return;
        const address = msg.subject.slice(this.#replyPrefix.length).split(".");
        const pool = Number(address[0]);
        const queue = `reply://${address.join("/")}`;
        if (isStatus(msg)) {
          if (msg.headers?.code !== 503) return;
          this.#transport!.send([pool], {
            queue,
            data: null,
            service: "",
            publishedAt: Date.now(),
            headers: { [NO_RESPONDERS_HEADER]: "503" },
            origin: this.index,
            size: 0,
          });
          return;
        }
        const message = this.#fromNats(msg, queue);
        if (message !== undefined) this.#transport!.send([pool], message);
      },
    });
  }

  #lose(queue: string, line: string): void {
    this.#lost.set(queue, (this.#lost.get(queue) ?? 0) + 1);
    this.#reportOnce(queue, line);
  }

  #reportOnce(key: string, line: string): void {
    if (this.#reported.has(key) || this.#reported.size >= REPORTED_LIMIT) {
      return;
    }
    this.#reported.add(key);
    this.#log.warn(line);
  }
}

/** Whether `msg` is a status of the server (it has a code), not a message. */
function isStatus(msg: Msg): boolean {
  return msg.headers !== undefined && msg.headers.code !== 0;
}

function interestKey(interest: Interest): string {
  return interest.group === undefined
    ? interest.queue
    : `${interest.queue}\u0000${interest.group}`;
}

/** A group's NATS queue name: white space and `%` escaped as in subjects. */
function groupName(group: string): string {
  return group.replace(
    /[\s%]/gu,
    (c) =>
      [...new TextEncoder().encode(c)].map((b) =>
        `%${b.toString(16).toUpperCase().padStart(2, "0")}`
      ).join(""),
  );
}

function toNatsHeaders(
  headers: Readonly<Record<string, string>> | undefined,
): MsgHdrs {
  const hdrs = natsHeaders();
  if (headers !== undefined) {
    for (const key in headers) hdrs.set(key, headers[key]!);
  }
  return hdrs;
}
