/**
 * `readResult` and `readDeadLetters` on Kafka, where results and dead letters
 * are records rather than keys. Each is backed by a reader of the topic,
 * started on first use and kept until the connection closes:
 *
 * - results: a reader of `prpc_feedback_{queue}` (or `_raw_`) from the
 *   records of the last `resultTtlSec`, keeping each result body by
 *   `message_id` until `resultTtlSec` after it was produced;
 * - dead letters: a reader of `prpc_dead_{queue}` from its beginning, keeping
 *   the first {@linkcode DEAD_LETTERS_KEPT} entries, listed in the order their
 *   requests were sent (requests of different partitions are set aside in no
 *   particular order).
 *
 * Before answering, both wait until their reader has read everything the
 * topic held when the call was made, so a result or dead letter produced
 * before the call is always found.
 *
 * @module
 */

import type { Admin, KafkaMessage } from "kafkajs";
import { canonicalMessageId } from "../../protocol/envelope.ts";
import type { DeadLetter } from "../types.ts";
import { brokerError } from "./client.ts";
import type { KafkaContext } from "./context.ts";
import { readDeadLetter, sentMicros } from "./records.ts";
import { TopicReader } from "./reader.ts";

/** Dead-letter entries a connection keeps per queue (the oldest). */
export const DEAD_LETTERS_KEPT = 10_000;

/** A lazily started reader of each topic and what it has collected. */
export abstract class TopicStore {
  readonly #context: KafkaContext;
  readonly #readers = new Map<string, Promise<TopicReader>>();

  /**
   * Creates the store; its readers start on first use.
   *
   * @param context The connection's parts.
   */
  constructor(context: KafkaContext) {
    this.#context = context;
  }

  /** Where a new reader of `topic` starts, by partition. */
  protected abstract startOffsets(admin: Admin, topic: string): Promise<Map<number, number>>;

  /** Takes one record read from `topic`. */
  protected abstract collect(topic: string, partition: number, message: KafkaMessage): void;

  /**
   * Makes sure the reader of `topic` has read everything the topic holds now.
   *
   * @returns `false` when the topic does not exist.
   */
  protected async catchUp(topic: string): Promise<boolean> {
    const { admin, topics, settings } = this.#context;
    if (await topics.partitionCount(topic) === undefined) return false;
    let reader = this.#readers.get(topic);
    if (reader === undefined) {
      reader = this.#start(topic);
      this.#readers.set(topic, reader);
      reader.catch(() => this.#readers.delete(topic));
    }
    const [started, ends] = await Promise.all([reader, this.#ends(admin, topic)]);
    await started.reached(ends, settings.requestTimeoutMs);
    return true;
  }

  async #start(topic: string): Promise<TopicReader> {
    const context = this.#context;
    let start: Map<number, number>;
    try {
      start = await this.startOffsets(context.admin, topic);
    } catch (err) {
      throw brokerError(`Cannot find where to start reading the Kafka topic ${topic}`, err);
    }
    return await TopicReader.start({
      ...context,
      topic,
      partitions: "all",
      start,
      onMessage: (partition, message) => this.collect(topic, partition, message),
    });
  }

  async #ends(admin: Admin, topic: string): Promise<Map<number, number>> {
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      return new Map(offsets.map(({ partition, high }) => [partition, Number(high)]));
    } catch (err) {
      throw brokerError(`Cannot read the end offsets of the Kafka topic ${topic}`, err);
    }
  }

  /** Stops every reader. */
  async stop(): Promise<void> {
    const readers = [...this.#readers.values()];
    this.#readers.clear();
    for (const reader of readers) await reader.then((r) => r.stop(), () => {});
  }
}

interface StoredResult {
  body: string;
  expiresAt: number;
}

/** Results by `message_id`, read from the feedback topics. */
export class ResultStore extends TopicStore {
  readonly #ttlMs: number;
  readonly #results = new Map<string, StoredResult>();
  #nextSweep = 0;

  /**
   * Creates the store; its readers start on first use.
   *
   * @param context The connection's parts; `settings.resultTtlMs` is the look-back and the TTL.
   */
  constructor(context: KafkaContext) {
    super(context);
    this.#ttlMs = context.settings.resultTtlMs;
  }

  /**
   * The result body produced for `messageId` on `topic` within the last `resultTtlSec`.
   *
   * @param topic `prpc_feedback_{queue}` or `prpc_feedback_raw_{queue}`.
   * @param messageId The canonical `message_id`.
   * @returns The body, or `null`.
   */
  async read(topic: string, messageId: string): Promise<string | null> {
    if (!await this.catchUp(topic)) return null;
    const now = Date.now();
    if (now >= this.#nextSweep) this.#sweep(now);
    const stored = this.#results.get(`${topic}\n${messageId}`);
    return stored !== undefined && stored.expiresAt > now ? stored.body : null;
  }

  /** Starts at the first record of the last `resultTtlSec`. */
  protected override async startOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
    const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - this.#ttlMs);
    return new Map(offsets.map(({ partition, offset }) => [partition, Number(offset)]));
  }

  /** Keeps the result body by `message_id` (the key, else the JSON field). */
  protected override collect(topic: string, _partition: number, message: KafkaMessage): void {
    const body = message.value?.toString("utf8");
    if (body === undefined) return;
    const messageId = message.key?.toString("utf8") ?? messageIdOf(body);
    if (messageId === null) return;
    const expiresAt = Number(message.timestamp) + this.#ttlMs;
    const key = `${topic}\n${messageId}`;
    // Re-inserting keeps the map in expiry order, so a sweep stops at the first live entry.
    this.#results.delete(key);
    this.#results.set(key, { body, expiresAt });
  }

  #sweep(now: number): void {
    for (const [key, stored] of this.#results) {
      if (stored.expiresAt > now) break;
      this.#results.delete(key);
    }
    this.#nextSweep = now + Math.min(1_000, this.#ttlMs);
  }
}

/** Dead letters, read from `prpc_dead_{queue}`. */
export class DeadLetterStore extends TopicStore {
  readonly #entries = new Map<string, { order: [number, number, number]; entry: DeadLetter }[]>();

  /**
   * The entries of a dead-letter topic, in the order their requests were sent.
   *
   * @param topic `prpc_dead_{queue}`.
   * @param limit The most entries to return.
   * @returns The entries, oldest request first.
   */
  async read(topic: string, limit: number): Promise<DeadLetter[]> {
    if (!await this.catchUp(topic)) return [];
    const entries = [...this.#entries.get(topic) ?? []];
    entries.sort((a, b) =>
      a.order[0] - b.order[0] || a.order[1] - b.order[1] || a.order[2] - b.order[2]
    );
    return entries.slice(0, limit).map(({ entry }) => ({ ...entry }));
  }

  /** Starts at the beginning of the topic. */
  protected override async startOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map(({ partition, low }) => [partition, Number(low)]));
  }

  /** Keeps the entry, up to {@linkcode DEAD_LETTERS_KEPT} per topic. */
  protected override collect(topic: string, partition: number, message: KafkaMessage): void {
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

function messageIdOf(body: string): string | null {
  try {
    return canonicalMessageId((JSON.parse(body) as { message_id?: unknown })?.message_id);
  } catch {
    return null;
  }
}
