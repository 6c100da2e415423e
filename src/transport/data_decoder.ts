/**
 * Reads what a peer's `DataEncoder` wrote (see `data_encoder.ts`).
 *
 * @module
 */
import {
  ARRAY,
  BESIDE,
  BIGINT,
  BYTES,
  END,
  FALSE,
  FLOAT64,
  INLINE_KEYS,
  INT32,
  LATIN1,
  NULL,
  OBJECT,
  SHAPE,
  TRUE,
  UINT8,
  UNDEFINED,
  UTF16,
} from "./data_tags.ts";

/** Uses of a shape before the decoder compiles an object literal for it. */
const COMPILE_AFTER = 8;
const fromCharCode = String.fromCharCode;

/** What a decoder holds between batches. */
const NO_BYTES = new Uint8Array(0);
const NO_VIEW = new DataView(NO_BYTES.buffer);
const NO_VALUES: readonly unknown[] = [];

/** What a decoder knows of one of the peer's shapes. */
interface Shape {
  keys: string[];
  uses: number;
  build: ((decoder: DataDecoder) => Record<string, unknown>) | undefined;
}

/**
 * Reads what a peer's `DataEncoder` wrote: one decoder per link,
 * since it keeps the shapes the peer taught it.
 *
 * @example See `DataEncoder` in `data_encoder.ts`.
 */
export class DataDecoder {
  #shapes: Shape[] = [];
  #bytes: Uint8Array = NO_BYTES;
  #view: DataView = NO_VIEW;
  #at = 0;
  #beside: readonly unknown[] = [];
  #besideAt = 0;

  /**
   * Decodes `count` messages from `bytes` and the values that travelled
   * beside them (`beside`, in order).
   */
  decode(
    bytes: Uint8Array,
    count: number,
    beside: readonly unknown[],
  ): unknown[] {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#at = 0;
    this.#beside = beside;
    this.#besideAt = 0;
    const data: unknown[] = [];
    while (data.length < count) {
      if (bytes[this.#at] === SHAPE) {
        this.#at++;
        this.#shape();
      } else {
        data.push(this.value());
      }
    }
    // Let go of the batch (shared empties: no allocation per batch).
    this.#bytes = NO_BYTES;
    this.#view = NO_VIEW;
    this.#beside = NO_VALUES;
    return data;
  }

  #shape(): void {
    const id = this.#varint();
    const count = this.#varint();
    const keys: string[] = [];
    for (let i = 0; i < count; i++) keys.push(this.value() as string);
    this.#shapes[id] = { keys, uses: 0, build: undefined };
  }

  #varint(): number {
    const bytes = this.#bytes;
    let value = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = bytes[this.#at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  }

  /**
   * The next value (public for the object literals compiled per shape;
   * not meant for other callers).
   */
  value(): unknown {
    const bytes = this.#bytes;
    const tag = bytes[this.#at++];
    switch (tag) {
      case UINT8:
        return bytes[this.#at++];
      case LATIN1: {
        const length = this.#varint();
        const start = this.#at;
        this.#at += length;
        if (length <= 12) {
          let text = "";
          for (let i = start; i < start + length; i++) {
            text += fromCharCode(bytes[i]!);
          }
          return text;
        }
        return fromCharCode.apply(
          null,
          bytes.subarray(start, start + length) as unknown as number[],
        );
      }
      case OBJECT:
        return this.#object();
      case INT32: {
        const value = this.#view.getInt32(this.#at, true);
        this.#at += 4;
        return value;
      }
      case FLOAT64: {
        const value = this.#view.getFloat64(this.#at, true);
        this.#at += 8;
        return value;
      }
      case UNDEFINED:
        return undefined;
      case NULL:
        return null;
      case FALSE:
        return false;
      case TRUE:
        return true;
      case ARRAY: {
        const length = this.#varint();
        const list: unknown[] = [];
        for (let i = 0; i < length; i++) list.push(this.value());
        return list;
      }
      case BESIDE:
        return this.#beside[this.#besideAt++];
      case UTF16: {
        const length = this.#varint();
        const start = this.#at;
        this.#at += 2 * length;
        return utf16(bytes, start, length);
      }
      case BIGINT: {
        const hex = this.value() as string;
        return hex.startsWith("-")
          ? -BigInt(`0x${hex.slice(1)}`)
          : BigInt(`0x${hex}`);
      }
      case BYTES: {
        const length = this.#varint();
        const start = this.#at;
        this.#at += length;
        return bytes.slice(start, start + length);
      }
      default:
        throw new TypeError(`Cannot decode a message: unknown tag ${tag}`);
    }
  }

  #object(): Record<string, unknown> {
    const bytes = this.#bytes;
    const id = bytes[this.#at]! | (bytes[this.#at + 1]! << 8);
    this.#at += 2;
    if (id === INLINE_KEYS) return this.#inline();
    const shape = this.#shapes[id]!;
    if (shape.build !== undefined) return shape.build(this);
    if (++shape.uses >= COMPILE_AFTER) shape.build = compile(shape.keys);
    const record: Record<string, unknown> = {};
    for (const key of shape.keys) record[key] = this.value();
    return record;
  }

  /** An object whose keys follow its values (and an END). */
  #inline(): Record<string, unknown> {
    const values: unknown[] = [];
    while (this.#bytes[this.#at] !== END) values.push(this.value());
    this.#at++;
    const record: Record<string, unknown> = {};
    for (const value of values) record[this.value() as string] = value;
    return record;
  }
}

/** A function that builds an object of `keys` with an object literal. */
function compile(
  keys: readonly string[],
): (decoder: DataDecoder) => Record<string, unknown> {
  const fields = keys.map((key) => `${JSON.stringify(key)}: d.value()`);
  return new Function("d", `return { ${fields.join(", ")} };`) as (
    decoder: DataDecoder,
  ) => Record<string, unknown>;
}

function utf16(bytes: Uint8Array, start: number, length: number): string {
  let text = "";
  const units: number[] = [];
  for (let i = 0; i < length; i++) {
    units.push(bytes[start + 2 * i]! | (bytes[start + 2 * i + 1]! << 8));
    if (units.length === 4096) {
      text += fromCharCode.apply(null, units);
      units.length = 0;
    }
  }
  return text + fromCharCode.apply(null, units);
}
