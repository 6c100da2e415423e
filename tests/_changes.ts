/**
 * Waits on what changes by events (a child's output, the spans a collector
 * receives): each wait checks its condition at once and at every change,
 * and gives up after a deadline (never a sleep).
 */
export class Changes {
  readonly #waiters = new Set<() => void>();

  /** Tells every wait to check its condition again. */
  notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /**
   * Resolves once `done()` holds, checked now and whenever one of `sources`
   * changes; rejects after `timeout` ms with the message `failure()` gives.
   */
  static until(
    sources: readonly Changes[],
    done: () => boolean,
    timeout: number,
    failure: () => string,
  ): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const stop = (): void => {
      clearTimeout(timer);
      for (const source of sources) source.#waiters.delete(check);
    };
    const check = (): void => {
      if (!done()) return;
      stop();
      resolve();
    };
    const timer = setTimeout(() => {
      stop();
      reject(new Error(failure()));
    }, timeout);
    for (const source of sources) source.#waiters.add(check);
    check();
    return promise;
  }
}
