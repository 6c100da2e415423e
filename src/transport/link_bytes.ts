import { BESIDE } from "./data_tags.ts";
import type { DataEncoder } from "./data_encoder.ts";

/** A message's data sent as a structured clone, beside a batch's bytes. */
export class Cloned {
  /** The clone (`structuredClone` of the published data). */
  readonly value: unknown;

  /** @param value The clone. */
  constructor(value: unknown) {
    this.value = value;
  }
}

/**
 * The bytes a link has queued for its peer, message after message: each
 * message's encoded data, preceded by the shapes the peer has not been told
 * yet, or one tag byte for a message sent as a clone; long strings and
 * clones wait beside the bytes, in order. {@linkcode LinkBytes.take} cuts the next messages off as one
 * batch, in a buffer of their own that the port sends (and transfers when it
 * is large).
 *
 * Offsets are counted from the link's first byte, so that the buffer can be
 * compacted under them.
 *
 * @example
 * ```ts
 * import { DataDecoder } from "./data_decoder.ts";
 * import { DataEncoder } from "./data_encoder.ts";
 * import { Cloned, LinkBytes } from "./link_bytes.ts";
 * import assert from "node:assert/strict";
 *
 * const encoder = new DataEncoder();
 * const queue = new LinkBytes();
 * encoder.encode({ a: 1 });
 * queue.push(encoder);
 * queue.push(new Cloned(new Date(0)));
 * const { bytes, beside } = queue.take(2);
 * const data = new DataDecoder().decode(new Uint8Array(bytes), 2, beside ?? []);
 * assert.deepEqual(data, [{ a: 1 }, new Date(0)]);
 * ```
 */
export class LinkBytes {
  #buffer = new Uint8Array(16 * 1024);
  /** The offset of `#buffer[0]`. */
  #base = 0;
  /** The offset of the first byte not taken. */
  #start = 0;
  /** The offset after the last byte. */
  #end = 0;
  /** Per message not taken: its end offset, and the end of its values beside. */
  #ends: number[] = [];
  #endsHead = 0;
  /** Values beside the bytes: long strings, clones of whole messages. */
  #beside: unknown[] = [];
  /** The count of `#beside[0]`, and of the first value not taken. */
  #besideBase = 0;
  #besideStart = 0;
  /** Shapes of the encoder the peer has been told. */
  #knownShapes = 0;

  /** Queues the encoder's last message, or a clone. */
  push(data: DataEncoder | Cloned): void {
    if (data instanceof Cloned) {
      this.#reserve(1);
      this.#buffer[this.#end++ - this.#base] = BESIDE;
      this.#beside.push(data.value);
    } else {
      if (data.shapes > this.#knownShapes) {
        const shapes = data.shapesSince(this.#knownShapes);
        this.#knownShapes = data.shapes;
        this.#reserve(shapes.length);
        this.#buffer.set(shapes, this.#end - this.#base);
        this.#end += shapes.length;
      }
      this.#reserve(data.length);
      data.copyTo(this.#buffer, this.#end - this.#base);
      this.#end += data.length;
      const beside = data.beside;
      for (let i = 0; i < beside.length; i++) this.#beside.push(beside[i]);
    }
    this.#ends.push(this.#end, this.#besideBase + this.#beside.length);
  }

  /** Takes the next `count` messages: their bytes and values beside, in order. */
  take(count: number): { bytes: ArrayBuffer; beside?: unknown[] } {
    const last = this.#endsHead + 2 * (count - 1);
    const end = this.#ends[last]!;
    const besideEnd = this.#ends[last + 1]!;
    this.#endsHead = last + 2;
    const bytes = this.#buffer.slice(
      this.#start - this.#base,
      end - this.#base,
    ).buffer;
    this.#start = end;
    // Values beside are counted from the link's first, like bytes.
    let beside: unknown[] | undefined;
    if (besideEnd > this.#besideStart) {
      beside = this.#beside.slice(
        this.#besideStart - this.#besideBase,
        besideEnd - this.#besideBase,
      );
      this.#besideStart = besideEnd;
    }
    if (this.#endsHead === this.#ends.length) {
      this.#ends = [];
      this.#endsHead = 0;
      // Drained: start again at the front of the buffer.
      this.#base = this.#start = this.#end;
      this.#beside = [];
      this.#besideBase = this.#besideStart;
    } else if (this.#endsHead >= 2048) {
      this.#ends = this.#ends.slice(this.#endsHead);
      this.#endsHead = 0;
      this.#beside = this.#beside.slice(this.#besideStart - this.#besideBase);
      this.#besideBase = this.#besideStart;
    }
    return beside === undefined ? { bytes } : { bytes, beside };
  }

  /** Forgets everything queued (the link closed). */
  clear(): void {
    this.#ends = [];
    this.#endsHead = 0;
    this.#beside = [];
    this.#besideBase = this.#besideStart = 0;
    this.#base = this.#start = this.#end;
  }

  /** Makes room for `bytes` more at the end. */
  #reserve(bytes: number): void {
    const used = this.#end - this.#base;
    if (used + bytes <= this.#buffer.length) return;
    const live = this.#end - this.#start;
    let size = this.#buffer.length;
    while (live + bytes > size) size *= 2;
    // Compact into the same buffer when the taken front frees enough room.
    const target = size === this.#buffer.length
      ? this.#buffer
      : new Uint8Array(size);
    if (target === this.#buffer) {
      target.copyWithin(0, this.#start - this.#base, used);
    } else {
      target.set(this.#buffer.subarray(this.#start - this.#base, used));
    }
    this.#buffer = target;
    this.#base = this.#start;
  }
}
