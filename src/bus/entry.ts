/** A subscription as every pool knows it (the primary keeps the table). */
export interface SubscriptionEntry {
  /** Unique in the run: `<pool index>.<incarnation>.<n>`. */
  id: string;
  /** The index of the pool holding it. */
  poolIndex: number;
  /** The pool's name. */
  pool: string;
  /** The subscribing service. */
  service: string;
  /** The queue name or pattern. */
  queue: string;
  /** The competing-consumer group, if any. */
  group?: string | undefined;
}
