/**
 * Reading a message that arrives from NATS: its data, its headers, and what
 * our publishers say of it.
 *
 * `<process id> <mark> <pool>/<service>` names the publisher (pool and
 * service names percent-encoded when they hold anything but visible ASCII
 * other than `%`, `/`), and says what its process got already over the
 * in-process transport: `-` nothing, `p` its pools' subscriptions outside
 * groups, `g` those and its groups; the pools of that process drop the copy
 * the server sends them of what they got. It goes in the header `Mf-From`
 * when the message has headers anyway or is on an exported queue (a plain
 * client reads plain data there); otherwise, as a header would cost a third
 * of the throughput here, as the payload's first line, after a NUL byte
 * (JSON text never starts with one). A reply to a plain NATS client carries
 * neither.
 *
 * @module
 */
import type { Msg } from "./client.ts";
import type { Handled } from "../transport/remote.ts";
import { decodePayload, ENCODING_HEADER } from "./encoding.ts";

/** The header that names a message's publisher and what its process got. */
export const FROM_HEADER = "Mf-From";

/** The mark of each `Handled`, in `Mf-From` and the first line. */
export const MARKS: Record<Handled, string> = {
  none: "-",
  plain: "p",
  all: "g",
};

/** The `Mf-From` value of a message. */
export function fromValue(
  processId: string,
  handled: Handled,
  pool: string,
  service: string,
): string {
  return `${processId} ${MARKS[handled]} ${escapeName(pool)}/${
    escapeName(service)
  }`;
}

/** What `Mf-From` says. */
export interface From {
  process: string;
  handled: Handled;
  pool: string;
  service: string;
}

/** Reads an `Mf-From` value; `undefined` when there is none or it is not ours. */
export function parseFrom(value: string | undefined): From | undefined {
  if (value === undefined) return undefined;
  const space = value.indexOf(" ");
  const slash = value.indexOf("/", space + 3);
  if (space < 1 || value[space + 2] !== " " || slash < 0) return undefined;
  const mark = value[space + 1];
  const handled = mark === "g" ? "all" : mark === "p" ? "plain" : "none";
  try {
    return {
      process: value.slice(0, space),
      handled,
      pool: unescapeName(value.slice(space + 3, slash)),
      service: unescapeName(value.slice(slash + 1)),
    };
  } catch {
    return undefined;
  }
}

/**
 * Whether a message from `from` is a copy of what process `processId` got
 * already, for a subscription in a group (`"group"`) or outside any
 * (`"plain"`).
 */
export function handledHere(
  from: From | undefined,
  processId: string,
  subscription: "group" | "plain",
): boolean {
  if (from === undefined || from.process !== processId) return false;
  return subscription === "group"
    ? from.handled === "all"
    : from.handled !== "none";
}

const decoder = new TextDecoder();

/** The last first line read, and what it said (a flow repeats it). */
let lastLine = new Uint8Array(0);
let lastFrom: From | undefined;

/** What the first line `data[1..end)` says; the last one is reused. */
function lineFrom(data: Uint8Array, end: number): From | undefined {
  const length = end - 1;
  if (length === lastLine.length) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (data[i + 1] !== lastLine[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastFrom;
  }
  lastLine = data.slice(1, end);
  lastFrom = parseFrom(decoder.decode(lastLine));
  return lastFrom;
}

/** What our publisher says of `msg`, and its payload without that line. */
export function fromOf(
  msg: Msg,
): { from: From | undefined; payload: Uint8Array } {
  const data = msg.data;
  if (msg.headers !== undefined) {
    return {
      from: parseFrom(msg.headers.get(FROM_HEADER) || undefined),
      payload: data,
    };
  }
  if (data.length === 0 || data[0] !== 0) {
    return { from: undefined, payload: data };
  }
  const end = data.indexOf(10);
  const from = end < 0 ? undefined : lineFrom(data, end);
  // Bytes of a plain client that merely start with NUL stay whole.
  if (from === undefined) return { from, payload: data };
  return { from, payload: data.subarray(end + 1) };
}

/** What a message from NATS holds. */
export interface ReadMessage {
  data: unknown;
  /** Its headers, but ours (`Mf-Encoding`, `Mf-From`). */
  headers: Record<string, string> | undefined;
}

function escapeName(name: string): string {
  return /^[\x21-\x24\x26-\x2e\x30-\x7e]*$/.test(name)
    ? name
    : encodeURIComponent(name);
}

function unescapeName(text: string): string {
  return text.includes("%") ? decodeURIComponent(text) : text;
}

/**
 * Decodes a message's data and headers.
 *
 * @throws {Error} When the data cannot be decoded (its `Mf-Encoding` lies).
 */
export function readMessage(
  msg: Msg,
  payload: Uint8Array = msg.data,
): ReadMessage {
  let headers: Record<string, string> | undefined;
  let encoding: string | undefined;
  if (msg.headers !== undefined) {
    for (const key of msg.headers.keys()) {
      if (key === ENCODING_HEADER) encoding = msg.headers.get(key);
      else if (key !== FROM_HEADER) {
        (headers ??= {})[key] = msg.headers.get(key);
      }
    }
  }
  return { data: decodePayload(payload, encoding), headers };
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
