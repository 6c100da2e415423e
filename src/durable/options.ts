/**
 * The `durable` option of `main.run()` and its environment variables,
 * checked once into {@linkcode DurableSettings}.
 *
 * @module
 */
import { validateQueueName } from "../queue_name.ts";
import { checkDuration } from "../_util/duration.ts";
import { readEnv } from "../_util/env.ts";
import { deadLetterQueue, patternsOverlap } from "./patterns.ts";

/**
 * Durable queues: at-least-once delivery that survives a crash, on a local
 * write-ahead log (see docs/durable.md).
 *
 * @example
 * ```ts
 * import type { DurableOptions } from "@magic/foundation";
 *
 * const durable: DurableOptions = {
 *   queues: ["q://jobs/>"],
 *   directory: "./data/durable",
 *   maxDeliver: 5,
 *   backoff: [100, 1000, 5000],
 * };
 * ```
 */
export interface DurableOptions {
  /**
   * Names or patterns of the durable queues (each a stream). Default:
   * `MAGIC_FOUNDATION_DURABLE` (comma-separated).
   */
  queues?: readonly string[];
  /**
   * Where the log is kept. Default: `MAGIC_FOUNDATION_DURABLE_DIR`, else
   * `.magic-foundation/durable` in the working directory.
   */
  directory?: string;
  /** Deliveries of a message before it moves to its `dlq://` queue. Default 5. */
  maxDeliver?: number;
  /**
   * The wait before redelivery n + 1 is `backoff[n - 1]` (the last entry
   * for later ones), in ms, with jitter: between half and all of it.
   * Default `[100, 1000, 5000]`.
   */
  backoff?: number | readonly number[];
  /**
   * Patterns among `queues` that only groups subscribe to (a subscription
   * without a group is refused). Joined to NATS, their streams use
   * JetStream's work-queue retention: a message is removed once
   * acknowledged. Default none.
   */
  groupOnly?: readonly string[];
  /** How long a publish `id` is remembered for dedupe, in ms. Default 120 000 (2 min, as JetStream). */
  dedupeWindow?: number;
  /**
   * Joined to NATS: how long JetStream waits for a delivered message's
   * acknowledgement before it delivers it again (to another member when its
   * process died), in ms; a running handler's message is kept past it.
   * Default 30 000 (JetStream's).
   */
  ackWait?: number;
  /** A segment file is closed, and a new one begun, past this size, in bytes. Default 8 MiB. */
  segmentBytes?: number;
}

/** The `durable` option, checked, with its defaults. */
export interface DurableSettings {
  /** The streams' patterns: those given, then their `dlq://` queues. */
  streams: string[];
  /** The patterns only groups subscribe to (each one of `streams`). */
  groupOnly: string[];
  directory: string;
  maxDeliver: number;
  backoff: number[];
  dedupeWindow: number;
  /** JetStream's `ack_wait`, in ms. */
  ackWait: number;
  segmentBytes: number;
}

const WHERE = "Cannot run";

/**
 * Checks the `durable` option (or reads the environment when it is not
 * given): `undefined` when no queue is durable.
 *
 * @example
 * ```ts
 * import { resolveDurable } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * const settings = resolveDurable({ queues: ["q://jobs/>"], directory: "/tmp/d" });
 * assert.deepEqual(settings?.streams, ["q://jobs/>", "dlq://q/jobs/>"]);
 * assert.throws(() => resolveDurable({ queues: ["q://a/>", "q://*\/b"] }), {
 *   message: /overlap/,
 * });
 * ```
 */
export function resolveDurable(
  options: DurableOptions | undefined,
): DurableSettings | undefined {
  if (
    options !== undefined && (typeof options !== "object" || options === null)
  ) {
    throw new TypeError(`${WHERE}: durable must be an object`);
  }
  let queues: readonly unknown[] | undefined = options?.queues;
  if (queues === undefined) {
    queues = readEnv("MAGIC_FOUNDATION_DURABLE")?.split(",").map((q) =>
      q.trim()
    ).filter((q) => q !== "");
  }
  if (queues === undefined || queues.length === 0) {
    if (options !== undefined) {
      throw new TypeError(
        `${WHERE}: durable.queues must name at least one queue or pattern (or set MAGIC_FOUNDATION_DURABLE)`,
      );
    }
    return undefined;
  }
  if (!Array.isArray(queues)) {
    throw new TypeError(`${WHERE}: durable.queues must be an array of strings`);
  }
  const streams: string[] = [];
  for (const queue of queues) {
    const name = validateQueueName(queue, "subscribe");
    if (name.startsWith("reply://")) {
      throw new TypeError(
        `${WHERE}: durable queue "${name}" is refused: reply:// is for request/reply`,
      );
    }
    const other = streams.find((s) => patternsOverlap(s, name));
    if (other !== undefined) {
      throw new TypeError(
        `${WHERE}: durable queues "${other}" and "${name}" overlap (a queue must belong to one durable pattern)`,
      );
    }
    streams.push(name);
  }
  for (const stream of [...streams]) {
    if (stream.startsWith("dlq://")) continue;
    const dead = deadLetterQueue(stream);
    if (!streams.some((s) => patternsOverlap(s, dead))) streams.push(dead);
  }
  const groupOnly = [...(options?.groupOnly ?? [])];
  for (const pattern of groupOnly) {
    if (!streams.includes(pattern) || pattern.startsWith("dlq://")) {
      throw new TypeError(
        `${WHERE}: durable.groupOnly "${pattern}" is not one of durable.queues`,
      );
    }
  }
  const directory = options?.directory ??
    readEnv("MAGIC_FOUNDATION_DURABLE_DIR") ?? ".magic-foundation/durable";
  if (typeof directory !== "string" || directory === "") {
    throw new TypeError(
      `${WHERE}: durable.directory must be a non-empty string`,
    );
  }
  const maxDeliver = options?.maxDeliver ?? 5;
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1) {
    throw new RangeError(
      `${WHERE}: durable.maxDeliver must be an integer >= 1, got ${maxDeliver}`,
    );
  }
  const given = options?.backoff ?? [100, 1000, 5000];
  const backoff = typeof given === "number" ? [given] : [...given];
  if (!Array.isArray(backoff) || backoff.length === 0) {
    throw new TypeError(
      `${WHERE}: durable.backoff must be a duration or a non-empty array of them`,
    );
  }
  backoff.forEach((ms, i) =>
    checkDuration(WHERE, `durable.backoff[${i}]`, ms, ">= 0")
  );
  const segmentBytes = options?.segmentBytes ?? 8 * 1024 * 1024;
  if (!Number.isInteger(segmentBytes) || segmentBytes < 1) {
    throw new RangeError(
      `${WHERE}: durable.segmentBytes must be an integer >= 1, got ${segmentBytes}`,
    );
  }
  return {
    streams,
    groupOnly,
    directory,
    maxDeliver,
    backoff,
    dedupeWindow: checkDuration(
      WHERE,
      "durable.dedupeWindow",
      options?.dedupeWindow ?? 120_000,
      ">= 0",
    ),
    ackWait: checkDuration(
      WHERE,
      "durable.ackWait",
      options?.ackWait ?? 30_000,
    ),
    segmentBytes,
  };
}
