/**
 * Queue names live in `src/queue_name.ts`, below every folder (the bus and
 * the carriers read them alike); this re-export keeps the bus's imports.
 *
 * @module
 */
export * from "../queue_name.ts";
