/**
 * One segment file of a stream: records of consecutive sequence numbers
 * from `firstSeq`, the file named by it (20 digits, `.seg`).
 *
 * @module
 */
import { HEADER_BYTES, scan } from "./record.ts";

/** A torn or corrupt part of a segment that was cut when the log opened. */
export interface CutTail {
  /** The segment file. */
  file: string;
  /** Bytes removed from its end. */
  bytes: number;
  /** What was wrong. */
  reason: string;
}

/** The file name of the segment starting at `firstSeq`. */
export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, "0")}.seg`;
}

/** The first sequence number of a segment file's name, if it is one. */
export function segmentSeq(name: string): number | undefined {
  const match = /^(\d{20})\.seg$/.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/**
 * A segment's records: where each starts in the file, and the file's size.
 * Reads go through one handle, one at a time.
 */
export class Segment {
  readonly path: string;
  readonly firstSeq: number;
  /** The offset of each record; record `firstSeq + i` starts at `offsets[i]`. */
  readonly offsets: number[];
  /** Bytes in the file (or about to be, for appends not yet written). */
  size: number;
  #reader: Deno.FsFile | undefined;
  #reading: Promise<unknown> = Promise.resolve();

  constructor(path: string, firstSeq: number, offsets: number[], size: number) {
    this.path = path;
    this.firstSeq = firstSeq;
    this.offsets = offsets;
    this.size = size;
  }

  /**
   * Opens the segment at `path`: reads every record, and cuts a torn or
   * corrupt tail (the file is truncated there), which it returns.
   */
  static async open(
    path: string,
    firstSeq: number,
  ): Promise<
    { segment: Segment; cut: CutTail | undefined; bodies: Uint8Array[] }
  > {
    const bytes = await Deno.readFile(path);
    const result = scan(bytes);
    let cut: CutTail | undefined;
    if (result.torn !== undefined) {
      await Deno.truncate(path, result.end);
      cut = {
        file: path,
        bytes: bytes.length - result.end,
        reason: result.torn,
      };
    }
    const segment = new Segment(
      path,
      firstSeq,
      result.records.map((record) => record.offset),
      result.end,
    );
    return { segment, cut, bodies: result.records.map((r) => r.body) };
  }

  /** Records in the segment. */
  get count(): number {
    return this.offsets.length;
  }

  /** The sequence number after the segment's last record. */
  get endSeq(): number {
    return this.firstSeq + this.offsets.length;
  }

  /** Notes a record of `bytes` bytes appended at the end; returns its offset. */
  add(bytes: number): number {
    const offset = this.size;
    this.offsets.push(offset);
    this.size += bytes;
    return offset;
  }

  /**
   * The bodies of records `from` to `to` (exclusive), which must be written:
   * one read of the file.
   */
  read(from: number, to: number): Promise<Uint8Array[]> {
    const run = this.#reading.then(() => this.#read(from, to));
    this.#reading = run.catch(() => {});
    return run;
  }

  async #read(from: number, to: number): Promise<Uint8Array[]> {
    const first = from - this.firstSeq;
    const last = to - this.firstSeq;
    const start = this.offsets[first]!;
    const end = last < this.offsets.length ? this.offsets[last]! : this.size;
    const buffer = new Uint8Array(end - start);
    this.#reader ??= await Deno.open(this.path, { read: true });
    await this.#reader.seek(start, Deno.SeekMode.Start);
    let filled = 0;
    while (filled < buffer.length) {
      const n = await this.#reader.read(buffer.subarray(filled));
      if (n === null) {
        throw new Error(`Cannot read "${this.path}": it ended early`);
      }
      filled += n;
    }
    const result = scan(buffer);
    if (result.torn !== undefined || result.records.length !== last - first) {
      throw new Error(
        `Cannot read "${this.path}" at ${start}: ${
          result.torn ?? "records missing"
        }`,
      );
    }
    return result.records.map((record) => record.body);
  }

  /** Closes its read handle. */
  async close(): Promise<void> {
    await this.#reading;
    this.#reader?.close();
    this.#reader = undefined;
  }
}

/** Bytes of a record with a body of `body` bytes. */
export function recordBytes(body: number): number {
  return HEADER_BYTES + body;
}
