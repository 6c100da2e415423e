/**
 * The counters of one WebSocketService, read by its pool for
 * `main.metrics()`: plain number fields, so counting a frame allocates
 * nothing.
 *
 * @module
 */

import type { WebSocketMetrics } from "./metrics.ts";

/** Frames, bytes and closes of one service's connections. */
export class WebSocketCounters {
  framesIn = 0;
  framesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  readonly closes = new Map<number, number>();
  /** The last frame sent, and its size: a broadcast measures it once. */
  #lastFrame: string | Uint8Array | undefined;
  #lastBytes = 0;

  /** Counts a frame received, of `bytes` payload bytes. */
  received(bytes: number): void {
    this.framesIn++;
    this.bytesIn += bytes;
  }

  /** Counts a frame sent, of `bytes` bytes when the caller knows. */
  sent(frame: string | Uint8Array, bytes?: number): void {
    if (frame !== this.#lastFrame) {
      this.#lastFrame = frame;
      this.#lastBytes = bytes ?? frameBytes(frame);
    }
    this.framesOut++;
    this.bytesOut += this.#lastBytes;
  }

  /** Counts a closed connection. */
  closed(code: number): void {
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
  }

  /** The counters as plain data. */
  snapshot(
    pool: string,
    service: string,
    connections: number,
  ): WebSocketMetrics {
    const closes: Record<string, number> = {};
    for (const [code, count] of [...this.closes].sort((a, b) => a[0] - b[0])) {
      closes[String(code)] = count;
    }
    return {
      pool,
      service,
      connections,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      closes,
    };
  }
}

/** A character outside ASCII (one that takes more than a byte in UTF-8). */
const NON_ASCII = /[\u0080-\uffff]/;

/**
 * The size of a frame in bytes: UTF-8 for text.
 *
 * @example
 * ```ts
 * import { frameBytes } from "./counters.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(frameBytes("é!"), 3);
 * assert.equal(frameBytes(new Uint8Array(4)), 4);
 * ```
 */
export function frameBytes(frame: string | Uint8Array): number {
  return typeof frame === "string" ? utf8Length(frame) : frame.byteLength;
}

/** The UTF-8 length of `text`, without encoding it. */
export function utf8Length(text: string): number {
  // Most frames are ASCII: one regular expression scan says so.
  if (!NON_ASCII.test(text)) return text.length;
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next < 0xe000) {
        // A surrogate pair: 4 bytes for 2 UTF-16 units.
        bytes += 2;
        i++;
      } else {
        bytes += 2; // A lone surrogate becomes U+FFFD, 3 bytes.
      }
    } else {
      bytes += 2;
    }
  }
  return bytes;
}
