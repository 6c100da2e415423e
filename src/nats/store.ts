/**
 * The store shared by the processes of a run, on JetStream (see
 * `transport/remote.ts`, `SharedStore`): a log is a stream with limits
 * retention (stream `<namespace>-<name>`, the queue names as subjects under
 * that prefix, the stream sequence as `seq`); a table is a KV bucket
 * (stream `KV_<namespace>-<name>`, subjects `$KV.<bucket>.<key>`, one
 * message per key, the TTL as max age), laid out as the NATS KV clients
 * lay theirs, so `nats kv` reads it.
 *
 * It uses the pool's publishing connection: nothing more to connect.
 *
 * @module
 */
import {
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  loadJetStream,
  type NatsConnection,
  type StreamConfig,
} from "./client.ts";
import type {
  SharedLog,
  SharedLogConfig,
  SharedLogEntry,
  SharedStore,
  SharedTable,
} from "../transport/remote.ts";
import { queueToSubject, subjectToQueue } from "./subject.ts";
import { errorMessage } from "../_util/error_text.ts";

/** A table's dedupe window (as the NATS KV clients ask), in ms. */
const TABLE_DEDUPE_WINDOW = 120_000;
/** How long a read waits for entries it knows exist, in ms. */
const READ_TIMEOUT = 10_000;

const NS_PER_MS = 1_000_000;

/** The JetStream clients of one connection. */
interface Clients {
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** A name as one NATS token (letters, digits, `-`, `_`). */
function token(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** The pool's end of the shared store. */
export class NatsStore implements SharedStore {
  readonly #namespace: string;
  readonly #connection: () => Promise<NatsConnection>;
  #clients:
    | { connection: NatsConnection; clients: Promise<Clients> }
    | undefined;

  /**
   * @param namespace The run's namespace (prefix of every name).
   * @param connection Resolves with the connection once it is up.
   */
  constructor(namespace: string, connection: () => Promise<NatsConnection>) {
    this.#namespace = namespace;
    this.#connection = connection;
  }

  async log(config: SharedLogConfig): Promise<SharedLog> {
    const name = `${this.#namespace}-${token(config.name)}`;
    await this.#ensure({
      name,
      subjects: [`${name}.>`],
      retention: "limits",
      discard: "old",
      storage: "file",
      max_age: config.maxAge * NS_PER_MS,
      max_msgs_per_subject: config.maxPerKey,
      max_bytes: config.maxBytes,
      duplicate_window: Math.min(config.maxAge, config.dedupeWindow) *
        NS_PER_MS,
    });
    return new NatsLog(name, () => this.#jetStream());
  }

  async table(name: string, ttl: number): Promise<SharedTable> {
    const bucket = `${this.#namespace}-${token(name)}`;
    await this.#ensure({
      name: `KV_${bucket}`,
      subjects: [`$KV.${bucket}.>`],
      retention: "limits",
      discard: "new",
      storage: "file",
      max_age: ttl * NS_PER_MS,
      max_msgs_per_subject: 1,
      allow_rollup_hdrs: true,
      deny_delete: true,
      allow_direct: true,
      duplicate_window: Math.min(ttl, TABLE_DEDUPE_WINDOW) * NS_PER_MS,
    });
    return new NatsTable(bucket, () => this.#jetStream());
  }

  /**
   * Creates the stream, or updates it to `config`.
   *
   * @throws {Error} When neither works (JetStream off on the server, …).
   */
  async #ensure(
    config: Partial<StreamConfig> & { name: string },
  ): Promise<void> {
    const { jsm } = await this.#jetStream();
    try {
      await jsm.streams.add(config);
    } catch (error) {
      // It exists (maybe with other bounds, from another server's options).
      await jsm.streams.update(config.name, config).catch(() => {
        throw new Error(
          `Cannot open the JetStream stream "${config.name}": ${
            errorMessage(error)
          }`,
          { cause: error },
        );
      });
    }
  }

  /** The clients of the connection now (made again after a new one). */
  async #jetStream(): Promise<Clients> {
    const connection = await this.#connection();
    if (this.#clients?.connection !== connection) {
      this.#clients = {
        connection,
        clients: loadJetStream().then(async (JetStream) => ({
          js: JetStream.jetstream(connection),
          jsm: await JetStream.jetstreamManager(connection),
        })),
      };
    }
    return await this.#clients.clients;
  }
}

class NatsLog implements SharedLog {
  readonly #stream: string;
  readonly #clients: () => Promise<Clients>;

  constructor(stream: string, clients: () => Promise<Clients>) {
    this.#stream = stream;
    this.#clients = clients;
  }

  async append(key: string, data: Uint8Array, id: string): Promise<number> {
    const { js } = await this.#clients();
    const ack = await js.publish(queueToSubject(key, this.#stream), data, {
      msgID: id,
    });
    return ack.seq;
  }

  async bounds(): Promise<{ first: number; last: number }> {
    const { jsm } = await this.#clients();
    const { state } = await jsm.streams.info(this.#stream);
    return { first: state.first_seq, last: state.last_seq };
  }

  async read(after: number, until: number): Promise<SharedLogEntry[]> {
    const { first, last } = await this.bounds();
    const out: SharedLogEntry[] = [];
    if (until <= after || last <= after || first > until) return out;
    const { js } = await this.#clients();
    const consumer = await js.consumers.get(this.#stream, {
      deliver_policy: "by_start_sequence",
      opt_start_seq: Math.max(after + 1, first),
    });
    const messages = await consumer.consume();
    const timer = setTimeout(() => messages.stop(), READ_TIMEOUT);
    let done = false;
    try {
      for await (const message of messages) {
        done = message.seq >= until || message.info.pending === 0;
        if (message.seq > until) break;
        const entry = this.#entry(message);
        if (entry !== undefined) out.push(entry);
        if (done) break;
      }
    } finally {
      clearTimeout(timer);
      messages.stop();
    }
    if (!done) {
      throw new Error(
        `Cannot read the stream "${this.#stream}" up to ${until}: no message came within ${READ_TIMEOUT} ms`,
      );
    }
    return out;
  }

  follow(
    after: number,
    each: (entry: SharedLogEntry) => void,
    failed: (error: unknown) => void,
  ): { stop(): Promise<void> } {
    let stopped = false;
    let messages: ConsumerMessages | undefined;
    const consume = async (): Promise<ConsumerMessages> => {
      const { js } = await this.#clients();
      const consumer = await js.consumers.get(this.#stream, {
        deliver_policy: "by_start_sequence",
        opt_start_seq: after + 1,
      });
      return await consumer.consume({
        callback: (message: JsMsg) => {
          const entry = this.#entry(message);
          if (entry !== undefined) each(entry);
        },
      });
    };
    const started = consume().then((m): void => {
      messages = m;
      if (stopped) m.stop();
    }, failed);
    return {
      stop: async () => {
        stopped = true;
        messages?.stop();
        await started;
        await messages?.closed();
      },
    };
  }

  #entry(message: JsMsg): SharedLogEntry | undefined {
    const key = subjectToQueue(message.subject, this.#stream);
    return key === undefined ? undefined : {
      seq: message.seq,
      key,
      data: message.data,
      id: message.headers?.get("Nats-Msg-Id") || undefined,
    };
  }
}

class NatsTable implements SharedTable {
  readonly #bucket: string;
  readonly #clients: () => Promise<Clients>;

  constructor(bucket: string, clients: () => Promise<Clients>) {
    this.#bucket = bucket;
    this.#clients = clients;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const { jsm } = await this.#clients();
    const found = await jsm.streams.getMessage(`KV_${this.#bucket}`, {
      last_by_subj: this.#subject(key),
    });
    if (found === null) return undefined;
    const operation = found.header?.get("KV-Operation") ?? "";
    return operation === "" ? found.data : undefined;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const { js } = await this.#clients();
    await js.publish(this.#subject(key), value);
  }

  async delete(key: string): Promise<void> {
    const { jsm } = await this.#clients();
    await jsm.streams.purge(`KV_${this.#bucket}`, {
      filter: this.#subject(key),
    });
  }

  #subject(key: string): string {
    return `$KV.${this.#bucket}.${key}`;
  }
}
