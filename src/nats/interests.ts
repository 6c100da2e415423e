/**
 * A pool's NATS subscriptions: one per pattern its services subscribe to
 * (a message goes to exactly the subscriptions with that pattern, so
 * overlapping patterns do not double it), and one NATS queue subscription
 * per pattern and group, on the connection that echoes, so the server picks
 * each group message's pool among every pool of every process.
 *
 * @module
 */
import type { Msg } from "./client.ts";
import { errorMessage } from "../_util/error_text.ts";
import { isPattern } from "../queue_name.ts";
import type { RemoteInterest } from "../transport/remote.ts";
import type { Logger } from "../logger.ts";
import type { Topology } from "../service_context.ts";
import type { NatsLink } from "./connection.ts";
import { queueToSubject } from "./subject.ts";

/** One NATS subscription and the subscriptions of the pool behind it. */
export interface HeldInterest {
  /** The pattern, or pattern and group. */
  readonly interest: RemoteInterest;
  readonly subject: string;
  /**
   * The queue of every message on it when its pattern is a plain queue
   * name (no subject to decode per message); `undefined` for a wildcard.
   */
  readonly queue: string | undefined;
  /** The pool's subscriptions behind it. */
  count: number;
  /** Messages that arrived on it. */
  received: number;
  /** Resolves once the server has it; `false` if it never will. */
  ready: Promise<boolean>;
  cancel(): void;
}

/** What the interests work with. */
export interface InterestParts {
  namespace: string;
  /** Where subscriptions outside groups live (no echo). */
  plain: NatsLink;
  /** Where group subscriptions live (echo). */
  groups: NatsLink;
  log: Logger;
  /** Takes each message that arrives on an interest's subscription. */
  receive(held: HeldInterest, msg: Msg): void;
}

/** The pool's NATS subscriptions, counted per interest. */
export class NatsInterests {
  #parts: InterestParts;
  #held = new Map<string, HeldInterest>();

  constructor(parts: InterestParts) {
    this.#parts = parts;
  }

  /** Adds one subscription's interest; resolves once in force on the server. */
  add(interest: RemoteInterest): Promise<boolean> {
    const key = interestKey(interest);
    let held = this.#held.get(key);
    if (held === undefined) {
      held = this.#open(interest);
      this.#held.set(key, held);
    }
    held.count++;
    return held.ready;
  }

  /** Removes one; the last of its interest closes the NATS subscription. */
  remove(interest: RemoteInterest): void {
    const key = interestKey(interest);
    const held = this.#held.get(key);
    if (held === undefined || --held.count > 0) return;
    this.#held.delete(key);
    held.cancel();
  }

  /** The NATS subscriptions, as topology entries of the pool `nats`. */
  topology(): Topology {
    const topology: Topology = {};
    for (const held of this.#held.values()) {
      ((topology[held.interest.pattern] ??= {}).nats ??= []).push({
        service: held.subject,
        group: held.interest.group,
        buffered: 0,
        highWater: 0,
        delivered: held.received,
      });
    }
    return topology;
  }

  #open(interest: RemoteInterest): HeldInterest {
    const { group } = interest;
    const link = group === undefined ? this.#parts.plain : this.#parts.groups;
    let closed = false;
    const held: HeldInterest = {
      interest,
      subject: queueToSubject(interest.pattern, this.#parts.namespace),
      queue: isPattern(interest.pattern) ? undefined : interest.pattern,
      count: 0,
      received: 0,
      ready: Promise.resolve(false),
      cancel: () => {
        closed = true;
      },
    };
    held.ready = (async () => {
      await link.whenUp();
      // Not in force on the server, and it never will be.
      if (link.refusal !== undefined) throw link.refusal;
      if (closed || link.connection === undefined) return false;
      const subscription = link.connection.subscribe(held.subject, {
        queue: group === undefined ? undefined : groupName(group),
        callback: (error, msg) => {
          if (error === null) this.#parts.receive(held, msg);
          else {
            this.#parts.log.error(
              `NATS: the subscription to "${held.subject}" failed: ${
                errorMessage(error)
              }`,
            );
          }
        },
      });
      held.cancel = () => subscription.unsubscribe();
      return await link.flush();
    })();
    return held;
  }
}

/** One NATS subscription per pattern, and per pattern and group. */
function interestKey({ pattern, group }: RemoteInterest): string {
  return group === undefined ? pattern : `${pattern}\u0000${group}`;
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
