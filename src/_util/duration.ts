/**
 * Durations given to the runtime (timeouts, thresholds, sleeps) are checked
 * here, in one place, so every call refuses the same values with the same
 * message. Timers in Deno (as in browsers and Node) hold a signed 32-bit
 * delay: `setTimeout(f, 2 ** 31)` fires after about 1 ms, with a
 * `TimeoutOverflowWarning`. A longer duration is refused rather than cut.
 *
 * @module
 */

/** The longest delay a timer can wait, in ms (about 24.8 days). */
export const MAX_DELAY = 2 ** 31 - 1;

/**
 * Checks a duration in ms and returns it.
 *
 * @param where The start of the message, e.g. `Cannot run`.
 * @param name The option or parameter, e.g. `terminateTimeout`.
 * @param value The value given.
 * @param min `"> 0"` (the default) or `">= 0"` when 0 is allowed.
 * @returns `value`, unchanged.
 * @throws {TypeError} When `value` is not a number.
 * @throws {RangeError} When `value` is not finite, below `min`, or above
 * {@linkcode MAX_DELAY}.
 *
 * @example Refuse a delay a timer cannot hold
 * ```ts
 * import { checkDuration } from "./duration.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkDuration("Cannot run", "startTimeout", 500), 500);
 * assert.throws(() => checkDuration("Cannot run", "startTimeout", 3e9), {
 *   name: "RangeError",
 *   message:
 *     "Cannot run: startTimeout must be a number > 0 and <= 2147483647 (about 24.8 days), got 3000000000",
 * });
 * ```
 */
export function checkDuration(
  where: string,
  name: string,
  value: unknown,
  min: "> 0" | ">= 0" = "> 0",
): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${where}: ${name} must be a number, got ${typeof value}`,
    );
  }
  const tooSmall = min === "> 0" ? !(value > 0) : !(value >= 0);
  if (!Number.isFinite(value) || tooSmall || value > MAX_DELAY) {
    throw new RangeError(
      `${where}: ${name} must be a number ${min} and <= ${MAX_DELAY} (about 24.8 days), got ${value}`,
    );
  }
  return value;
}

/** `ms`, capped at {@linkcode MAX_DELAY}: for deadlines computed from checked durations. */
export function capDelay(ms: number): number {
  return Math.min(ms, MAX_DELAY);
}
