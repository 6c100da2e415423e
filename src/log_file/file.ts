/**
 * The file side of the log-file service: appends whole lines to a file,
 * rotating it at a size limit without ever splitting a line.
 *
 * @module
 */

import { errorMessage } from "../_util/error_text.ts";

/** Byte value of `\n`. A UTF-8 multi-byte sequence never contains it. */
const NEWLINE = 0x0a;

/** How {@linkcode LogFile} rotates and syncs. */
export interface LogFileSettings {
  /** Rotate before a write would make the file larger than this (`Infinity`: never). */
  maxBytes: number;
  /** Rotated files kept: `<path>.1` (newest) … `<path>.<keep>`. */
  keep: number;
  /** `syncData()` after each append. */
  fsync: boolean;
}

/**
 * An open log file. `append` takes bytes made of whole lines (each ending
 * with `\n`) and writes them in as few `write` calls as rotation allows.
 * Not safe for concurrent `append` calls: the service runs one at a time.
 */
export class LogFile {
  /** The file's path, as given. */
  readonly path: string;
  /** The file's size now, in bytes. */
  size: number;
  /** Rotations done since the file was opened. */
  rotations = 0;

  #file: Deno.FsFile;
  readonly #settings: LogFileSettings;

  private constructor(
    path: string,
    file: Deno.FsFile,
    size: number,
    settings: LogFileSettings,
  ) {
    this.path = path;
    this.#file = file;
    this.size = size;
    this.#settings = settings;
  }

  /**
   * Opens `path` for appending, creating it (not its folder).
   *
   * @throws {Error} When the file cannot be opened; the message names the path.
   */
  static async open(path: string, settings: LogFileSettings): Promise<LogFile> {
    const file = await openForAppend(path);
    try {
      const { size } = await file.stat();
      return new LogFile(path, file, size, settings);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /**
   * Appends `bytes` (whole lines). When `maxBytes` is set, rotates first
   * whenever the next line would not fit; a line longer than `maxBytes`
   * goes alone into a fresh file.
   */
  async append(bytes: Uint8Array): Promise<void> {
    const { maxBytes } = this.#settings;
    let offset = 0;
    while (offset < bytes.length) {
      const end = offset + cutPoint(bytes, offset, maxBytes - this.size);
      if (end > offset) {
        await writeAll(this.#file, bytes.subarray(offset, end));
        this.size += end - offset;
        offset = end;
      } else if (this.size > 0) {
        await this.#rotate();
      } else {
        // Alone in a fresh file and still too long: write it whole.
        const oversized = bytes.indexOf(NEWLINE, offset) + 1 || bytes.length;
        await writeAll(this.#file, bytes.subarray(offset, oversized));
        this.size += oversized - offset;
        offset = oversized;
      }
    }
    if (this.#settings.fsync) await this.#file.syncData();
  }

  /** Closes the file (after a last `syncData()` when `fsync` is on). */
  async close(): Promise<void> {
    try {
      if (this.#settings.fsync) await this.#file.syncData();
    } finally {
      this.#file.close();
    }
  }

  /** `<path>.i` → `<path>.i+1` down to 1, `<path>` → `<path>.1`, reopen. */
  async #rotate(): Promise<void> {
    if (this.#settings.fsync) await this.#file.syncData();
    this.#file.close();
    const { keep } = this.#settings;
    if (keep === 0) {
      await Deno.remove(this.path).catch(ignoreNotFound);
    } else {
      for (let i = keep - 1; i >= 1; i--) {
        await Deno.rename(`${this.path}.${i}`, `${this.path}.${i + 1}`)
          .catch(ignoreNotFound);
      }
      await Deno.rename(this.path, `${this.path}.1`).catch(ignoreNotFound);
    }
    this.#file = await openForAppend(this.path);
    this.size = 0;
    this.rotations++;
  }
}

/**
 * How many bytes of whole lines, from `offset`, fit in `room` bytes: the
 * length up to and including the last `\n` within the room (0 when not even
 * the first line fits).
 *
 * @example Two lines of 4 bytes, room for 6
 * ```ts
 * import { cutPoint } from "./file.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("aaa\nbbb\n");
 * assert.equal(cutPoint(bytes, 0, 6), 4);
 * assert.equal(cutPoint(bytes, 0, 8), 8);
 * assert.equal(cutPoint(bytes, 4, 3), 0);
 * ```
 */
export function cutPoint(
  bytes: Uint8Array,
  offset: number,
  room: number,
): number {
  if (bytes.length - offset <= room) return bytes.length - offset;
  if (room <= 0) return 0;
  const last = bytes.lastIndexOf(NEWLINE, offset + room - 1);
  return last < offset ? 0 : last + 1 - offset;
}

async function openForAppend(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { append: true, create: true });
  } catch (error) {
    const reason = errorMessage(error);
    throw new Error(`Cannot open log file "${path}": ${reason}`, {
      cause: error,
    });
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await file.write(bytes.subarray(written));
  }
}

function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}
