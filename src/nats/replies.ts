/**
 * Reply subjects: how a pool's `replyTo` becomes a NATS reply subject and
 * back, and the subscription that takes the replies to its requests.
 *
 * A request of pool `i` (incarnation `n`) of process `p` has the reply
 * subject `<namespace>._r.<p>.<i>.<n>.<id>`; a reply subject no process of
 * the namespace made (`_INBOX.…`) is a plain NATS client's, answered as
 * `reply://nats/<subject>`.
 *
 * @module
 */
import type { NatsConnection } from "./client.ts";
import {
  isRemoteReply,
  isReplyQueue,
  remoteReplyQueue,
  remoteReplySubject,
  REPLY_SCHEME,
  type ReplyAddress,
  replyQueue,
} from "../transport/reply_queue.ts";
import type { RemoteReply } from "../transport/remote.ts";
import { fromOf, readMessage } from "./arrival.ts";
import { queueToSubject, subjectToQueue } from "./subject.ts";

/** The reply subjects of one pool. */
export class ReplySubjects {
  /** The root of every magic-foundation reply subject of the namespace. */
  readonly root: string;
  #namespace: string;
  #processPrefix: string;
  #poolPrefix: string;
  #index: number;
  #incarnation: number;

  constructor(
    namespace: string,
    processId: string,
    index: number,
    incarnation: number,
  ) {
    this.#namespace = namespace;
    this.root = `${namespace}._r.`;
    this.#processPrefix = `${this.root}${processId}.`;
    this.#poolPrefix = `${this.#processPrefix}${index}.${incarnation}.`;
    this.#index = index;
    this.#incarnation = incarnation;
  }

  /** Whether `subject` was made by a process of the namespace. */
  ours(subject: string): boolean {
    return subject.startsWith(this.root);
  }

  /** The NATS reply subject of a `replyTo` queue. */
  subjectOf(replyTo: string): string {
    if (isRemoteReply(replyTo)) return remoteReplySubject(replyTo);
    if (isReplyQueue(replyTo)) {
      // A request of a pool of this process: that pool's reply subjects.
      // `reply://<index>/<incarnation>/<id>` (digits only, checked when
      // published) becomes `<index>.<incarnation>.<id>`.
      return this.#processPrefix +
        replyTo.slice(REPLY_SCHEME.length).replaceAll("/", ".");
    }
    return queueToSubject(replyTo, this.#namespace);
  }

  /** The queue a NATS reply subject is answered on, from this process. */
  queueOf(subject: string): string {
    if (subject.startsWith(this.#processPrefix)) {
      const [index, incarnation, id] = subject
        .slice(this.#processPrefix.length).split(".").map(Number);
      return replyQueue({ index: index!, incarnation: incarnation!, id: id! });
    }
    // Another process's: never a queue's subject (no scheme starts with
    // "_"), and one per request, so not worth decoding or caching.
    if (this.ours(subject)) return remoteReplyQueue(subject);
    const queue = subjectToQueue(subject, this.#namespace);
    return queue !== undefined && !isReplyQueue(queue)
      ? queue
      : remoteReplyQueue(subject);
  }

  /**
   * Subscribes to this pool's reply subjects on `connection`: each reply
   * (or the server's 503 "no responders") goes to `reply`; one that cannot
   * be read goes to `unreadable`.
   */
  subscribe(
    connection: NatsConnection,
    reply: (address: ReplyAddress, reply: RemoteReply) => void,
    unreadable: (error: unknown) => void,
  ): void {
    const prefix = this.#poolPrefix;
    connection.subscribe(`${prefix}>`, {
      callback: (error, msg) => {
        if (error !== null) return;
        const address: ReplyAddress = {
          index: this.#index,
          incarnation: this.#incarnation,
          id: Number(msg.subject.slice(prefix.length)),
        };
        if (msg.headers !== undefined && msg.headers.code !== 0) {
          if (msg.headers.code === 503) {
            reply(address, { kind: "no-responders" });
          }
          return;
        }
        let data: unknown;
        try {
          data = readMessage(msg, fromOf(msg).payload).data;
        } catch (error) {
          unreadable(error);
          return;
        }
        reply(address, { kind: "reply", data });
      },
    });
  }
}
