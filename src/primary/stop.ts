/**
 * The ordered stop: every pool stops taking work and delivers what it
 * holds; then, last pool first, each one's subscriptions are removed, what
 * others still send it is flushed, and its worker stops within a deadline.
 *
 * @module
 */
import { withTimeout } from "../_util/time.ts";
import type { TransportHub } from "../transport/transport.ts";
import type { Logger } from "../logger.ts";
import type { PoolCalls } from "./pool_calls.ts";
import type { PoolHandle } from "./pool_handle.ts";
import type { SubscriptionTable } from "./subscription_table.ts";

/** What the ordered stop works with. */
export interface StopParts {
  pools: readonly PoolHandle[];
  calls: PoolCalls;
  table: SubscriptionTable;
  hub: TransportHub;
  log: Logger;
  /** The bound of each step, in ms (the run option `terminateTimeout`). */
  terminateTimeout: number;
}

/** Stops every pool in order (see the module doc). */
export async function stopPools(parts: StopParts): Promise<void> {
  const { pools, calls, table, hub, log } = parts;
  for (const pool of pools) {
    clearTimeout(pool.timer);
    if (pool.live) {
      pool.state = "stopping";
      pool.send({ mf: 1, kind: "stopping" });
    } else if (pool.state === "starting") {
      pool.kill();
      pool.state = "stopped";
    }
  }
  const timeout = parts.terminateTimeout;
  await quiesce(calls, timeout);
  for (const pool of [...pools].reverse()) {
    if (!pool.live) continue;
    const ids = table.dropPool(pool.index);
    const bound = <T>(promise: Promise<T>): Promise<T | undefined> =>
      withTimeout(promise, timeout).catch(() => undefined);
    await bound(table.broadcast([], ids, pool.index));
    await bound(calls.ask(
      (request) => ({ mf: 1, kind: "flush", request, to: pool.index }),
      pool.index,
    ));
    pool.send({ mf: 1, kind: "stop" });
    const deadline = timeout * (pool.services.size + 2) + 1000;
    const ended = await withTimeout(pool.terminated.promise, deadline)
      .then(() => true, () => false);
    if (!ended) {
      pool.missedStop = deadline;
      log.error(
        `Pool "${pool.name}" did not stop within ${deadline} ms; its worker is terminated`,
      );
    }
    pool.kill();
    pool.state = "stopped";
    hub.disconnect(pool.index);
  }
}

/**
 * Before any pool's subscriptions are removed, lets every pool deliver what
 * it holds (messages for a group member that left are handed to another
 * member then, while all members are still known): drains rounds until two
 * in a row find every pool idle, or `timeout` passes.
 */
async function quiesce(calls: PoolCalls, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  let idleRounds = 0;
  while (idleRounds < 2 && Date.now() < deadline) {
    const answers = await withTimeout(calls.gather("drain"), timeout)
      .catch(() => [true]);
    idleRounds = answers.some((busy) => busy === true) ? 0 : idleRounds + 1;
  }
}
