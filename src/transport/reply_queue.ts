/**
 * How reply queues are named: `reply://<pool>/<incarnation>/<id>` for a
 * request of a pool of this process, `reply://nats/<subject>` for one made
 * in another process. The bus and every carrier read them the same way.
 *
 * @module
 */

/** The scheme of every reply queue. */
export const REPLY_SCHEME = "reply://";
/** A reply queue of a request of a pool of this process. */
export const REPLY_ADDRESS =
  /^reply:\/\/(?:0|[1-9][0-9]*)\/(?:0|[1-9][0-9]*)\/(?:0|[1-9][0-9]*)$/;
/** The prefix of a reply queue of a request made in another process. */
const REMOTE_REPLY_PREFIX = "reply://nats/";
/** A reply queue of a request made in another process (over NATS). */
export const REMOTE_REPLY = /^reply:\/\/nats\/[^\s]+$/;

/**
 * A request of a pool of this process, which its reply queue
 * `reply://<pool index>/<incarnation>/<id>` names: made into a queue name by
 * {@linkcode replyQueue} and read back by {@linkcode replyAddress} only.
 */
export interface ReplyAddress {
  /** The requesting pool's index. */
  readonly index: number;
  /** Its incarnation (a reply to an earlier one is dropped). */
  readonly incarnation: number;
  /** The request's number in that incarnation. */
  readonly id: number;
}

/** Whether `queue` is a reply queue (the reserved `reply://` scheme). */
export function isReplyQueue(queue: string): boolean {
  return queue.startsWith(REPLY_SCHEME);
}

/**
 * Whether reply queue `queue` belongs to a request made in another process
 * (`reply://nats/<subject>`): the pool publishes the reply there over NATS.
 */
export function isRemoteReply(queue: string): boolean {
  return queue.startsWith(REMOTE_REPLY_PREFIX);
}

/** The reply queue for a NATS reply subject of another process. */
export function remoteReplyQueue(subject: string): string {
  return REMOTE_REPLY_PREFIX + subject;
}

/** The NATS subject of a reply queue made by {@linkcode remoteReplyQueue}. */
export function remoteReplySubject(queue: string): string {
  return queue.slice(REMOTE_REPLY_PREFIX.length);
}

/** The reply queue of the request at `address` (its `meta.replyTo`). */
export function replyQueue(address: ReplyAddress): string {
  return `${REPLY_SCHEME}${address.index}/${address.incarnation}/${address.id}`;
}

/** The address a reply queue made by {@linkcode replyQueue} names. */
export function replyAddress(queue: string): ReplyAddress {
  const [index, incarnation, id] = queue.slice(REPLY_SCHEME.length).split("/")
    .map(Number);
  return { index: index!, incarnation: incarnation!, id: id! };
}
