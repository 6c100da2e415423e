/**
 * Checks of `publish` arguments that the bus does not make yet, as pure
 * functions, so the bus can call each with one line (see the calls named in
 * each function's doc).
 *
 * @module
 */

import { QueueNameError } from "../errors.ts";

/**
 * Throws a `TypeError` that says what is wrong when `headers` is not an
 * object (it may be `undefined`). Without it, `headers: null` fails with
 * "Cannot convert undefined or null to object" and `headers: "abc"` with
 * "Invalid value used in weak set". The values are checked by the bus.
 *
 * Call it first in `checkHeaders()` of `src/bus/bus.ts`.
 *
 * @param queue The queue published on, for the message.
 * @param headers The `headers` option as given.
 * @throws {TypeError} When `headers` is `null`, an array or not an object.
 *
 * @example Refuse null headers
 * ```ts
 * import { checkHeadersShape } from "./publish_checks.ts";
 * import assert from "node:assert/strict";
 *
 * checkHeadersShape("q://a", { user: "ann" });
 * assert.throws(() => checkHeadersShape("q://a", null), {
 *   name: "TypeError",
 *   message:
 *     'Cannot publish on "q://a": headers must be an object of strings, got null',
 * });
 * ```
 */
export function checkHeadersShape(queue: string, headers: unknown): void {
  if (headers === undefined) return;
  if (
    typeof headers !== "object" || headers === null || Array.isArray(headers)
  ) {
    const got = headers === null
      ? "null"
      : Array.isArray(headers)
      ? "an array"
      : `${typeof headers} ${JSON.stringify(String(headers))}`;
    throw new TypeError(
      `Cannot publish on "${queue}": headers must be an object of strings, got ${got}`,
    );
  }
}

const REPLY_SCHEME = "reply://";
const REPLY_ADDRESS =
  /^reply:\/\/(?:0|[1-9][0-9]*)\/(?:0|[1-9][0-9]*)\/(?:0|[1-9][0-9]*)$/;

/**
 * Refuses a `reply://` name that no request could have made: subscribing to
 * `reply://` is refused, so publishing on a made-up one must be too (it
 * went nowhere, silently). A well-formed reply queue is accepted; a reply
 * that comes after its request timed out is still dropped quietly.
 *
 * Call it in `publish()` of `src/bus/bus.ts`, in the `isReplyQueue(queue)`
 * branch, before `replyAddress(queue)`. The address form is today's
 * `reply://<pool index>/<incarnation>/<id>`: change `REPLY_ADDRESS` with it.
 *
 * @param queue A queue name already validated for `publish`.
 * @throws {QueueNameError} When `queue` is a `reply://` name that is not the
 * `replyTo` of a request.
 *
 * @example Refuse a made-up reply queue
 * ```ts
 * import { checkReplyQueue } from "./publish_checks.ts";
 * import assert from "node:assert/strict";
 *
 * checkReplyQueue("reply://0/1/42");
 * checkReplyQueue("q://orders");
 * assert.throws(() => checkReplyQueue("reply://bogus"), {
 *   name: "QueueNameError",
 *   message:
 *     'Invalid queue name "reply://bogus": reply:// is reserved for replies; publish on the meta.replyTo of a request',
 * });
 * ```
 */
export function checkReplyQueue(queue: string): void {
  if (!queue.startsWith(REPLY_SCHEME) || REPLY_ADDRESS.test(queue)) return;
  throw new QueueNameError(
    queue,
    "reply:// is reserved for replies; publish on the meta.replyTo of a request",
  );
}

/** White space, control characters and invisible format characters (`\p{Cf}`: U+200B zero-width space, U+200D, U+2060, U+00AD, bidi marks, …). */
const INVISIBLE = /[\s\p{Cc}\p{Cf}]/u;

/**
 * The first white space, control or invisible format character of `name`
 * (`\p{Cf}`, e.g. U+200B zero-width space), or `undefined`. Queue names
 * refuse white space and control characters; a zero-width space looks like
 * nothing and made two different names look the same.
 *
 * In `src/bus/queue_name.ts`, either replace `WHITE_SPACE_OR_CONTROL` by
 * this regex (`/[\s\p{Cc}\p{Cf}]/u`) and say "white space, a control or an
 * invisible character" in its message, or call this function there.
 *
 * @param name A queue name.
 * @returns Its code point (as `U+XXXX`) and index, or `undefined`.
 *
 * @example Find a zero-width space
 * ```ts
 * import { invisibleCharacter } from "./publish_checks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(invisibleCharacter("q://a\u200Bb"), {
 *   code: "U+200B",
 *   index: 5,
 * });
 * assert.equal(invisibleCharacter("q://ab"), undefined);
 * ```
 */
export function invisibleCharacter(
  name: string,
): { code: string; index: number } | undefined {
  const bad = INVISIBLE.exec(name);
  if (bad === null) return undefined;
  const code = bad[0].codePointAt(0) ?? 0;
  return {
    code: `U+${code.toString(16).toUpperCase().padStart(4, "0")}`,
    index: bad.index,
  };
}
