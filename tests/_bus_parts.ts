/**
 * A few pools' buses in one thread, built from the bus's own parts
 * (`Routes`, `Outbound`, `Inbound`, `LocalSubscription`), joined by a
 * transport that holds what is sent until the test delivers it, through the
 * codec and a structured clone as on the wire. A test then chooses exactly
 * when each pool's table changes and when a message arrives.
 */
import { SubscriptionCounters } from "../src/bus/counters.ts";
import type { SubscriptionEntry } from "../src/bus/entry.ts";
import { Inbound } from "../src/bus/inbound.ts";
import { MetaFactory } from "../src/bus/meta.ts";
import { Outbound } from "../src/bus/outbound.ts";
import { Requests } from "../src/bus/requests.ts";
import { Routes } from "../src/bus/routes.ts";
import { LocalSubscription } from "../src/bus/subscription.ts";
import { Scheduler } from "../src/scheduler.ts";
import { decodeBatch, encodeBatch } from "../src/transport/codec.ts";
import type { Transport, WireMessage } from "../src/transport/transport.ts";
import type { MessageMeta } from "../src/service_context.ts";
import { quietLog } from "./_quiet_log.ts";

/**
 * Holds what is sent, and to whom; flow control says wait only between
 * {@linkcode HeldTransport.closeGate} and {@linkcode HeldTransport.open}.
 */
export class HeldTransport implements Transport {
  readonly sent: Array<{ to: readonly number[]; message: WireMessage }> = [];
  #gate: PromiseWithResolvers<void> | undefined;

  /** From now on, `send` says wait until {@linkcode HeldTransport.open}. */
  closeGate(): void {
    this.#gate = Promise.withResolvers<void>();
  }

  /** Ends the wait that {@linkcode HeldTransport.closeGate} began. */
  open(): void {
    const gate = this.#gate;
    this.#gate = undefined;
    gate?.resolve();
  }

  send(to: readonly number[], message: WireMessage): Promise<void> | undefined {
    // The data as it is now, as a transport's send takes it.
    this.sent.push({
      to,
      message: { ...message, data: structuredClone(message.data) },
    });
    return this.#gate?.promise;
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  busy(): boolean {
    return false;
  }
  held(): number {
    return 0;
  }
  onReceive(): void {}
  update(): void {}
  close(): Promise<[]> {
    return Promise.resolve([]);
  }
}

/** A message a test subscription got. */
export interface Got {
  data: unknown;
  meta: MessageMeta;
}

/** Where a {@linkcode testSubscription} is and how much it holds. */
export interface TestSubscriptionPlace {
  /** Its number (as the bus numbers them); default 0. */
  id?: number;
  queue: string;
  group?: string | undefined;
  /** Its buffer. */
  capacity: number;
}

/**
 * A subscription of service "S" on `scheduler`, one handler call at a time,
 * whose handler failures are thrown.
 */
export function testSubscription(
  scheduler: Scheduler,
  { id = 0, queue, group, capacity }: TestSubscriptionPlace,
  handler: (data: unknown, meta: MessageMeta) => void | Promise<void>,
): LocalSubscription {
  return new LocalSubscription(
    {
      scheduler,
      timeEvery: 0,
      tracing: undefined,
      handlerFailed(_subscription, error): void {
        throw error;
      },
    },
    id,
    "S",
    queue,
    handler,
    {
      group,
      concurrency: 1,
      capacity,
      counters: new SubscriptionCounters("S", queue, group),
    },
  );
}

/** One pool's bus parts. */
export class TestPool {
  readonly index: number;
  readonly name: string;
  readonly routes: Routes;
  readonly transport = new HeldTransport();
  readonly scheduler = new Scheduler();
  readonly requests: Requests;
  readonly outbound: Outbound;
  readonly inbound: Inbound;
  /** Messages no subscription could take: `queue/group`. */
  readonly lost: string[] = [];
  #metas: MetaFactory;
  #next = 0;
  #pools: readonly string[];

  constructor(index: number, pools: readonly string[]) {
    this.index = index;
    this.name = pools[index]!;
    this.#pools = pools;
    this.routes = new Routes(index);
    this.requests = new Requests(index, 1);
    this.#metas = new MetaFactory(pools);
    const parts = {
      index,
      routes: this.routes,
      requests: this.requests,
      metas: this.#metas,
      transport: this.transport,
    };
    this.outbound = new Outbound({ ...parts, scheduler: this.scheduler });
    this.inbound = new Inbound({
      ...parts,
      log: quietLog,
      lost: (queue, group) => this.lost.push(`${queue}/${group}`),
    });
  }

  /**
   * Subscribes here (numbered as the bus numbers them); returns what its
   * handler gets, the subscription and its table entry (not yet sent to
   * any other pool's table).
   */
  subscribe(queue: string, group?: string): {
    got: Got[];
    subscription: LocalSubscription;
    entry: SubscriptionEntry;
  } {
    const got: Got[] = [];
    const id = this.#next++ * this.#pools.length + this.index;
    const subscription = testSubscription(
      this.scheduler,
      { id, queue, group, capacity: 100 },
      (data, meta) => void got.push({ data, meta }),
    );
    this.routes.add(subscription);
    const entry: SubscriptionEntry = {
      id,
      poolIndex: this.index,
      pool: this.name,
      service: "S",
      queue,
      group,
    };
    return { got, subscription, entry };
  }

  close(): void {
    this.scheduler.close();
  }
}

/** Pools named `names`, each with the bus parts of {@linkcode TestPool}. */
export function testPools(names: readonly string[]): TestPool[] {
  return names.map((_, index) => new TestPool(index, names));
}

/**
 * Hands what `from` has sent so far to each pool it was sent to (encoded,
 * cloned and decoded, as on the wire), then waits until every subscription
 * of those pools has handled what it got.
 */
export async function deliver(
  from: TestPool,
  pools: readonly TestPool[],
): Promise<void> {
  const sent = from.transport.sent.splice(0);
  for (const pool of pools) {
    const messages = sent.filter((s) => s.to.includes(pool.index))
      .map((s) => s.message);
    if (messages.length === 0) continue;
    const { data, runs } = decodeBatch(
      structuredClone(encodeBatch(messages)),
    );
    pool.inbound.receive({ sender: from.index, data, runs, ack(): void {} });
  }
  for (const pool of pools) {
    await Promise.all(
      [...pool.routes.subscriptions()].map((s) => s.whenIdle()),
    );
  }
}
