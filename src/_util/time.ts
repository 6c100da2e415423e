import { TimeoutError } from "../errors.ts";
import { capDelay } from "./duration.ts";

/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects). A
 * delay beyond a timer's range is capped (callers check durations first).
 */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, capDelay(ms));
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Settles like `promise`, or rejects with `onTimeout()` (default the
 * module's {@linkcode TimeoutError}) when `ms` pass first. The timer is
 * cleared either way.
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => Error = () => new TimeoutError(`Timed out after ${ms} ms`),
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), capDelay(ms));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Whether `promise` settles (resolves or rejects) within `ms`; never
 * rejects. The timer is cleared either way.
 */
export async function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  return await withTimeout(promise.then(() => true, () => true), ms)
    .catch(() => false);
}
