/**
 * The tags of the data codec's bytes (see `data_encoder.ts`), shared by the
 * encoder, the decoder and the link's byte queue.
 *
 * @module
 */

export const UNDEFINED = 0;
export const NULL = 1;
export const FALSE = 2;
export const TRUE = 3;
export const UINT8 = 4;
export const INT32 = 5;
export const FLOAT64 = 6;
export const BIGINT = 7;
export const LATIN1 = 8;
export const UTF16 = 9;
/** The next of the values that travel beside the bytes (see `DataEncoder.beside`). */
export const BESIDE = 10;
export const ARRAY = 11;
export const OBJECT = 12;
export const BYTES = 13;
/** A shape's keys: its number, its key count, its keys. */
export const SHAPE = 15;
/** Ends the values of an object without a shape (its keys follow). */
export const END = 16;

/** An object whose keys follow its values (no shape number left, or too many keys). */
export const INLINE_KEYS = 0xffff;
