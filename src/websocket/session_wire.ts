/**
 * The wire format of sessions, for clients that opt in (docs/websocket.md,
 * "Reconnects"):
 *
 * - the client connects with `?mf-session` (a new session) or
 *   `?mf-session=<id>&mf-offset=<offset>` (resume one);
 * - the server's first frame is text,
 *   `{"mf":"session","session":"<id>","offset":<n>,"recovered":<bool>}`
 *   plus `"reason"` when a presented session was not recovered;
 * - every later frame carries its offset: text as `<offset>:<text>`, binary
 *   as 8 bytes of offset (unsigned, big-endian) then the bytes.
 *
 * Pure functions, no I/O.
 *
 * @module
 */

/** The query parameter that opts in and names the session to resume. */
export const SESSION_PARAM = "mf-session";
/** The query parameter with the offset of the last frame the client has. */
export const OFFSET_PARAM = "mf-offset";

/** Why a presented session was not recovered. */
export type NotRecoveredReason =
  | "unknown session"
  | "window passed"
  | "history trimmed"
  | "session in use"
  | "recovery off";

/** The server's first frame on a connection that opted in. */
export interface SessionHello {
  mf: "session";
  /** The session id, secret to this client; `null` when recovery is off. */
  session: string | null;
  /** The offset the client is at: later frames have larger offsets. */
  offset: number;
  recovered: boolean;
  /** Why a presented session was not recovered. */
  reason?: NotRecoveredReason;
}

/** What a client asked for in its URL. */
export interface SessionRequest {
  /** The session to resume; `undefined` for a new one. */
  session: string | undefined;
  /** The offset of the last frame it has (0 when absent or malformed). */
  offset: number;
}

/**
 * Splits the session parameters off a query string.
 *
 * @param query The query string, without `?`.
 * @returns The query without them, and the request when the client opted in.
 *
 * @example
 * ```ts
 * import { sessionRequest } from "./session_wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(sessionRequest("room=1"), { query: "room=1" });
 * assert.deepEqual(sessionRequest("mf-session&room=1"), {
 *   query: "room=1",
 *   request: { session: undefined, offset: 0 },
 * });
 * assert.deepEqual(sessionRequest("mf-session=abc&mf-offset=7"), {
 *   query: "",
 *   request: { session: "abc", offset: 7 },
 * });
 * ```
 */
export function sessionRequest(
  query: string,
): { query: string; request?: SessionRequest } {
  if (!query.includes(SESSION_PARAM)) return { query };
  const params = new URLSearchParams(query);
  const session = params.get(SESSION_PARAM);
  if (session === null) return { query };
  const offset = Number(params.get(OFFSET_PARAM) ?? 0);
  params.delete(SESSION_PARAM);
  params.delete(OFFSET_PARAM);
  return {
    query: params.toString(),
    request: {
      session: session === "" ? undefined : session,
      offset: Number.isSafeInteger(offset) && offset >= 0 ? offset : 0,
    },
  };
}

/**
 * A frame with its offset in front.
 *
 * @example
 * ```ts
 * import { offsetFrame } from "./session_wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(offsetFrame(42, '{"a":1}'), '42:{"a":1}');
 * assert.deepEqual(
 *   offsetFrame(258, new Uint8Array([9])),
 *   new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2, 9]),
 * );
 * ```
 */
export function offsetFrame(
  offset: number,
  frame: string | Uint8Array,
): string | Uint8Array {
  if (typeof frame === "string") return `${offset}:${frame}`;
  const out = new Uint8Array(8 + frame.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(offset / 2 ** 32));
  view.setUint32(4, offset >>> 0);
  out.set(frame, 8);
  return out;
}
