/**
 * The carrier between pools, kept behind a small interface so that another
 * one (NATS, for several processes) can replace the BroadcastChannel without
 * touching services. Interest (which pool subscribes to what) travels
 * separately, through the subscription table the primary keeps.
 */

/** One message on the wire, with short keys: it is sent millions of times. */
export interface WireMessage {
  /** The concrete queue. */
  q: string;
  /** The data, already a structured-clone snapshot. */
  d: unknown;
  /** The publishing service. */
  f: string;
  /** `publishedAt`. */
  t: number;
  /** `replyTo`, if any. */
  r?: string | undefined;
  /** `headers`, if any. */
  h?: Readonly<Record<string, string>> | undefined;
  /** Competing-consumer targets: `[subscription id, group key, …]`. */
  g?: string[] | undefined;
  /** 1 when only the group targets should receive it. */
  o?: 1 | undefined;
  /** The publishing pool's index, when a pool forwards another's message. */
  p?: number | undefined;
}

/** Everything of a message but its data. */
export type Envelope = Omit<WireMessage, "d">;

/** Consecutive messages of a batch that share their envelope. */
export interface Run {
  envelope: Envelope;
  /** The position in `data` just after the run's last message. */
  end: number;
}

/** A batch as it arrives: who sent it and what it holds. */
export interface ReceivedBatch {
  /** The sending pool's index. */
  sender: number;
  /** Every message's data, in publish order. */
  data: unknown[];
  /** The runs that cover `data`, in order. */
  runs: Run[];
  /** Gives the sender its credit back; call once the batch is routed. */
  ack(): void;
}

/** Carries batches of messages between the pools of one program. */
export interface Transport {
  /** Sends a batch to every other pool; `false` when flow control says wait. */
  trySend(messages: WireMessage[]): boolean;
  /** Resolves when `trySend` may succeed again (or after `timeout` ms). */
  whenWritable(timeout: number): Promise<void>;
  /** Batches other pools have sent to this one that it has not routed yet. */
  pendingInbound(): number;
  /** Whether everything this pool sent has been acknowledged. */
  idle(): boolean;
  /** Sets the function that receives every batch from the other pools. */
  onReceive(handler: (batch: ReceivedBatch) => void): void;
  /** Stops receiving and sending; releases the channel. */
  close(): void;
}
