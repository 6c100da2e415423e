/** Header objects already checked and frozen, shared as they are. */
const checkedHeaders = new WeakSet<object>();

/** A frozen, checked copy of `headers` (the object itself when it was checked before). */
export function checkHeaders(
  queue: string,
  headers: Record<string, string>,
): Readonly<Record<string, string>> {
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
