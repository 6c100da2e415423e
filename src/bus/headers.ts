/** Header objects already checked and frozen, shared as they are. */
const checkedHeaders = new WeakSet<object>();

/** A frozen, checked copy of `headers` (the object itself when it was checked before). */
export function checkHeaders(
  queue: string,
  headers: Record<string, string>,
): Readonly<Record<string, string>> {
  checkHeadersShape(queue, headers);
  if (checkedHeaders.has(headers)) return headers;
  const copy: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (typeof value !== "string") {
      throw new TypeError(
        `Cannot publish on "${queue}": header "${key}" must be a string`,
      );
    }
    copy[key] = value;
  }
  Object.freeze(copy);
  checkedHeaders.add(copy);
  if (Object.isFrozen(headers)) checkedHeaders.add(headers);
  return copy;
}

/**
 * Throws a `TypeError` that says what is wrong when `headers` is not an
 * object (it may be `undefined`). Without it, `headers: null` fails with
 * "Cannot convert undefined or null to object" and `headers: "abc"` with
 * "Invalid value used in weak set". The values are checked by the bus.
 *
 * * @param queue The queue published on, for the message.
 * @param headers The `headers` option as given.
 * @throws {TypeError} When `headers` is `null`, an array or not an object.
 *
 * @example Refuse null headers
 * ```ts
 * import { checkHeadersShape } from "./headers.ts";
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
