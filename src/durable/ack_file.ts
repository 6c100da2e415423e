/**
 * A durable consumer's position, kept in one small file: each save appends
 * a framed record of float64s, `[-2, floor, delivered, count of acked,
 * ...acknowledged above the floor, ...(seq, attempts) of each message
 * delivered more than once and not settled]` (a record of an earlier
 * version, `[floor, ...acknowledged]`, still reads, as nothing delivered),
 * and the last whole record wins when the file is read again, so a torn save
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

/** The first value of a record of this version (an older one starts with its floor, never negative). */
const VERSION_2 = -2;

/**
 * A consumer's position: everything before `floor` is acknowledged, and
 * `acked` above it; every message before `delivered` was delivered at least
 * once, and `attempts` lists those (not yet settled) delivered more often.
 */
export interface AckState {
  floor: number;
  acked: number[];
  /** Every message before it was delivered at least once. */
  delivered: number;
  /** `[seq, deliveries]` of unsettled messages delivered twice or more. */
  attempts: Array<[number, number]>;
}

/** The state a record's float64s hold. */
function decode(values: Float64Array): AckState {
  if (values[0]! !== VERSION_2) {
    const floor = values[0]!;
    return {
      floor,
      acked: [...values.subarray(1)],
      delivered: floor,
      attempts: [],
    };
  }
  const acked = 4 + values[3]!;
  const attempts: Array<[number, number]> = [];
  for (let i = acked; i + 1 < values.length; i += 2) {
    attempts.push([values[i]!, values[i + 1]!]);
  }
  return {
    floor: values[1]!,
    delivered: values[2]!,
    acked: [...values.subarray(4, acked)],
    attempts,
  };
}

/** The float64s of `state`'s record. */
function encode(state: AckState): Float64Array {
  const values = new Float64Array(
    4 + state.acked.length + 2 * state.attempts.length,
  );
  values[0] = VERSION_2;
  values[1] = state.floor;
  values[2] = state.delivered;
  values[3] = state.acked.length;
  values.set(state.acked, 4);
  let i = 4 + state.acked.length;
  for (const [seq, deliveries] of state.attempts) {
    values[i++] = seq;
    values[i++] = deliveries;
  }
  return values;
}

/**
 * The file of one consumer's position.
 *
 * @example
 * ```ts
 * import { AckFile, type AckState } from "./ack_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const file = await AckFile.open(`${dir}/c.ack`);
 * assert.equal(file.loaded, undefined);
 * const state: AckState = {
 *   floor: 5,
 *   acked: [7],
 *   delivered: 9,
 *   attempts: [[6, 2]],
 * };
 * await file.save(state);
 * await file.close();
 * const again = await AckFile.open(`${dir}/c.ack`);
 * assert.deepEqual(again.loaded, state);
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
      loaded = decode(
        new Float64Array(last.body.slice().buffer, 0, last.body.length / 8),
      );
    }
    if (result.torn !== undefined) await Deno.truncate(path, result.end);
    const file = await Deno.open(path, { append: true, create: true });
    return new AckFile(path, file, result.end, loaded);
  }

  /** Records `state`. */
  async save(state: AckState): Promise<void> {
    const bytes = frame(new Uint8Array(encode(state).buffer));
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
