/**
 * `readResult` and `readDeadLetters` on Kafka, where results and dead letters
 * are records rather than keys. Each is backed by readers started on first
 * use and kept until the connection closes:
 *
 * - results: one reader per partition of `prpc_feedback_{queue}` (or
 *   `_raw_`) that a looked-for result can be on: the partition of its key
 *   (Kafka's default partitioner, murmur2 of `message_id`), and for a native
 *   request redelivered to a server the reply partition its request names.
 *   A reader starts at the records of the last `resultTtlSec` and keeps an
 *   index of `message_id` → offset (not the bodies) until `resultTtlSec`
 *   after each result was produced; a body is kept only while someone looks
 *   for it, and a result read before it was looked for is read again from
 *   its offset ({@linkcode TopicReader.rewind}).
 * - dead letters: a reader of `prpc_dead_{queue}` from its beginning, keeping
 *   the first {@linkcode DEAD_LETTERS_KEPT} entries, listed in the order their
 *   requests were sent (requests of different partitions are set aside in no
 *   particular order).
 *
 * Before answering, both wait until their reader has read everything the
 * topic (partition) held when the call was made, so a result or dead letter
 * produced before the call is always found; when the reader does not get
 * there within `requestTimeoutMs` (or stops), they fail with a
 * `BrokerError` rather than answer from what they have read so far. After `close()` they start no
 * reader, and one that started meanwhile is stopped at once.
 *
 * @module
 */

import { type Admin, type KafkaMessage, Partitioners, type PartitionMetadata } from "kafkajs";
import { BrokerError } from "../../protocol/errors.ts";
import type { DeadLetter } from "../types.ts";
import { brokerError } from "./client.ts";
import type { KafkaContext } from "./context.ts";
import { messageIdOf, readDeadLetter, sentMicros } from "./records.ts";
import { TopicReader } from "./reader.ts";
import { topicOffsets, topicOffsetsByTimestamp } from "./offsets.ts";

/** Dead-letter entries a connection keeps per queue (the oldest). */
export const DEAD_LETTERS_KEPT = 10_000;

/** Readers started on first use and stopped for good by `close()`. */
class Readers {
  readonly #readers = new Map<string, Promise<TopicReader>>();
  #closed = false;

  /** The reader named `name`, started by `start` on first use. */
  get(name: string, start: () => Promise<TopicReader>): Promise<TopicReader> {
    if (this.#closed) return Promise.reject(closedError());
    let reader = this.#readers.get(name);
    if (reader === undefined) {
      reader = start().then(async (started) => {
        if (!this.#closed) return started;
        await started.stop();
        throw closedError();
      });
      this.#readers.set(name, reader);
      reader.catch(() => {
        if (this.#readers.get(name) === reader) this.#readers.delete(name);
      });
    }
    return reader;
  }

  /** Stops every reader; `get` fails from now on. */
  async close(): Promise<void> {
    this.#closed = true;
    const readers = [...this.#readers.values()];
    this.#readers.clear();
    for (const reader of readers) await reader.then((r) => r.stop(), () => {});
  }
}

function closedError(): BrokerError {
  return new BrokerError("Cannot read from Kafka after the connection closed");
}

/** The end offsets of a topic's partitions, by partition. */
async function endOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  try {
    const offsets = await topicOffsets(admin, topic);
    return new Map(offsets.map(({ partition, high }) => [partition, Number(high)]));
  } catch (err) {
    throw brokerError(`Cannot read the end offsets of the Kafka topic ${topic}`, err);
  }
}

/**
 * Waits until `reader` has read up to `targets`.
 *
 * @throws {BrokerError} When it has not within `timeoutMs`, or it stopped:
 *   what it read so far may lack what is looked for.
 */
async function caughtUp(
  reader: TopicReader,
  targets: ReadonlyMap<number, number>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  if (await reader.reached(targets, timeoutMs)) return;
  throw new BrokerError(
    `Cannot read the Kafka topic ${what} up to its end offsets ${
      JSON.stringify(Object.fromEntries(targets))
    } within ${timeoutMs} ms (requestTimeoutMs), or the reader stopped`,
  );
}

/** Where a result is in its partition, and until when it counts. */
interface IndexEntry {
  offset: number;
  expiresAt: number;
}

/** What is known of one partition of a feedback topic. */
interface PartitionResults {
  reader: TopicReader;
  /** `message_id` → where its result is, in expiry order. */
  index: Map<string, IndexEntry>;
  /** `message_id`s looked for now, with how many lookups wait for each. */
  wanted: Map<string, number>;
  /** Bodies of wanted results read so far. */
  found: Map<string, string>;
  nextSweep: number;
}

/** Results by `message_id`, read from the feedback topics; see the module docs. */
export class ResultStore {
  readonly #context: KafkaContext;
  readonly #ttlMs: number;
  readonly #readers = new Readers();
  readonly #partitions = new Map<string, PartitionResults>();

  /**
   * Creates the store; its readers start on first use.
   *
   * @param context The connection's parts; `settings.resultTtlMs` is the look-back and the TTL.
   */
  constructor(context: KafkaContext) {
    this.#context = context;
    this.#ttlMs = context.settings.resultTtlMs;
  }

  /**
   * The result body produced for `messageId` on `topic` within the last `resultTtlSec`.
   *
   * @param topic `prpc_feedback_{queue}` or `prpc_feedback_raw_{queue}`.
   * @param messageId The canonical `message_id`.
   * @param replyPartitions Partitions the request may have named for its result.
   * @returns The body, or `null`.
   */
  async read(
    topic: string,
    messageId: string,
    replyPartitions: readonly number[],
  ): Promise<string | null> {
    const count = await this.#context.topics.currentPartitionCount(topic);
    if (count === undefined) return null;
    const partitions = new Set([keyPartition(messageId, count)]);
    for (const partition of replyPartitions) if (partition < count) partitions.add(partition);
    const bodies = await Promise.all(
      [...partitions].map((partition) => this.#lookUp(topic, partition, messageId)),
    );
    return bodies.find((body) => body !== null) ?? null;
  }

  /** Stops every reader and forgets what they read. */
  async close(): Promise<void> {
    await this.#readers.close();
    this.#partitions.clear();
  }

  async #lookUp(topic: string, partition: number, messageId: string): Promise<string | null> {
    const name = `${topic}/${partition}`;
    const { settings, admin } = this.#context;
    await this.#readers.get(name, () => this.#start(name, topic, partition));
    const state = this.#partitions.get(name);
    if (state === undefined) return null;
    state.wanted.set(messageId, (state.wanted.get(messageId) ?? 0) + 1);
    try {
      const end = (await endOffsets(admin, topic)).get(partition) ?? 0;
      const target = new Map([[partition, end]]);
      await caughtUp(state.reader, target, settings.requestTimeoutMs, name);
      const now = Date.now();
      this.#sweep(state, now);
      if (!state.found.has(messageId)) {
        // Read before anyone looked for it: read it again from its offset.
        const entry = state.index.get(messageId);
        if (entry === undefined || entry.expiresAt <= now) return null;
        state.reader.rewind(partition, entry.offset);
        await caughtUp(state.reader, target, settings.requestTimeoutMs, name);
      }
      return state.found.get(messageId) ?? null;
    } finally {
      const waiting = (state.wanted.get(messageId) ?? 1) - 1;
      if (waiting > 0) state.wanted.set(messageId, waiting);
      else {
        state.wanted.delete(messageId);
        state.found.delete(messageId);
      }
    }
  }

  /** Starts the reader of one partition at the first record of the last `resultTtlSec`. */
  async #start(name: string, topic: string, partition: number): Promise<TopicReader> {
    const context = this.#context;
    let start: number;
    try {
      const offsets = await topicOffsetsByTimestamp(
        context.admin,
        topic,
        Date.now() - this.#ttlMs,
      );
      start = Number(offsets.find((o) => o.partition === partition)?.offset ?? 0);
    } catch (err) {
      throw brokerError(`Cannot find where to start reading the Kafka topic ${topic}`, err);
    }
    const state: Omit<PartitionResults, "reader"> = {
      index: new Map(),
      wanted: new Map(),
      found: new Map(),
      nextSweep: 0,
    };
    const reader = await TopicReader.start({
      ...context,
      topic,
      partitions: [partition],
      start: new Map([[partition, start]]),
      onMessage: (_partition, message) => this.#collect(state, message),
    });
    this.#partitions.set(name, { ...state, reader });
    return reader;
  }

  /** Indexes a result by `message_id` (the key, else the JSON field); keeps it when wanted. */
  #collect(state: Omit<PartitionResults, "reader">, message: KafkaMessage): void {
    const body = message.value?.toString("utf8");
    if (body === undefined) return;
    const messageId = message.key?.toString("utf8") ?? messageIdOf(body);
    if (messageId === null) return;
    const expiresAt = Number(message.timestamp) + this.#ttlMs;
    // Re-inserting keeps the index in expiry order, so a sweep stops at the first live entry.
    state.index.delete(messageId);
    state.index.set(messageId, { offset: Number(message.offset), expiresAt });
    if (state.wanted.has(messageId) && expiresAt > Date.now()) state.found.set(messageId, body);
  }

  #sweep(state: PartitionResults, now: number): void {
    if (now < state.nextSweep) return;
    for (const [messageId, entry] of state.index) {
      if (entry.expiresAt > now) break;
      state.index.delete(messageId);
    }
    state.nextSweep = now + Math.min(1_000, this.#ttlMs);
  }
}

/**
 * The partition Kafka's default partitioner (the one prpc's producer and
 * most clients use) gives a record keyed by `messageId`: murmur2 of the key.
 *
 * @param messageId The key.
 * @param count The topic's partitions.
 * @returns The partition.
 */
export function keyPartition(messageId: string, count: number): number {
  const partitionMetadata: PartitionMetadata[] = Array.from({ length: count }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));
  return Partitioners.DefaultPartitioner()({
    topic: "",
    partitionMetadata,
    message: { key: messageId, value: null },
  });
}

/** Dead letters, read from `prpc_dead_{queue}`. */
export class DeadLetterStore {
  readonly #context: KafkaContext;
  readonly #readers = new Readers();
  readonly #entries = new Map<string, { order: [number, number, number]; entry: DeadLetter }[]>();

  /**
   * Creates the store; its readers start on first use.
   *
   * @param context The connection's parts.
   */
  constructor(context: KafkaContext) {
    this.#context = context;
  }

  /**
   * The entries of a dead-letter topic, in the order their requests were sent.
   *
   * @param topic `prpc_dead_{queue}`.
   * @param limit The most entries to return.
   * @returns The entries, oldest request first.
   */
  async read(topic: string, limit: number): Promise<DeadLetter[]> {
    const { admin, topics, settings } = this.#context;
    if (await topics.partitionCount(topic) === undefined) return [];
    const [reader, ends] = await Promise.all([
      this.#readers.get(topic, () => this.#start(topic)),
      endOffsets(admin, topic),
    ]);
    await caughtUp(reader, ends, settings.requestTimeoutMs, topic);
    const entries = [...this.#entries.get(topic) ?? []];
    entries.sort((a, b) =>
      a.order[0] - b.order[0] || a.order[1] - b.order[1] || a.order[2] - b.order[2]
    );
    return entries.slice(0, limit).map(({ entry }) => ({ ...entry }));
  }

  /** Stops every reader. */
  async close(): Promise<void> {
    await this.#readers.close();
  }

  /** Starts a reader of every partition at the beginning of the topic. */
  async #start(topic: string): Promise<TopicReader> {
    let start: Map<number, number>;
    try {
      const offsets = await topicOffsets(this.#context.admin, topic);
      start = new Map(offsets.map(({ partition, low }) => [partition, Number(low)]));
    } catch (err) {
      throw brokerError(`Cannot find where to start reading the Kafka topic ${topic}`, err);
    }
    return await TopicReader.start({
      ...this.#context,
      topic,
      partitions: "all",
      start,
      onMessage: (partition, message) => this.#collect(topic, partition, message),
    });
  }

  /** Keeps the entry, up to {@linkcode DEAD_LETTERS_KEPT} per topic. */
  #collect(topic: string, partition: number, message: KafkaMessage): void {
    let list = this.#entries.get(topic);
    if (list === undefined) {
      list = [];
      this.#entries.set(topic, list);
    }
    if (list.length >= DEAD_LETTERS_KEPT) return;
    const order: [number, number, number] = [
      sentMicros(message),
      partition,
      Number(message.offset),
    ];
    list.push({ order, entry: readDeadLetter(message) });
  }
}
