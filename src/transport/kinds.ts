/**
 * The transports a program can run on, as the run option `transport` (or
 * `MAGIC_FOUNDATION_TRANSPORT`) names them; `open.ts` opens the one named.
 *
 * @module
 */

/**
 * What carries messages between pools: `"ports"`, a `MessagePort` between
 * each pair of pools (the default, and the fastest measured), or
 * `"broadcast"`, one `BroadcastChannel` for the run (every pool wakes for
 * every batch).
 *
 * @example Run on the broadcast channel
 * ```ts ignore
 * import { Main, type TransportKind } from "@magic/foundation";
 *
 * const transport: TransportKind = "broadcast";
 * await Main.instance().run({ transport });
 * ```
 */
export type TransportKind = "ports" | "broadcast";

/**
 * The transport kinds, in the order the docs list them.
 *
 * @example Every kind
 * ```ts
 * import { TRANSPORT_KINDS } from "./kinds.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(TRANSPORT_KINDS, ["ports", "broadcast"]);
 * ```
 */
export const TRANSPORT_KINDS: readonly TransportKind[] = ["ports", "broadcast"];
