/**
 * A durable consumer's position, kept in one small file: each save appends
 * a framed record `[floor, ...acknowledged above the floor]` (float64s), and
 * the last whole record wins when the file is read again, so a torn save
 * falls back to the one before. Past 64 KiB the file is rewritten with the
 * last state only (a temporary file renamed over it).
 *
 * Saves are written (they survive a killed process) but not synced one by
 * one: after a power loss a consumer may see again messages it had
 * acknowledged (at least once still holds). `close()` syncs.
 *
 * @module
 */
import { frame, scan } from "./record.ts";

const REWRITE_BYTES = 64 * 1024;

/** A consumer's position: everything before `floor` is acknowledged, and `acked` above it. */
export interface AckState {
  floor: number;
  acked: number[];
}

/**
 * The file of one consumer's position.
 *
 * @example
 * ```ts
 * import { AckFile } from "./ack_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const file = await AckFile.open(`${dir}/c.ack`);
 * assert.equal(file.loaded, undefined);
 * await file.save({ floor: 5, acked: [7] });
 * await file.close();
 * const again = await AckFile.open(`${dir}/c.ack`);
 * assert.deepEqual(again.loaded, { floor: 5, acked: [7] });
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class AckFile {
  readonly path: string;
  /** The state the file held when opened (none for a new consumer). */
  readonly loaded: AckState | undefined;
  #file: Deno.FsFile;
  #size: number;

  private constructor(
    path: string,
    file: Deno.FsFile,
    size: number,
    loaded: AckState | undefined,
  ) {
    this.path = path;
    this.#file = file;
    this.#size = size;
    this.loaded = loaded;
  }

  /** Opens the file at `path` (created when missing) and reads its last state. */
  static async open(path: string): Promise<AckFile> {
    let bytes = new Uint8Array();
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const result = scan(bytes);
    const last = result.records.at(-1);
    let loaded: AckState | undefined;
    if (last !== undefined) {
      const values = new Float64Array(
        last.body.slice().buffer,
        0,
        last.body.length / 8,
      );
      loaded = { floor: values[0]!, acked: [...values.subarray(1)] };
    }
    if (result.torn !== undefined) await Deno.truncate(path, result.end);
    const file = await Deno.open(path, { append: true, create: true });
    return new AckFile(path, file, result.end, loaded);
  }

  /** Records `state`. */
  async save(state: AckState): Promise<void> {
    const values = new Float64Array(1 + state.acked.length);
    values[0] = state.floor;
    values.set(state.acked, 1);
    const bytes = frame(new Uint8Array(values.buffer));
    if (this.#size + bytes.length > REWRITE_BYTES) {
      const temporary = `${this.path}.tmp`;
      await Deno.writeFile(temporary, bytes);
      await Deno.rename(temporary, this.path);
      this.#file.close();
      this.#file = await Deno.open(this.path, { append: true });
      this.#size = bytes.length;
      return;
    }
    let written = 0;
    while (written < bytes.length) {
      written += await this.#file.write(bytes.subarray(written));
    }
    this.#size += bytes.length;
  }

  /** Syncs and closes the file. */
  async close(): Promise<void> {
    await this.#file.syncData();
    this.#file.close();
  }
}
