/**
 * What a message waiting behind a full buffer holds: taken when it starts
 * waiting, released when it enters the buffer (or the subscription closes).
 */
export interface Hold {
  /** One more segment waits behind a buffer. */
  take(): void;
  /** A segment entered its buffer (or was given up). */
  release(): void;
}

/**
 * A batch received from another pool, while some of its messages wait
 * behind full buffers: its credit goes back to the sender (`ack`) once the
 * routing is done and every one of them has entered its buffer (or the
 * subscription closed).
 */
export class BatchHold implements Hold {
  /** Segments still waiting behind a buffer, plus one until routing is done. */
  #pending = 1;
  #ack: () => void;

  constructor(ack: () => void) {
    this.#ack = ack;
  }

  /** One more segment waits behind a buffer. */
  take(): void {
    this.#pending++;
  }

  /** A segment entered its buffer, or the routing is done. */
  release(): void {
    if (--this.#pending === 0) this.#ack();
  }
}
