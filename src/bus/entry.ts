/** A subscription as every pool knows it (the primary keeps the table). */
export interface SubscriptionEntry {
  /**
   * The subscription's number, by which messages address it: unique in the
   * table, `n × <number of pools> + <pool index>` for the pool's `n`th
   * subscription (a restarted pool counts anew: its earlier entries left
   * the table when it died, and nothing sent to them reaches it).
   */
  id: number;
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
