/**
 * The local log of one durable stream: append-only segment files in one
 * directory, one writer (this object), appends made durable with one
 * `fdatasync` for every batch of concurrent appends (group commit).
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { HEADER_BYTES } from "./record.ts";
import { bodyId, stampMessage } from "./message.ts";
import { type CutTail, Segment, segmentName, segmentSeq } from "./segment.ts";

/** An append waiting for its write and sync. */
interface PendingWrite {
  segment: Segment;
  body: Uint8Array;
  seq: number;
  done: () => void;
  failed: (error: Error) => void;
}

/** A stored record: its sequence number and its body (`decodeMessage` reads it). */
export interface StoredRecord {
  seq: number;
  body: Uint8Array;
}

/** A recent message's publish id, for the dedupe window. */
export interface RecentId {
  id: string;
  storedAt: number;
}

/** Options of {@linkcode StreamLog.open}. */
export interface StreamLogOptions {
  /** A segment is closed, and a new one started, past this size. */
  segmentBytes: number;
  /** Messages stored this recently (ms) are returned by `open` for dedupe. */
  recentWindow: number;
}

/**
 * A stream's segment files: `append` stores messages, `read` reads them back
 * by sequence number, `removeBefore` deletes whole segments consumers are
 * past.
 *
 * @example
 * ```ts
 * import { StreamLog } from "./stream_log.ts";
 * import assert from "node:assert/strict";
 *
 * import { decodeMessage, encodeOutgoing } from "./message.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const log = await StreamLog.open(dir, { segmentBytes: 1 << 20, recentWindow: 0 });
 * const { body } = encodeOutgoing({ queue: "q://a", pool: "p", service: "S", publishedAt: 1, data: "x" });
 * await log.append([body], Date.now());
 * const [record] = await log.read(1, 10);
 * assert.equal(decodeMessage(record!.body).data, "x");
 * await log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class StreamLog {
  readonly directory: string;
  /** Tails cut when the log opened (torn by a crash, or corrupt). */
  readonly cut: readonly CutTail[];
  /** Ids of messages stored within `recentWindow` before the log opened, oldest first. */
  readonly recent: readonly RecentId[];
  #options: StreamLogOptions;
  #segments: Segment[];
  #nextSeq: number;
  /** Every message before this one is written and synced. */
  #syncedSeq: number;
  #writer: Deno.FsFile | undefined;
  #writerSegment: Segment | undefined;
  #pending: PendingWrite[] = [];
  #flushing: Promise<void> | undefined;
  #failure: Error | undefined;
  /** `fdatasync` calls so far: one per batch of concurrent appends. */
  syncs = 0;
  /** Called after each sync, once messages before `syncedSeq` are stored. */
  onSynced: () => void = () => {};

  private constructor(
    directory: string,
    options: StreamLogOptions,
    segments: Segment[],
    cut: CutTail[],
    recent: RecentId[],
  ) {
    this.directory = directory;
    this.#options = options;
    this.#segments = segments;
    this.cut = cut;
    this.recent = recent;
    this.#nextSeq = segments.at(-1)?.endSeq ?? 1;
    this.#syncedSeq = this.#nextSeq;
  }

  /** Opens (or creates) the log in `directory`, cutting torn tails. */
  static async open(
    directory: string,
    options: StreamLogOptions,
  ): Promise<StreamLog> {
    await Deno.mkdir(directory, { recursive: true });
    const names: Array<[number, string]> = [];
    for await (const entry of Deno.readDir(directory)) {
      const seq = entry.isFile ? segmentSeq(entry.name) : undefined;
      if (seq !== undefined) names.push([seq, entry.name]);
    }
    names.sort((a, b) => a[0] - b[0]);
    const segments: Segment[] = [];
    const cut: CutTail[] = [];
    const bodies: Uint8Array[][] = [];
    for (const [seq, name] of names) {
      const opened = await Segment.open(`${directory}/${name}`, seq);
      segments.push(opened.segment);
      bodies.push(opened.bodies);
      if (opened.cut !== undefined) cut.push(opened.cut);
    }
    // The newest messages' ids, back to the window's start.
    const recent: RecentId[] = [];
    const since = Date.now() - options.recentWindow;
    if (options.recentWindow > 0) {
      outer: for (let s = bodies.length - 1; s >= 0; s--) {
        for (let i = bodies[s]!.length - 1; i >= 0; i--) {
          const { id, storedAt } = bodyId(bodies[s]![i]!);
          if (storedAt < since) break outer;
          if (id !== undefined) recent.push({ id, storedAt });
        }
      }
    }
    return new StreamLog(directory, options, segments, cut, recent.reverse());
  }

  /** The first sequence number still stored (`nextSeq` when none is). */
  get firstSeq(): number {
    return this.#segments[0]?.firstSeq ?? this.#nextSeq;
  }

  /** The sequence number the next append gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Messages before this one are stored (written and synced) and may be read. */
  get syncedSeq(): number {
    return this.#syncedSeq;
  }

  /** Segment files on disk. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  /**
   * Appends record bodies (`encodeOutgoing`'s), stamping each with its `seq`
   * (given here, in order) and `storedAt`; resolves once they are written
   * and synced to disk. Appends made while a sync runs share the next one.
   */
  append(bodies: Uint8Array[], storedAt: number): Promise<number[]> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (bodies.length === 0) return Promise.resolve([]);
    const seqs: number[] = [];
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    for (const [i, body] of bodies.entries()) {
      const seq = this.#nextSeq++;
      stampMessage(body, seq, storedAt);
      const segment = this.#segmentFor(seq);
      segment.add(HEADER_BYTES + body.length);
      seqs.push(seq);
      this.#pending.push({
        segment,
        body,
        seq,
        // The last of them settles the promise (they are written in order).
        done: i === bodies.length - 1 ? resolve : () => {},
        failed: reject,
      });
    }
    // Started a microtask later, so the appends of this turn (a pool's
    // publishes arrive together) share the first write and sync.
    this.#flushing ??= Promise.resolve().then(() => this.#flush());
    return promise.then(() => seqs);
  }

  /** The segment `seq` goes into: the last, or a new one once it is full. */
  #segmentFor(seq: number): Segment {
    const last = this.#segments.at(-1);
    if (
      last !== undefined &&
      (last.size < this.#options.segmentBytes || last.count === 0)
    ) {
      return last;
    }
    const segment = new Segment(
      `${this.directory}/${segmentName(seq)}`,
      seq,
      [],
      0,
    );
    this.#segments.push(segment);
    return segment;
  }

  /** Writes and syncs what is pending, batch after batch. */
  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        try {
          let start = 0;
          while (start < batch.length) {
            const segment = batch[start]!.segment;
            let end = start;
            while (end < batch.length && batch[end]!.segment === segment) end++;
            await this.#write(segment, batch.slice(start, end));
            start = end;
          }
        } catch (error) {
          this.#failure = new Error(
            `Cannot store on "${this.directory}": ${String(error)}`,
            { cause: error },
          );
          for (const write of [...batch, ...this.#pending]) {
            write.failed(this.#failure);
          }
          this.#pending = [];
          return;
        }
        this.#syncedSeq = batch.at(-1)!.seq + 1;
        for (const write of batch) write.done();
        this.onSynced();
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #write(segment: Segment, writes: PendingWrite[]): Promise<void> {
    if (this.#writerSegment !== segment) {
      if (this.#writer !== undefined) {
        await this.#writer.syncData();
        this.#writer.close();
      }
      this.#writer = await Deno.open(segment.path, {
        append: true,
        create: true,
      });
      this.#writerSegment = segment;
    }
    const writer = this.#writer!;
    let length = 0;
    for (const write of writes) length += HEADER_BYTES + write.body.length;
    const bytes = new Uint8Array(length);
    const view = new DataView(bytes.buffer);
    let offset = 0;
    for (const { body } of writes) {
      view.setUint32(offset, body.length, true);
      view.setUint32(offset + 4, crc32(body), true);
      bytes.set(body, offset + HEADER_BYTES);
      offset += HEADER_BYTES + body.length;
    }
    let written = 0;
    while (written < bytes.length) {
      written += await writer.write(bytes.subarray(written));
    }
    await writer.syncData();
    this.syncs++;
  }

  /** Stored records from `from`, at most `max`, in order (gaps skipped). */
  async read(from: number, max: number): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    let seq = Math.max(from, this.firstSeq);
    for (const segment of this.#segments) {
      if (out.length >= max || seq >= this.#syncedSeq) break;
      if (segment.endSeq <= seq) continue;
      seq = Math.max(seq, segment.firstSeq);
      const to = Math.min(
        segment.endSeq,
        this.#syncedSeq,
        seq + max - out.length,
      );
      if (to <= seq) continue;
      for (const body of await segment.read(seq, to)) {
        out.push({ seq: seq++, body });
      }
      seq = to;
    }
    return out;
  }

  /**
   * Deletes the segments whose every message comes before `seq` (never the
   * one being written); returns how many.
   */
  async removeBefore(seq: number): Promise<number> {
    let removed = 0;
    while (
      this.#segments.length > 1 && this.#segments[0]!.endSeq <= seq
    ) {
      const segment = this.#segments.shift()!;
      await segment.close();
      await Deno.remove(segment.path);
      removed++;
    }
    return removed;
  }

  /** Waits for pending appends, then closes every file. */
  async close(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
    this.#writer?.close();
    this.#writer = undefined;
    for (const segment of this.#segments) await segment.close();
  }
}
