/** Resolves every waiter in `waiters` and empties the list. */
export function releaseAll(waiters: Array<() => void>): void {
  for (const resolve of waiters.splice(0)) resolve();
}
