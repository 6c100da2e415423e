/**
 * Test helper: what a `ReconnectingWebSocket` reports (its `open` details
 * and its messages), with a wait for a condition under a deadline.
 */
import type {
  OpenDetail,
  ReconnectingWebSocket,
} from "../src/websocket/client.ts";
import { deadline } from "./fixtures/websocket_helpers.ts";

/** A client's `open` details and messages, awaited with deadlines. */
export class Recorder {
  readonly opens: OpenDetail[] = [];
  readonly messages: string[] = [];
  #changed = Promise.withResolvers<void>();

  constructor(client: ReconnectingWebSocket) {
    client.addEventListener("open", (e) => {
      this.opens.push((e as CustomEvent<OpenDetail>).detail);
      this.#notify();
    });
    client.addEventListener("message", (e) => {
      this.messages.push(String((e as MessageEvent).data));
      this.#notify();
    });
  }

  /** Resolves once `test()` holds. */
  async until(test: () => boolean, what: string): Promise<void> {
    while (!test()) await deadline(this.#changed.promise, what);
  }

  #notify(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers();
  }
}
