/** A logger that drops every line, for parts tested without a pool. */
import type { Logger } from "../src/logger.ts";

const drop = (): void => {};

/** Drops every line. */
export const quietLog: Logger = {
  debug: drop,
  info: drop,
  warn: drop,
  error: drop,
};
