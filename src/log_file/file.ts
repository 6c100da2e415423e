/**
 * The file side of the log-file service: appends whole lines to a file,
 * rotating it at a size limit without ever splitting a line.
 *
 * @module
 */

import { errorMessage } from "../_util/error_text.ts";

/** Byte value of `\n`. A UTF-8 multi-byte sequence never contains it. */
const NEWLINE = 0x0a;

/** A failed append: `written` bytes (whole lines) went in before it. */
export class LogFileWriteError extends Error {
  /** Bytes from the start of the append that are in the file: whole lines. */
  readonly written: number;

  constructor(message: string, written: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "LogFileWriteError";
    this.written = written;
  }
}

/** How {@linkcode LogFile} rotates and syncs. */
export interface LogFileSettings {
  /** Rotate before a write would make the file larger than this (`Infinity`: never). */
  maxBytes: number;
  /** Rotated files kept: `<path>.1` (newest) … `<path>.<keep>`. */
  keep: number;
  /** `syncData()` after each append. */
  fsync: boolean;
  /**
   * Called when a rotation fails (a rename refused, the folder unreadable):
   * the file stays as it is and is written on; the next attempt comes once
   * it has grown by another `maxBytes`.
   */
  onRotationError?: (error: Error) => void;
}

/**
 * An open log file. `append` takes bytes made of whole lines (each ending
 * with `\n`) and writes them in as few `write` calls as rotation allows;
 * the file never holds part of a line (after a short write it is truncated
 * back to its last whole line). Not safe for concurrent `append` calls: the
 * service runs one at a time.
 */
export class LogFile {
  /** The file's path, as given. */
  readonly path: string;
  /** The file's size now, in bytes (whole lines only). */
  size: number;
  /** Rotations done since the file was opened. */
  rotations = 0;

  /** Closed between a rotation and the reopening that follows it. */
  #file: Deno.FsFile | undefined;
  /** Part of a line past `size` that a truncate could not remove yet. */
  #torn = false;
  /** Rotate before the file grows past this: `maxBytes`, more after a failed rotation. */
  #limit: number;
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
    this.#limit = settings.maxBytes;
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
   *
   * @throws {LogFileWriteError} When a write fails (a full disk, …): its
   * `written` bytes of `bytes`, whole lines, are in the file; the rest is not.
   */
  async append(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    try {
      await this.#ready();
      while (offset < bytes.length) {
        const room = this.#limit - this.size;
        let end = offset + cutPoint(bytes, offset, room);
        if (end === offset && this.size > 0 && await this.#rotate()) continue;
        // Alone in a fresh file (or the rotation failed) and still too
        // long: write it whole.
        if (end === offset) {
          end = bytes.indexOf(NEWLINE, offset) + 1 || bytes.length;
        }
        await this.#write(bytes.subarray(offset, end));
        offset = end;
      }
      if (this.#settings.fsync) await this.#file?.syncData();
    } catch (error) {
      const failure = error instanceof ShortWrite ? error : undefined;
      throw new LogFileWriteError(
        `Cannot write to log file "${this.path}": ${
          errorMessage(failure?.cause ?? error)
        }`,
        offset + (failure?.whole ?? 0),
        { cause: failure?.cause ?? error },
      );
    }
  }

  /** Closes the file (after a last `syncData()` when `fsync` is on). */
  async close(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    if (file === undefined) return;
    try {
      if (this.#settings.fsync) await file.syncData();
    } finally {
      file.close();
    }
  }

  /** Reopens the file after a failed reopening; removes a torn line at its end. */
  async #ready(): Promise<void> {
    if (this.#file === undefined) await this.#reopen();
    if (this.#torn) {
      await this.#file!.truncate(this.size);
      this.#torn = false;
    }
  }

  /**
   * Writes `chunk` (whole lines). On failure, truncates the file back to
   * the last whole line written and throws a {@linkcode ShortWrite}.
   */
  async #write(chunk: Uint8Array): Promise<void> {
    const file = this.#file!;
    let written = 0;
    try {
      while (written < chunk.length) {
        written += await file.write(chunk.subarray(written));
      }
      this.size += chunk.length;
    } catch (error) {
      const whole = written === 0
        ? 0
        : chunk.lastIndexOf(NEWLINE, written - 1) + 1;
      this.size += whole;
      if (whole < written) {
        try {
          await file.truncate(this.size);
        } catch {
          this.#torn = true; // removed before the next write (#ready)
        }
      }
      throw new ShortWrite(whole, error);
    }
  }

  /**
   * `<path>.i` → `<path>.i+1` for the rotated files that exist (one folder
   * listing), `<path>` → `<path>.1`, reopen. A failure leaves the file in
   * place, reopened, and puts the next attempt one `maxBytes` further.
   *
   * @returns Whether the file was rotated.
   */
  async #rotate(): Promise<boolean> {
    const { fsync, maxBytes, onRotationError } = this.#settings;
    if (fsync) await this.#file!.syncData();
    this.#file!.close();
    this.#file = undefined;
    let rotated = false;
    try {
      await this.#shift();
      this.#limit = maxBytes;
      this.rotations++;
      rotated = true;
    } catch (error) {
      this.#limit = this.size + maxBytes;
      onRotationError?.(
        new Error(
          `Cannot rotate log file "${this.path}": ${errorMessage(error)}`,
          { cause: error },
        ),
      );
    }
    await this.#reopen();
    return rotated;
  }

  async #shift(): Promise<void> {
    const { keep } = this.#settings;
    if (keep === 0) {
      await Deno.remove(this.path).catch(ignoreNotFound);
      return;
    }
    for (const index of await rotatedBelow(this.path, keep)) {
      await Deno.rename(`${this.path}.${index}`, `${this.path}.${index + 1}`)
        .catch(ignoreNotFound);
    }
    await Deno.rename(this.path, `${this.path}.1`).catch(ignoreNotFound);
  }

  async #reopen(): Promise<void> {
    const file = await openForAppend(this.path);
    try {
      this.size = (await file.stat()).size;
    } catch (error) {
      file.close();
      throw error;
    }
    this.#file = file;
  }
}

/**
 * The indexes `i < keep` of the rotated files `<path>.<i>` that exist (not
 * folders), from the highest down: one listing of the folder, whatever
 * `keep` is.
 */
export async function rotatedBelow(
  path: string,
  keep: number,
): Promise<number[]> {
  const cut = Deno.build.os === "windows"
    ? Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"))
    : path.lastIndexOf("/");
  const folder = cut === -1 ? "." : path.slice(0, cut + 1);
  const prefix = `${path.slice(cut + 1)}.`;
  const found: number[] = [];
  for await (const entry of Deno.readDir(folder)) {
    // A folder of that name is no rotated file: moving it along would hide
    // it (and the rename onto it below fails, as it should).
    if (entry.isDirectory || !entry.name.startsWith(prefix)) continue;
    const suffix = entry.name.slice(prefix.length);
    if (!/^[1-9][0-9]*$/.test(suffix)) continue;
    const index = Number(suffix);
    if (index < keep) found.push(index);
  }
  return found.sort((a, b) => b - a);
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

function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}

/** A write that failed after `whole` bytes of whole lines went in. */
class ShortWrite extends Error {
  constructor(readonly whole: number, cause: unknown) {
    super("short write", { cause });
  }
}
