/**
 * What a pool publishes on NATS: encoded at once, held until the server
 * confirms it, sent again after a reconnect.
 *
 * A message stays in the pending list until a flush (PING/PONG) after it
 * returns; after a reconnect whatever was not confirmed is sent again, in
 * order, and while the server is unreachable messages wait there, up to a
 * bound past which `send` asks its publisher to wait (see
 * `NatsUnavailableError`).
 *
 * @module
 */
import type { MsgHdrs } from "./client.ts";
import {
  DataCloneError,
  JsonDataError,
  MessageTooLargeError,
} from "../errors.ts";
import { errorMessage } from "../_util/error_text.ts";
import { withTimeout } from "../_util/time.ts";
import { isRemoteReply, remoteReplySubject } from "../transport/reply_queue.ts";
import type { EncodedMessage, Handled } from "../transport/remote.ts";
import type { WireMessage } from "../transport/transport.ts";
import type { Scheduler } from "../scheduler.ts";
import type { Logger } from "../logger.ts";
import { FROM_HEADER, fromValue, MARKS } from "./arrival.ts";
import type { NatsLink } from "./connection.ts";
import {
  encodePayload,
  ENCODING_HEADER,
  NotJsonError,
  type PayloadReader,
} from "./encoding.ts";
import type { ReplySubjects } from "./replies.ts";
import { QueueIndex } from "../queue_name.ts";
import { queueToSubject } from "./subject.ts";

/** Messages waiting for the server: over this bound, `send` asks to wait. */
const PENDING_MESSAGES = 10_000;
const PENDING_BYTES = 8 * 1024 * 1024;
/**
 * JSON text up to this length is written into a shared slab of
 * `SLAB_BYTES`, the publisher's first line before it: an `ArrayBuffer` per
 * message (and a second one to put the line first) and their collection
 * cost about a third of the publishing thread's time here.
 */
const SLAB_TEXT = 4096;
const SLAB_BYTES = 64 * 1024;
/**
 * How long what was written may wait for the flush that confirms it: a
 * lone request or reply is not followed by a PING of its own (reading each
 * PONG cost each side of a round trip about 40 µs of CPU here).
 */
const CONFIRM_EVERY_MS = 5;
/**
 * A message goes out at once, alone, when nothing went out alone in the
 * last `ALONE_GAP_MS` and no turn's write is due; one that follows closer
 * (the next of a publishing loop) waits for the end of the turn, and the
 * rest of the turn's messages go with it. A lone message thus costs no
 * turn of its own: the end-of-turn task after each request and each reply
 * cost each side's thread 35–50 µs of CPU per round trip here (the pool
 * was idle otherwise, so the turn woke its event loop once more).
 */
const ALONE_GAP_MS = 0.05;
/** The byte of each mark, patched into a first line by `send`. */
const MARK_BYTES: Record<Handled, number> = {
  none: MARKS.none.charCodeAt(0),
  plain: MARKS.plain.charCodeAt(0),
  all: MARKS.all.charCodeAt(0),
};

interface Outgoing extends EncodedMessage {
  queue: string;
  /** The publishing service; `undefined` for a plain client's reader. */
  service: string | undefined;
  /**
   * Whether the publisher goes in the payload's first line (see
   * `arrival.ts`): then `payload` starts with it, its mark still to be set.
   */
  inPayload: boolean;
  subject: string;
  payload: Uint8Array;
  reply: string | undefined;
  /** The publisher's headers. */
  headers: Readonly<Record<string, string>> | undefined;
  /** `Mf-Encoding`, when not JSON. */
  encoding: string | undefined;
  /** What of this process got it already (`Mf-From`). */
  handled: Handled;
  seq: number;
  bytes: number;
}

/** What a publisher works with. */
export interface PublisherParts {
  link: NatsLink;
  /** The pool's name (`Mf-From`). */
  pool: string;
  /** The exported queues (their messages carry `Mf-From` as a header). */
  exports: readonly string[];
  namespace: string;
  processId: string;
  replies: ReplySubjects;
  scheduler: Scheduler;
  log: Logger;
  /** The clock that spaces lone messages (`performance.now` by default). */
  now?: () => number;
}

/** A pool's publishing side on NATS. */
export class NatsPublisher {
  #parts: PublisherParts;
  #pending: Outgoing[] = [];
  #pendingBytes = 0;
  /** How many of `#pending` went out on the current connection. */
  #sent = 0;
  #seq = 0;
  #generation = 0;
  #flushScheduled = false;
  /** When a message last went out alone (see `ALONE_GAP_MS`). */
  #lastAlone = -Infinity;
  #now: () => number;
  /** Set while a confirming flush waits for `CONFIRM_EVERY_MS`. */
  #confirmTimer: ReturnType<typeof setTimeout> | undefined;
  #room: PromiseWithResolvers<void> | undefined;
  #newHeaders: (() => MsgHdrs) | undefined;
  /** `Mf-From` headers alone, per service and mark. */
  #fromHeaders = new Map<string, MsgHdrs>();
  /** The payloads' first lines, per service, marked `none`. */
  #fromLines = new Map<string, Uint8Array>();
  /** The last service's first line (a flow repeats it). */
  #lastService: string | undefined;
  #lastLine: Uint8Array = new Uint8Array(0);
  /** Where the mark is in a first line. */
  #markAt: number;
  /** Where small payloads are written (see `SLAB_TEXT`). */
  #slab = new Uint8Array(0);
  #slabUsed = 0;
  #exports = new QueueIndex<string>();
  /** Set after a reconnect until `resume`: nothing is written meanwhile. */
  #paused: PromiseWithResolvers<void> | undefined;
  /** Held messages dropped after a reconnect (nobody wanted them), per queue. */
  #dropped = new Map<string, number>();

  constructor(parts: PublisherParts) {
    this.#parts = parts;
    this.#now = parts.now ?? (() => performance.now());
    for (const pattern of parts.exports) this.#exports.add(pattern, pattern);
    // NUL, the process id, a space, then the mark.
    this.#markAt = encoder.encode(parts.processId).length + 2;
  }

  /** Gives the client's header maker, once the client is loaded. */
  useHeaders(newHeaders: () => MsgHdrs): void {
    this.#newHeaders = newHeaders;
  }

  #from(service: string, handled: Handled): string {
    return fromValue(this.#parts.processId, handled, this.#parts.pool, service);
  }

  /** The connection came up (again): sends what the server has not confirmed. */
  up(): void {
    if (this.#pending.length > this.#sent) this.#scheduleFlush();
  }

  /**
   * Holds everything back (after a reconnect) until `resume`: the
   * subscribers of other processes may not have subscribed again yet.
   */
  pause(): void {
    this.#paused ??= Promise.withResolvers<void>();
  }

  /**
   * Sends, in order, what is held and still `wanted` by a subscriber
   * outside the process; the rest is dropped and counted. Returns what was
   * dropped now, per queue.
   */
  resume(wanted: (queue: string) => boolean): Map<string, number> {
    const paused = this.#paused;
    if (paused === undefined) return new Map();
    this.#paused = undefined;
    const dropped = new Map<string, number>();
    const kept: Outgoing[] = this.#pending.slice(0, this.#sent);
    for (let i = this.#sent; i < this.#pending.length; i++) {
      const outgoing = this.#pending[i]!;
      if (outgoing.subject === "" || wanted(outgoing.queue)) {
        kept.push(outgoing);
        continue;
      }
      this.#pendingBytes -= outgoing.payload.length;
      dropped.set(outgoing.queue, (dropped.get(outgoing.queue) ?? 0) + 1);
      this.#dropped.set(
        outgoing.queue,
        (this.#dropped.get(outgoing.queue) ?? 0) + 1,
      );
    }
    this.#pending = kept;
    this.#releaseRoom();
    paused.resolve();
    if (this.#parts.link.up) this.up();
    return dropped;
  }

  /** The connection went down: what went out on it is unconfirmed. */
  down(): void {
    this.#generation++;
    this.#sent = 0;
  }

  /** Whether messages wait for the server while it is reachable. */
  busy(): boolean {
    if (this.#pending.length === 0 || !this.#parts.link.up) return false;
    // Someone waits for it: the confirming flush goes now.
    if (this.#confirmTimer !== undefined) this.#confirmNow();
    return true;
  }

  /** The server's `max_payload`, once connected. */
  get maxBytes(): number | undefined {
    return this.#parts.link.connection?.info?.max_payload;
  }

  /**
   * Encodes `message`.
   *
   * @throws {TypeError} When its data cannot be encoded.
   * @throws {MessageTooLargeError} When it is over the server's limit.
   */
  encode(message: WireMessage): Outgoing {
    const { queue, replyTo, headers } = message;
    const { replies, namespace } = this.#parts;
    let subject: string;
    let reader: PayloadReader = "ours";
    if (isRemoteReply(queue)) {
      subject = remoteReplySubject(queue);
      // A reply subject no magic-foundation process of the namespace made
      // (`_INBOX.…`) is a plain NATS client's: it gets JSON or bytes only.
      if (!replies.ours(subject)) reader = "foreign";
    } else {
      subject = queueToSubject(queue, namespace);
    }
    // A plain NATS client asked: it gets the data alone.
    const service = reader === "foreign" ? undefined : message.service;
    // Without headers, and where no plain client reads it, JSON goes with
    // the publisher in its first line: a header costs a third of the
    // throughput here.
    const line = service !== undefined && headers === undefined &&
        (isRemoteReply(queue) || this.#exports.match(queue).length === 0)
      ? this.#fromLine(service)
      : undefined;
    let inPayload = false;
    let encoded;
    try {
      // Only JSON text is written by `utf8`.
      encoded = encodePayload(message.data, reader, (text) => {
        inPayload = line !== undefined;
        return this.#place(line, text);
      });
    } catch (error) {
      throw error instanceof NotJsonError
        ? new JsonDataError(queue, error.path, error.what)
        : new DataCloneError(queue, error);
    }
    const encoding = encoded.encoding === "json" ? undefined : encoded.encoding;
    const outgoing: Outgoing = {
      queue,
      service,
      inPayload,
      subject,
      payload: encoded.payload,
      reply: replyTo === undefined ? undefined : replies.subjectOf(replyTo),
      headers,
      encoding,
      handled: "none",
      seq: 0,
      bytes: encoded.payload.length +
        (inPayload ? 0 : this.#headerBytes(headers, encoding, service)),
    };
    const limit = this.maxBytes;
    if (limit !== undefined && outgoing.bytes > limit) {
      throw new MessageTooLargeError(queue, outgoing.bytes, limit);
    }
    return outgoing;
  }

  /**
   * The size of a message's header block at most (`Mf-From` counted as
   * if it were there).
   */
  #headerBytes(
    headers: Readonly<Record<string, string>> | undefined,
    encoding: string | undefined,
    service: string | undefined,
  ): number {
    // "NATS/1.0\r\n", then "key: value\r\n" each, then "\r\n".
    let bytes = 12;
    if (service !== undefined) {
      // The line is NUL, the value, a line feed: as long as ": " and CRLF.
      bytes += FROM_HEADER.length + this.#fromLine(service).length + 2;
    }
    if (encoding !== undefined) {
      bytes += ENCODING_HEADER.length + 4 + encoding.length;
    }
    if (headers !== undefined) {
      for (const key in headers) {
        bytes += 4 + byteLength(key) + byteLength(headers[key]!);
      }
    }
    return bytes;
  }

  /** Queues a message `encode` made; a promise when the list is full. */
  send(outgoing: Outgoing, handled: Handled): Promise<void> | undefined {
    outgoing.handled = handled;
    if (outgoing.inPayload) {
      outgoing.payload[this.#markAt] = MARK_BYTES[handled];
    }
    outgoing.seq = ++this.#seq;
    this.#pending.push(outgoing);
    this.#pendingBytes += outgoing.payload.length;
    if (this.#parts.link.up && this.#paused === undefined) {
      if (this.#goesAlone()) {
        // A lone request or reply waits for nothing, and costs no turn.
        this.#sent++;
        this.#write(outgoing);
        this.#confirmSoon();
      } else {
        this.#scheduleFlush();
      }
    }
    if (this.#hasRoom()) return undefined;
    return (this.#room ??= Promise.withResolvers<void>()).promise;
  }

  /**
   * Whether the message just queued goes out at once: nothing before it is
   * unwritten, no turn's write is due, and nothing went out alone in the
   * last `ALONE_GAP_MS`.
   */
  #goesAlone(): boolean {
    if (this.#flushScheduled || this.#sent !== this.#pending.length - 1) {
      return false;
    }
    const now = this.#now();
    if (now - this.#lastAlone < ALONE_GAP_MS) return false;
    this.#lastAlone = now;
    return true;
  }

  #hasRoom(): boolean {
    return this.#pending.length < PENDING_MESSAGES &&
      this.#pendingBytes < PENDING_BYTES;
  }

  /**
   * NUL, the publisher, a line feed: made once per service, marked `none`
   * (`send` sets the mark in the payload).
   */
  #fromLine(service: string): Uint8Array {
    if (service === this.#lastService) return this.#lastLine;
    let line = this.#fromLines.get(service);
    if (line === undefined) {
      if (this.#fromLines.size >= 1024) this.#fromLines.clear();
      line = encoder.encode(`\u0000${this.#from(service, "none")}\n`);
      this.#fromLines.set(service, line);
    }
    this.#lastService = service;
    this.#lastLine = line;
    return line;
  }

  /**
   * The UTF-8 bytes of JSON `text`, after `line` when there is one: in the
   * slab when the text is short (views of one slab, which is never written
   * twice, stay valid while their messages are pending).
   */
  #place(line: Uint8Array | undefined, text: string): Uint8Array {
    const head = line === undefined ? 0 : line.length;
    if (text.length > SLAB_TEXT) {
      const bytes = encoder.encode(text);
      if (line === undefined) return bytes;
      const payload = new Uint8Array(head + bytes.length);
      payload.set(line);
      payload.set(bytes, head);
      return payload;
    }
    // At most three bytes per UTF-16 code unit.
    if (this.#slabUsed + head + 3 * text.length > this.#slab.length) {
      this.#slab = new Uint8Array(Math.max(SLAB_BYTES, head + 3 * SLAB_TEXT));
      this.#slabUsed = 0;
    }
    const start = this.#slabUsed;
    if (line !== undefined) this.#slab.set(line, start);
    const { written } = encoder.encodeInto(
      text,
      this.#slab.subarray(start + head),
    );
    this.#slabUsed = start + head + written;
    return this.#slab.subarray(start, this.#slabUsed);
  }

  /** The NATS headers of a message, or `undefined` when it needs none. */
  #headersOf(outgoing: Outgoing): MsgHdrs | undefined {
    const { headers, encoding, handled, service } = outgoing;
    if (headers === undefined && encoding === undefined) {
      if (service === undefined || outgoing.inPayload) return undefined;
      // One header object per service and mark, made once.
      const key = `${handled}\u0000${service}`;
      let hdrs = this.#fromHeaders.get(key);
      if (hdrs === undefined) {
        if (this.#fromHeaders.size >= 1024) this.#fromHeaders.clear();
        hdrs = this.#newHeaders!();
        hdrs.set(FROM_HEADER, this.#from(service, handled));
        this.#fromHeaders.set(key, hdrs);
      }
      return hdrs;
    }
    const hdrs = this.#newHeaders!();
    if (headers !== undefined) {
      for (const key in headers) hdrs.set(key, headers[key]!);
    }
    if (encoding !== undefined) hdrs.set(ENCODING_HEADER, encoding);
    if (service !== undefined) {
      hdrs.set(FROM_HEADER, this.#from(service, handled));
    }
    return hdrs;
  }

  /** Hands a message to the client (connected, so the client is loaded). */
  #write(outgoing: Outgoing): void {
    const connection = this.#parts.link.connection!;
    try {
      const headers = this.#headersOf(outgoing);
      if (outgoing.reply === undefined && headers === undefined) {
        connection.publish(outgoing.subject, outgoing.payload);
      } else {
        connection.publish(outgoing.subject, outgoing.payload, {
          reply: outgoing.reply,
          headers,
        });
      }
    } catch (error) {
      // Refused for good (a bad header): it would be refused again, so it
      // is reported and dropped from the list.
      this.#parts.log.error(
        `NATS refused a message on "${outgoing.queue}": ${errorMessage(error)}`,
      );
      outgoing.payload = new Uint8Array(0);
      outgoing.subject = "";
    }
  }

  /**
   * Once per turn of the event loop: hands the client, in order, what has
   * not gone out on this connection, and flushes. Writing per turn, not per
   * publish, lets the client put a turn's messages in one socket write; the
   * flush's PONG confirms them.
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#parts.scheduler.defer(() => {
      this.#flushScheduled = false;
      if (this.#writeUnsent()) this.#confirmSoon();
    });
  }

  /** What went out is confirmed by a flush within `CONFIRM_EVERY_MS`. */
  #confirmSoon(): void {
    this.#confirmTimer ??= setTimeout(
      () => this.#confirmNow(),
      CONFIRM_EVERY_MS,
    );
  }

  /**
   * Hands the client, in order, what has not gone out on this connection;
   * returns `false` when nothing may be written now (down or paused).
   */
  #writeUnsent(): boolean {
    const link = this.#parts.link;
    if (!link.up || link.connection === undefined || this.#paused) return false;
    while (this.#sent < this.#pending.length) {
      const outgoing = this.#pending[this.#sent++]!;
      if (outgoing.subject !== "") this.#write(outgoing);
    }
    return true;
  }

  /**
   * Flushes: its PONG confirms what went out on this connection before it
   * (a message queued but not written yet waits for the next one).
   */
  #confirmNow(): void {
    clearTimeout(this.#confirmTimer);
    this.#confirmTimer = undefined;
    const link = this.#parts.link;
    const connection = link.connection;
    if (!link.up || connection === undefined || this.#sent === 0) return;
    const upTo = this.#pending[this.#sent - 1]!.seq;
    const generation = this.#generation;
    connection.flush().then(() => {
      if (generation === this.#generation) this.#confirm(upTo);
    }, () => {
      // Lost meanwhile: `down` resets what went out; `up` sends it again.
    });
  }

  /** Confirms what went out up to `seq` (never what was not written yet). */
  #confirm(seq: number): void {
    let count = 0;
    while (count < this.#sent && this.#pending[count]!.seq <= seq) {
      this.#pendingBytes -= this.#pending[count]!.payload.length;
      count++;
    }
    this.#pending.splice(0, count);
    this.#sent -= count;
    this.#releaseRoom();
  }

  #releaseRoom(): void {
    if (this.#room !== undefined && this.#hasRoom()) {
      this.#room.resolve();
      this.#room = undefined;
    }
  }

  /**
   * Waits (until `deadline`) for the server to confirm what was published,
   * connecting first when the link is not up yet.
   */
  async settle(deadline: number): Promise<void> {
    const link = this.#parts.link;
    while (this.#pending.length > 0) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      if (this.#paused !== undefined) {
        // Held until the others are back (or forgotten): given up at the
        // deadline, and reported.
        const resumed = await withTimeout(this.#paused.promise, left)
          .then(() => true, () => false);
        if (!resumed) break;
        continue;
      }
      if (!link.up) {
        const up = await withTimeout(link.whenUp(), left)
          .then(() => link.up, () => false);
        if (!up) break;
        // A reconnect may have paused what is held: looked at again.
        continue;
      }
      // What this turn has not written yet goes before the flush's PING:
      // its PONG confirms only what was written before it.
      // (Up and not paused here: `false` means no connection to write to.)
      if (!this.#writeUnsent()) break;
      const upTo = this.#pending[this.#sent - 1]!.seq;
      const generation = this.#generation;
      const flushed = await withTimeout(link.flush(), left).catch(() => false);
      if (!flushed) break;
      // A flush that came back on a new connection confirms nothing of the
      // old one's: what was pending is written again on the next round.
      if (generation === this.#generation) this.#confirm(upTo);
    }
  }

  /**
   * Gives up on what is still pending; returns it, per queue, with what was
   * dropped after reconnects.
   */
  abandon(): Array<{ queue: string; count: number }> {
    clearTimeout(this.#confirmTimer);
    this.#confirmTimer = undefined;
    const unsent = new Map<string, number>(this.#dropped);
    for (const outgoing of this.#pending) {
      if (outgoing.subject === "") continue;
      unsent.set(outgoing.queue, (unsent.get(outgoing.queue) ?? 0) + 1);
    }
    this.#pending = [];
    this.#room?.resolve();
    return [...unsent].map(([queue, count]) => ({ queue, count }));
  }
}

const encoder = new TextEncoder();

/** A string's UTF-8 length (its length when it is ASCII). */
function byteLength(text: string): number {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(text)
    ? text.length
    : encoder.encode(text).length;
}
