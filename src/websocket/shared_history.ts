/**
 * Sessions across servers (`history: "jetstream"`): the history in a log
 * shared by every process of the run, and the session records in a shared
 * table, so a client that reconnects to another process recovers there.
 *
 * - The log (JetStream stream `<namespace>-ws-history-<service>`, limits
 *   retention, max age = `recoveryWindow`, at most `historyMaxMessages` per
 *   queue and `historyMaxTotalBytes` in all) holds every message sent on
 *   `ws://outbound/…`, `ws://room/…` and the service's reply queues; its
 *   sequence is the offset. Every server appends what it receives (so the
 *   log has it as long as one server runs), with an id made from the
 *   message's origin and content (see `AppendIds`); the log's dedupe window
 *   is its max age, so it keeps each message once however far apart the
 *   servers append it, for as long as it keeps the message at all.
 * - Each server follows the log and sends its sessions their messages in
 *   log order (plain connections get them from the bus, as before).
 * - The table (KV bucket `<namespace>-ws-sessions-<service>`, TTL two
 *   windows) holds each session's record: connection id, path, rooms,
 *   `authorize` headers, and when its client was last seen.
 *
 * @module
 */

import { errorMessage } from "../_util/error_text.ts";
import type { MessageMeta } from "../service_context.ts";
import type {
  SharedLog,
  SharedLogEntry,
  SharedStore,
  SharedTable,
} from "../transport/remote.ts";
import type { HistoryCursor } from "./history.ts";
import type { HistoryEntry, HistoryFrame } from "./history_ring.ts";

/** What a server keeps of a session in the shared table. */
export interface SessionRecord {
  connectionId: string;
  path: string;
  replyTo: string;
  /** `authorize`'s headers, as JSON. */
  authorized: string;
  /** Stream → the offset from which the session follows it. */
  follows: Array<[string, number]>;
  /** When its client was last seen connected (ms since the epoch). */
  seen: number;
  /** The server instance that holds it now. */
  owner: string;
}

/** A log entry for the sessions: its offset, stream and frame. */
export interface SharedEntry extends HistoryEntry {
  stream: string;
}

/** How the shared history is bounded (the service's options). */
export interface SharedHistoryLimits {
  window: number;
  maxPerStream: number;
  maxTotalBytes: number;
}

const TEXT = 0;
const BINARY = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The history and the session records of one service, shared. */
export class SharedHistory implements HistoryCursor {
  /** This server instance (owner of the records it writes). */
  readonly owner: string = crypto.randomUUID();
  readonly #log: SharedLog;
  readonly #table: SharedTable;
  readonly #ids: AppendIds;
  /** Appends not yet acknowledged (`stop` waits for them). */
  readonly #appending = new Set<Promise<number>>();
  readonly #follows = new Map<string, number>();
  #last: number;
  #feed: { stop(): Promise<void> } | undefined;

  private constructor(
    log: SharedLog,
    table: SharedTable,
    last: number,
    window: number,
  ) {
    this.#ids = new AppendIds(window);
    this.#log = log;
    this.#table = table;
    this.#last = last;
  }

  /**
   * Opens the log and the table of `service`, and follows the log from its
   * end, calling `each` for every entry (`warn` when it cannot).
   */
  static async open(
    store: SharedStore,
    service: string,
    limits: SharedHistoryLimits,
    each: (entry: SharedEntry) => void,
    warn: (message: string) => void,
  ): Promise<SharedHistory> {
    const [log, table] = await Promise.all([
      store.log({
        name: `ws-history-${service}`,
        // A copy appended by a late server is one the log still dedupes.
        dedupeWindow: limits.window,
        maxAge: limits.window,
        maxPerKey: limits.maxPerStream,
        maxBytes: limits.maxTotalBytes,
      }),
      store.table(`ws-sessions-${service}`, 2 * limits.window),
    ]);
    const { first, last } = await log.bounds();
    const history = new SharedHistory(log, table, last, limits.window);
    // Count alike with the servers that appended what the log holds.
    if (last > 0 && last >= first) {
      try {
        history.#ids.seed(await log.read(first - 1, last));
      } catch (error) {
        warn(
          `Cannot read the history of "${service}" for its append ids (counting from 0): ${
            errorMessage(error)
          }`,
        );
      }
    }
    history.#feed = log.follow(last, ({ seq, key, data }) => {
      if (seq > history.#last) history.#last = seq;
      each({ offset: seq, stream: key, frame: decodeFrame(data) });
    }, (error) =>
      warn(
        `Cannot follow the history of "${service}": ${errorMessage(error)}`,
      ));
    return history;
  }

  /** The offset of the last entry this server knows of. */
  get last(): number {
    return this.#last;
  }

  retain(stream: string): void {
    this.#follows.set(stream, (this.#follows.get(stream) ?? 0) + 1);
  }

  release(stream: string): void {
    const count = this.#follows.get(stream) ?? 0;
    if (count <= 1) this.#follows.delete(stream);
    else this.#follows.set(stream, count - 1);
  }

  /** The streams this server's sessions follow (for stats). */
  get streams(): number {
    return this.#follows.size;
  }

  /** Appends a message the bus delivered (once in the log, whoever appends). */
  append(frame: HistoryFrame, meta: MessageMeta): Promise<number> {
    const appended = this.#log.append(
      meta.queue,
      encodeFrame(frame),
      this.#ids.next(frame, meta),
    );
    this.#appending.add(appended);
    const done = (): boolean => this.#appending.delete(appended);
    appended.then(done, done);
    return appended;
  }

  /** The log's first and last offsets (first > last when empty). */
  bounds(): Promise<{ first: number; last: number }> {
    return this.#log.bounds();
  }

  /** The entries with `after < offset <= until`, in order. */
  async read(after: number, until: number): Promise<SharedEntry[]> {
    const entries = await this.#log.read(after, until);
    return entries.map(({ seq, key, data }) => ({
      offset: seq,
      stream: key,
      frame: decodeFrame(data),
    }));
  }

  /** The record of session `id`, if written within two windows. */
  async record(id: string): Promise<SessionRecord | undefined> {
    const bytes = await this.#table.get(id);
    return bytes === undefined
      ? undefined
      : JSON.parse(decoder.decode(bytes)) as SessionRecord;
  }

  /** Writes the record of session `id`. */
  async write(id: string, record: SessionRecord): Promise<void> {
    await this.#table.put(id, encoder.encode(JSON.stringify(record)));
  }

  /** Deletes the record of session `id`. */
  async forget(id: string): Promise<void> {
    await this.#table.delete(id);
  }

  /** Waits for the appends in flight, then stops following the log. */
  async stop(): Promise<void> {
    await Promise.allSettled(this.#appending);
    await this.#feed?.stop();
  }
}

/**
 * Ids under which every server appends the same message alike, so the log
 * keeps it once: its origin, queue, reply queue and a hash of its frame,
 * and which of the messages alike this is. Every server receives one
 * publisher's messages in the same order, so they count alike; a server
 * that starts later takes the counts from the ids in the log. A count
 * starts again from 0 after two windows without a message alike (the log
 * dedupes over one window, its max age), so an id is never used again
 * while the log may hold it. The counts are kept by a 32-bit hash of the
 * key: two keys that share one count only number their messages higher,
 * alike on every server, and each count is two numbers.
 */
class AppendIds {
  readonly #keep: number;
  readonly #counts = new Map<number, number>();
  /** Hash → when its last message came. */
  readonly #seen = new Map<number, number>();
  #pruned = performance.now();

  /** @param window The log's dedupe window (its max age), in ms. */
  constructor(window: number) {
    this.#keep = 2 * window;
  }

  /**
   * Counts from the ids of `entries` (what the log holds when this server
   * starts), so that a server started after others numbers the next message
   * alike as they do.
   */
  seed(entries: readonly SharedLogEntry[]): void {
    // The entries' times, from the epoch's clock to this one's.
    const skew = performance.now() - Date.now();
    for (const { id, at } of entries) {
      const slash = id?.lastIndexOf("/") ?? -1;
      if (slash < 0) continue;
      const n = Number(id!.slice(slash + 1));
      if (!Number.isSafeInteger(n)) continue;
      const slot = fnv(id!.slice(0, slash));
      this.#counts.set(slot, Math.max(n, this.#counts.get(slot) ?? -1));
      const seen = at === undefined ? performance.now() : at + skew;
      this.#seen.set(slot, Math.max(seen, this.#seen.get(slot) ?? -Infinity));
    }
  }

  next(frame: HistoryFrame, meta: MessageMeta): string {
    const now = performance.now();
    if (now - this.#pruned > this.#keep) {
      for (const [hash, at] of this.#seen) {
        if (now - at <= this.#keep) continue;
        this.#seen.delete(hash);
        this.#counts.delete(hash);
      }
      this.#pruned = now;
    }
    const key = `${meta.from.pool}/${meta.from.service}/${meta.queue}/${
      meta.replyTo ?? ""
    }/${hash(frame)}`;
    const slot = fnv(key);
    const count = this.#counts.get(slot);
    // Idle for two windows: counted again from 0 on every server, whether
    // or not it pruned the count yet.
    const n = count === undefined || now - this.#seen.get(slot)! > this.#keep
      ? 0
      : count + 1;
    this.#counts.set(slot, n);
    this.#seen.set(slot, now);
    return `${key}/${n}`;
  }
}

/** FNV-1a (32 bits) of a string. */
function fnv(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return h >>> 0;
}

/** FNV-1a (32 bits) of a frame, as 8 hex digits, with its length. */
function hash(frame: HistoryFrame): string {
  let h = 0x811c9dc5;
  const length = frame.length;
  if (typeof frame === "string") {
    for (let i = 0; i < length; i++) {
      h = Math.imul(h ^ frame.charCodeAt(i), 0x01000193);
    }
  } else {
    for (let i = 0; i < length; i++) {
      h = Math.imul(h ^ frame[i]!, 0x01000193);
    }
  }
  return `${length}-${(h >>> 0).toString(16)}`;
}

/** A frame as log bytes: one byte of kind (text, binary), then the payload. */
function encodeFrame(frame: HistoryFrame): Uint8Array {
  const payload = typeof frame === "string" ? encoder.encode(frame) : frame;
  const out = new Uint8Array(1 + payload.byteLength);
  out[0] = typeof frame === "string" ? TEXT : BINARY;
  out.set(payload, 1);
  return out;
}

function decodeFrame(data: Uint8Array): HistoryFrame {
  const payload = data.subarray(1);
  return data[0] === BINARY ? payload.slice() : decoder.decode(payload);
}
