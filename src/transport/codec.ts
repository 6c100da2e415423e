import type { Envelope, Run, WireMessage } from "./transport.ts";

/**
 * A batch of messages as it goes on the wire, by columns. V8's serializer
 * writes every string and every object key anew, so a batch of envelope
 * objects costs about 3× a batch of the bare data. Queue and service names go
 * once per batch, and messages that share a queue, a service and a
 * millisecond go as one run, so a flood on one queue costs little more than
 * its data. Only plain arrays of small integers: a typed array costs a fresh
 * `ArrayBuffer` on every receive, which took 30% off a channel's throughput
 * here.
 */
export interface EncodedBatch extends EncodedRuns {
  /** Per message: the data. */
  data: unknown[];
}

/** A batch's envelopes, by columns (see {@linkcode EncodedBatch}). */
export interface EncodedRuns {
  /** The distinct (queue, service) pairs: `[queue, service, …]`. */
  names: string[];
  /** The first message's `publishedAt`. */
  base: number;
  /** Runs: `[length, pair index, publishedAt - base, …]`. */
  runs: number[];
  /**
   * Runs with more fields (`replyTo`, `headers`, `to`, `reply`):
   * `[position of the run's first message, fields, …]`. Consecutive
   * messages share such a run only when each field is the same value (the
   * same object, for `headers`, `to` and `reply`).
   */
  extras?: unknown[];
  /** Batches of the other direction this one acknowledges (port links). */
  acks?: number;
}

type Extras = Pick<WireMessage, "replyTo" | "headers" | "to" | "reply">;

/** Whether two messages' extra fields are the same values. */
function sameExtras(a: Extras, b: Extras): boolean {
  return a.replyTo === b.replyTo && a.headers === b.headers &&
    a.to === b.to && a.reply === b.reply;
}

function extrasOf(message: WireMessage): Extras | undefined {
  const { replyTo, headers, to, reply } = message;
  if (
    replyTo === undefined && headers === undefined && to === undefined &&
    reply === undefined
  ) return undefined;
  const extras: Extras = {};
  // Absent keys, not `undefined` ones: every key costs on the wire.
  if (replyTo !== undefined) extras.replyTo = replyTo;
  if (headers !== undefined) extras.headers = headers;
  if (to !== undefined) extras.to = to;
  if (reply !== undefined) extras.reply = reply;
  return extras;
}

/**
 * Lays `messages[start..end)` out by columns.
 *
 * @example Round trip
 * ```ts
 * import { decodeBatch, encodeBatch } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const message = { queue: "q://a", data: 1, service: "S", publishedAt: 5, size: 8 };
 * const batch = encodeBatch([message, { ...message, data: 2 }]);
 * assert.deepEqual(batch.runs, [2, 0, 0]);
 * const { runs } = decodeBatch(batch);
 * assert.deepEqual(runs, [{ envelope: { queue: "q://a", service: "S", publishedAt: 5 }, end: 2 }]);
 *
 * // Messages with the same extra fields (the same headers object) share a run.
 * const headers = { connection: "c1" };
 * const framed = encodeBatch([{ ...message, headers }, { ...message, headers }]);
 * assert.deepEqual(framed.runs, [2, 0, 0]);
 * assert.equal(decodeBatch(framed).runs[0]!.envelope.headers, headers);
 * ```
 */
export function encodeBatch(
  messages: readonly WireMessage[],
  start = 0,
  end: number = messages.length,
): EncodedBatch {
  const data: unknown[] = [];
  for (let j = start; j < end; j++) data.push(messages[j]!.data);
  return { ...encodeRuns(messages, start, end), data };
}

/**
 * Lays out the envelopes of `messages[start..end)` by columns (their data
 * travels apart).
 *
 * @example See {@linkcode encodeBatch}.
 */
export function encodeRuns(
  messages: readonly WireMessage[],
  start = 0,
  end: number = messages.length,
): EncodedRuns {
  const names: string[] = [];
  const known = new Map<string, Map<string, number>>();
  const runs: number[] = [];
  const base = end > start ? messages[start]!.publishedAt : 0;
  let extras: unknown[] | undefined;
  let lastQueue: string | undefined;
  let lastService: string | undefined;
  let lastPair = 0;
  let lastTime = NaN;
  // Where the open run's length is in `runs`, or -1 when none may grow.
  let open = -1;
  // The open run's first message (its extra fields are the run's).
  let first: WireMessage | undefined;
  for (let j = start; j < end; j++) {
    const message = messages[j]!;
    if (message.queue !== lastQueue || message.service !== lastService) {
      let services = known.get(message.queue);
      if (services === undefined) {
        known.set(message.queue, services = new Map());
      }
      let pair = services.get(message.service);
      if (pair === undefined) {
        pair = names.length / 2;
        names.push(message.queue, message.service);
        services.set(message.service, pair);
      }
      lastQueue = message.queue;
      lastService = message.service;
      lastPair = pair;
      open = -1;
    }
    if (
      open >= 0 && message.publishedAt === lastTime &&
      sameExtras(first!, message)
    ) {
      (runs[open] as number)++;
      continue;
    }
    open = runs.length;
    first = message;
    lastTime = message.publishedAt;
    runs.push(1, lastPair, message.publishedAt - base);
    const more = extrasOf(message);
    if (more !== undefined) (extras ??= []).push(j - start, more);
  }
  const batch: EncodedRuns = { names, base, runs };
  if (extras !== undefined) batch.extras = extras;
  return batch;
}

/**
 * The data and runs of an encoded batch.
 *
 * @example See {@linkcode encodeBatch}.
 */
export function decodeBatch(
  batch: EncodedBatch,
): { data: unknown[]; runs: Run[] } {
  return { data: batch.data, runs: decodeRuns(batch) };
}

/**
 * The runs of a batch's envelope columns.
 *
 * @example See {@linkcode encodeBatch}.
 */
export function decodeRuns(batch: EncodedRuns): Run[] {
  const { names, base, runs: columns, extras } = batch;
  const runs: Run[] = [];
  let end = 0;
  let extra = 0;
  for (let i = 0; i < columns.length; i += 3) {
    end += columns[i]!;
    const pair = 2 * columns[i + 1]!;
    const envelope: Envelope = {
      queue: names[pair]!,
      service: names[pair + 1]!,
      publishedAt: base + columns[i + 2]!,
    };
    if (extras !== undefined && extras[extra] === end - columns[i]!) {
      Object.assign(envelope, extras[extra + 1]);
      extra += 2;
    }
    runs.push({ envelope, end });
  }
  return runs;
}

/**
 * Calls `count(queue, n)` for each run of a batch: how many of its messages
 * went to which queue, read from the columns alone (no data decoded).
 *
 * @example
 * ```ts
 * import { countRuns, encodeBatch } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const m = { queue: "q://a", data: 1, service: "S", publishedAt: 5, size: 8 };
 * const seen: Array<[string, number]> = [];
 * countRuns(encodeBatch([m, m]), (queue, n) => seen.push([queue, n]));
 * assert.deepEqual(seen, [["q://a", 2]]);
 * ```
 */
export function countRuns(
  batch: Pick<EncodedBatch, "names" | "runs">,
  count: (queue: string, n: number) => void,
): void {
  const { names, runs } = batch;
  for (let r = 0; r < runs.length; r += 3) {
    count(names[2 * runs[r + 1]!]!, runs[r]!);
  }
}
