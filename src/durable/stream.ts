/**
 * A durable stream on the main thread: its log, its dedupe window and its
 * consumers (loaded from their files, so a consumer that is down keeps its
 * messages stored).
 *
 * @module
 */
import { AckFile } from "./ack_file.ts";
import { Consumer, type Deliver } from "./consumer.ts";
import { DedupeWindow } from "./dedupe.ts";
import { StreamLog } from "./stream_log.ts";
import type { EncodedMessage } from "./protocol.ts";
import type { CutTail } from "./segment.ts";

/** Options of {@linkcode Stream.open}. */
export interface StreamOptions {
  directory: string;
  segmentBytes: number;
  dedupeWindow: number;
  deliver: Deliver;
  failed(error: unknown): void;
}

/** The name of the consumer of `member`: its file's stem. */
export function consumerName(
  queue: string,
  group: string | undefined,
  service: string,
): string {
  const e = encodeURIComponent;
  return group !== undefined
    ? `group+${e(queue)}+${e(group)}`
    : `service+${e(queue)}+${e(service)}`;
}

/** One durable stream. */
export class Stream {
  readonly pattern: string;
  readonly log: StreamLog;
  readonly consumers = new Map<string, Consumer>();
  /** Messages published on it so far in this run (duplicates not counted). */
  stored = 0;
  /** Publishes dropped as duplicates. */
  duplicates = 0;
  #options: StreamOptions;
  #dedupe: DedupeWindow;
  /** Ids whose message is being stored: a duplicate waits for it. */
  #storing = new Map<string, Promise<unknown>>();
  #compacting: Promise<void> | undefined;

  private constructor(pattern: string, log: StreamLog, options: StreamOptions) {
    this.pattern = pattern;
    this.log = log;
    this.#options = options;
    this.#dedupe = new DedupeWindow(options.dedupeWindow);
    for (const { id, storedAt } of log.recent) this.#dedupe.add(id, storedAt);
    log.onSynced = () => {
      for (const consumer of this.consumers.values()) consumer.pump();
    };
  }

  /** Opens the stream `pattern` under `options.directory`, and its consumers. */
  static async open(pattern: string, options: StreamOptions): Promise<Stream> {
    const directory = `${options.directory}/${encodeURIComponent(pattern)}`;
    const log = await StreamLog.open(directory, {
      segmentBytes: options.segmentBytes,
      recentWindow: options.dedupeWindow,
    });
    const stream = new Stream(pattern, log, options);
    await Deno.mkdir(`${directory}/consumers`, { recursive: true });
    for await (const entry of Deno.readDir(`${directory}/consumers`)) {
      if (!entry.isFile || !entry.name.endsWith(".ack")) continue;
      const name = entry.name.slice(0, -4);
      const filter = decodeURIComponent(name.split("+")[1] ?? "");
      if (filter === "") continue;
      await stream.#openConsumer(name, filter);
    }
    return stream;
  }

  /** Tails cut when the log opened. */
  get cut(): readonly CutTail[] {
    return this.log.cut;
  }

  /** The consumer `name`, opened (and created on disk) when new. */
  async consumer(name: string, filter: string): Promise<Consumer> {
    return this.consumers.get(name) ?? await this.#openConsumer(name, filter);
  }

  async #openConsumer(name: string, filter: string): Promise<Consumer> {
    const file = await AckFile.open(
      `${this.log.directory}/consumers/${name}.ack`,
    );
    const log = this.log;
    const consumer = new Consumer(
      name,
      filter,
      {
        pattern: this.pattern,
        get firstSeq() {
          return log.firstSeq;
        },
        get syncedSeq() {
          return log.syncedSeq;
        },
        read: (from, max) => log.read(from, max),
        advanced: () => this.#compact(),
        failed: this.#options.failed,
      },
      file,
      this.#options.deliver,
    );
    this.consumers.set(name, consumer);
    return consumer;
  }

  /**
   * Stores `message`; resolves once it is on disk, or at once for an `id`
   * seen within the dedupe window (after the first is stored, if it is
   * being stored).
   */
  async publish(message: EncodedMessage): Promise<void> {
    const now = Date.now();
    const id = message.id;
    if (id !== undefined) {
      const storing = this.#storing.get(id);
      if (storing !== undefined || this.#dedupe.has(id, now)) {
        this.duplicates++;
        await storing;
        return;
      }
    }
    const append = this.log.append([message.body], now);
    if (id === undefined) {
      await append;
      this.stored++;
      return;
    }
    this.#storing.set(id, append);
    try {
      await append;
      this.stored++;
      this.#dedupe.add(id, now);
    } finally {
      this.#storing.delete(id);
    }
  }

  /** Removes the segments every consumer is past (none without consumers). */
  #compact(): void {
    if (this.#compacting !== undefined || this.consumers.size === 0) return;
    let floor = Infinity;
    for (const consumer of this.consumers.values()) {
      floor = Math.min(floor, consumer.floor);
    }
    this.#compacting = this.log.removeBefore(floor).then(
      () => {},
      this.#options.failed,
    ).finally(() => {
      this.#compacting = undefined;
    });
  }

  /** Closes its consumers, then its log. */
  async close(): Promise<void> {
    for (const consumer of this.consumers.values()) await consumer.close();
    while (this.#compacting !== undefined) await this.#compacting;
    await this.log.close();
  }
}
