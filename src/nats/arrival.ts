/**
 * Reading a message that arrives from NATS: its data, its headers, and the
 * marks our publishers put on it (`Mf-Origin`).
 *
 * A publisher whose process got the message already (over the in-process
 * transport) marks its NATS copy with header `Mf-Origin: <process id>`
 * (`<process id>+g` when the process's groups got it too), so the pools of
 * that process drop the copy; a message nothing else in its process wanted
 * carries no header at all.
 *
 * @module
 */
import type { Msg } from "./client.ts";
import type { Handled } from "../transport/remote.ts";
import { decodePayload, ENCODING_HEADER } from "./encoding.ts";

/** The header that names the process of a message it got already. */
export const ORIGIN_HEADER = "Mf-Origin";

/** The `Mf-Origin` value of a message process `processId` got already. */
export function originMark(
  processId: string,
  handled: Exclude<Handled, "none">,
): string {
  return handled === "all" ? `${processId}+g` : processId;
}

/** What a message from NATS holds. */
export interface ReadMessage {
  data: unknown;
  /** Its headers, but ours (`Mf-Encoding`, `Mf-Origin`). */
  headers: Record<string, string> | undefined;
}

/**
 * Whether `msg` is a copy of what process `processId` got already, for a
 * subscription in a group (`group`) or outside any.
 */
export function handledHere(
  msg: Msg,
  processId: string,
  group: boolean,
): boolean {
  const origin = msg.headers?.get(ORIGIN_HEADER);
  if (origin === undefined || origin === "") return false;
  return group
    ? origin === `${processId}+g`
    : origin === processId || origin === `${processId}+g`;
}

/**
 * Decodes a message's data and headers.
 *
 * @throws {Error} When the data cannot be decoded (its `Mf-Encoding` lies).
 */
export function readMessage(msg: Msg): ReadMessage {
  let headers: Record<string, string> | undefined;
  let encoding: string | undefined;
  if (msg.headers !== undefined) {
    for (const key of msg.headers.keys()) {
      if (key === ENCODING_HEADER) encoding = msg.headers.get(key);
      else if (key !== ORIGIN_HEADER) {
        (headers ??= {})[key] = msg.headers.get(key);
      }
    }
  }
  return { data: decodePayload(msg.data, encoding), headers };
}

/**
 * Whether `msg` has a reply subject. `msg.reply` decodes it with a
 * `TextDecoder` on every message, even an empty one, which cost a third of
 * a subscriber's time here; the client's (pinned) parsed arguments say it
 * without decoding.
 */
export function hasReply(msg: Msg): boolean {
  const parsed = (msg as unknown as { _msg?: { reply?: Uint8Array } })._msg;
  if (parsed === undefined) return msg.reply !== "";
  return parsed.reply !== undefined && parsed.reply.length > 0;
}
