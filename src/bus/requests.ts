import { NoRespondersError, QueueNameError, TimeoutError } from "../errors.ts";
import {
  REMOTE_REPLY,
  REPLY_ADDRESS,
  REPLY_SCHEME,
  replyQueue,
} from "../transport/reply_queue.ts";

import type { ReplyAddress } from "../transport/reply_queue.ts";

/** What a request does when NATS says nobody there answers it. */
export interface RequestOpenOptions {
  /**
   * `"fail"`: reject with a `NoRespondersError` (nothing in this process
   * could answer either); `"ignore"` (default): a responder in this process
   * answers.
   */
  noResponders?: "fail" | "ignore";
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
  /** The queue of the request. */
  queue: string;
  /** Whether a "no responders" verdict from NATS fails the request. */
  failsWithoutResponders: boolean;
}

/**
 * Refuses a `reply://` name that no request could have made: subscribing to
 * `reply://` is refused, so publishing on a made-up one must be too (it
 * went nowhere, silently). A well-formed reply queue is accepted; a reply
 * that comes after its request timed out is still dropped quietly.
 *
 * @param queue A queue name already validated for `publish`.
 * @throws {QueueNameError} When `queue` is a `reply://` name that is not the
 * `replyTo` of a request.
 *
 * @example Refuse a made-up reply queue
 * ```ts
 * import { checkReplyQueue } from "./requests.ts";
 * import assert from "node:assert/strict";
 *
 * checkReplyQueue("reply://0/1/42");
 * checkReplyQueue("reply://nats/_INBOX.abc");
 * checkReplyQueue("q://orders");
 * assert.throws(() => checkReplyQueue("reply://bogus"), {
 *   name: "QueueNameError",
 *   message:
 *     'Invalid queue name "reply://bogus": reply:// is reserved for replies; publish on the meta.replyTo of a request',
 * });
 * ```
 */
export function checkReplyQueue(queue: string): void {
  if (
    !queue.startsWith(REPLY_SCHEME) || REPLY_ADDRESS.test(queue) ||
    REMOTE_REPLY.test(queue)
  ) {
    return;
  }
  throw new QueueNameError(
    queue,
    "reply:// is reserved for replies; publish on the meta.replyTo of a request",
  );
}

/**
 * The requests of one pool waiting for their reply. Each gets its own reply
 * queue, routed by the bus to this pool (and this incarnation of it) alone.
 */
export class Requests {
  #index: number;
  #incarnation: number;
  #pending = new Map<number, Pending>();
  #next = 0;

  constructor(index: number, incarnation: number) {
    this.#index = index;
    this.#incarnation = incarnation;
  }

  /**
   * Opens a request: its `replyTo`, the promise of the reply (rejected with a
   * `TimeoutError` after `timeout` ms), and `cancel` for a failed publish.
   * With `noResponders: "fail"`, a "no responders" verdict of NATS (see
   * {@linkcode Requests.noResponders}) rejects it with a `NoRespondersError`;
   * otherwise the verdict is ignored (a responder in this process answers).
   */
  open(queue: string, timeout: number, options: RequestOpenOptions = {}): {
    replyTo: string;
    reply: Promise<unknown>;
    cancel(): void;
  } {
    const id = ++this.#next;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const timer = setTimeout(() => {
      this.#pending.delete(id);
      reject(new TimeoutError(`No reply on "${queue}" within ${timeout} ms`));
    }, timeout);
    this.#pending.set(id, {
      resolve,
      reject,
      timer,
      queue,
      failsWithoutResponders: options.noResponders === "fail",
    });
    return {
      replyTo: replyQueue({
        index: this.#index,
        incarnation: this.#incarnation,
        id,
      }),
      reply: promise,
      cancel: () => {
        clearTimeout(timer);
        this.#pending.delete(id);
      },
    };
  }

  /** Whether a reply to `address` is for this pool as it is now. */
  isMine(address: ReplyAddress): boolean {
    return address.index === this.#index &&
      address.incarnation === this.#incarnation;
  }

  /** Settles the request at `address` with `data` (the first reply wins). */
  resolve(address: ReplyAddress, data: unknown): void {
    if (!this.isMine(address)) return;
    const request = this.#pending.get(address.id);
    if (request === undefined) return;
    this.#pending.delete(address.id);
    clearTimeout(request.timer);
    request.resolve(data);
  }

  /**
   * NATS found no responder for the request at `address`: fails it with a
   * `NoRespondersError` when nothing in this process could answer either.
   */
  noResponders(address: ReplyAddress): void {
    if (!this.isMine(address)) return;
    const request = this.#pending.get(address.id);
    if (request === undefined || !request.failsWithoutResponders) return;
    this.#pending.delete(address.id);
    clearTimeout(request.timer);
    request.reject(new NoRespondersError(request.queue));
  }

  /** Fails every open request with `error(id)`. */
  rejectAll(error: (id: number) => Error): void {
    for (const [id, request] of this.#pending) {
      clearTimeout(request.timer);
      request.reject(error(id));
    }
    this.#pending.clear();
  }
}
