/**
 * Refuses, at the upgrade, a path whose queue names the bus would refuse
 * (too long, mostly): such a connection could publish nothing, not even its
 * connection events. Pure function.
 *
 * @module
 */

import { QueueNameError } from "../errors.ts";
import { validateQueueName } from "../queue_name.ts";
import { textResponse } from "./admission.ts";
import { disconnectedQueue } from "./router.ts";

/**
 * The refusal of a WebSocket upgrade to `path` when a queue derived from it
 * is not a valid queue name: 414 URI Too Long when the name is too long,
 * 400 otherwise; `undefined` when the path is fine. The longest derived
 * queue, `ws://disconnected<path>`, is the one checked.
 *
 * @param path A path normalised with `routePath`.
 * @returns The refusal and the reason to log, or `undefined`.
 *
 * @example A path of 1,100 characters is refused with 414
 * ```ts
 * import { refusePath } from "./path_limit.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(refusePath("/client"), undefined);
 * assert.equal(refusePath(`/${"a".repeat(1100)}`)?.response.status, 414);
 * ```
 */
export function refusePath(
  path: string,
): { response: Response; reason: string } | undefined {
  try {
    validateQueueName(disconnectedQueue(path), "publish");
    return undefined;
  } catch (error) {
    if (!(error instanceof QueueNameError)) throw error;
    const tooLong = /characters \(at most/.test(error.message);
    const reason = error.message.replace(
      /^Invalid queue name "[^"]*": it /,
      "",
    );
    return {
      response: tooLong
        ? textResponse(414, "URI too long")
        : textResponse(400, "Bad path"),
      reason: `the path's queue name ${reason}`,
    };
  }
}
