/**
 * `approximateSize()` lives in `src/_util/size.ts` (the transports use it);
 * this re-export keeps the bus's imports as they were.
 *
 * @module
 */
export { approximateSize } from "../_util/size.ts";
