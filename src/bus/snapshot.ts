/**
 * `snapshot()` lives in `src/_util/snapshot.ts` (the transports use it too);
 * this re-export keeps the bus's imports as they were.
 *
 * @module
 */
export { snapshot } from "../_util/snapshot.ts";
