/**
 * The local log's record format: `[length u32][crc32 u32][body]`, little
 * endian, where the CRC-32 (zlib's) covers the body. A record whose header or
 * body is cut short, or whose checksum does not match, ends the readable
 * part of a file: what follows is a torn tail (a crash mid-write) and is cut.
 *
 * @module
 */
import { crc32 } from "node:zlib";

/** Bytes before a record's body. */
export const HEADER_BYTES = 8;
/** The largest body accepted (a longer length field is a torn header). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Frames `body` as one record.
 *
 * @example
 * ```ts
 * import { frame, scan } from "./record.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = frame(new Uint8Array([1, 2, 3]));
 * assert.equal(bytes.length, 11);
 * assert.deepEqual(scan(bytes).records.map((r) => [...r.body]), [[1, 2, 3]]);
 * ```
 */
export function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length, true);
  view.setUint32(4, crc32(body), true);
  out.set(body, HEADER_BYTES);
  return out;
}

/** One record found by {@linkcode scan}. */
export interface ScannedRecord {
  /** Where the record starts in the scanned bytes. */
  offset: number;
  /** Its body (a view into the scanned bytes). */
  body: Uint8Array;
}

/** What {@linkcode scan} found. */
export interface ScanResult {
  records: ScannedRecord[];
  /** Where the readable part ends: the file's length when nothing is torn. */
  end: number;
  /** Why reading stopped before the end, when it did. */
  torn?: string | undefined;
}

/**
 * Reads every whole, checksum-valid record of `bytes` from the start; stops
 * at the first torn or corrupt one.
 *
 * @example A torn tail is not read
 * ```ts
 * import { frame, scan } from "./record.ts";
 * import assert from "node:assert/strict";
 *
 * const one = frame(new Uint8Array([1]));
 * const two = frame(new Uint8Array([2, 2]));
 * const bytes = new Uint8Array([...one, ...two.subarray(0, 9)]);
 * const result = scan(bytes);
 * assert.equal(result.records.length, 1);
 * assert.equal(result.end, one.length);
 * assert.match(result.torn ?? "", /cut short/);
 * ```
 */
export function scan(bytes: Uint8Array): ScanResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: ScannedRecord[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < HEADER_BYTES) {
      return { records, end: offset, torn: "a record header is cut short" };
    }
    const length = view.getUint32(offset, true);
    const sum = view.getUint32(offset + 4, true);
    const start = offset + HEADER_BYTES;
    if (length > MAX_BODY_BYTES || start + length > bytes.length) {
      return { records, end: offset, torn: "a record body is cut short" };
    }
    const body = bytes.subarray(start, start + length);
    if (crc32(body) !== sum) {
      return { records, end: offset, torn: "a record's checksum is wrong" };
    }
    records.push({ offset, body });
    offset = start + length;
  }
  return { records, end: offset };
}
