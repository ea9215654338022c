/**
 * A reader of chosen partitions of one topic, from chosen offsets, without
 * commits: what kafkajs offers only as a consumer group, so each reader is the
 * single member of a private group (`prpc_reader_{uuid}`) whose assigner
 * gives it exactly its partitions. It never commits, so Kafka drops the group
 * when the reader stops.
 *
 * The reader remembers how far it got in each partition and seeks back there
 * after every (re)join, so a restart of the kafkajs consumer neither skips nor
 * repeats records, and callers can wait until it has read everything up to
 * given offsets ({@linkcode TopicReader.reached}). {@linkcode TopicReader.rewind}
 * reads a partition again from an earlier offset.
 *
 * @module
 */

import type { Consumer, KafkaMessage } from "kafkajs";
import { privateAssigner } from "./assigners.ts";
import { brokerError, errorText } from "./client.ts";
import type { KafkaContext } from "./context.ts";

/** Options of {@linkcode TopicReader.start}. */
export interface TopicReaderOptions extends Pick<KafkaContext, "kafka" | "settings" | "logger"> {
  /** The topic to read. */
  topic: string;
  /** Partitions to read: a list, or all (including partitions added later). */
  partitions: "all" | readonly number[];
  /** Where to start, by partition. Partitions without a start are read from their beginning. */
  start: ReadonlyMap<number, number>;
  /** Called for each record, in offset order per partition. */
  onMessage(partition: number, message: KafkaMessage): void;
}

interface Waiter {
  targets: ReadonlyMap<number, number>;
  resolve(reached: boolean): void;
}

/** A running reader; see the module docs. */
export class TopicReader {
  readonly #consumer: Consumer;
  /** Next offset to read, by partition. */
  readonly #progress: Map<number, number>;
  readonly #topic: string;
  #waiters: Waiter[] = [];
  #stopped = false;

  private constructor(consumer: Consumer, topic: string, start: ReadonlyMap<number, number>) {
    this.#consumer = consumer;
    this.#topic = topic;
    this.#progress = new Map(start);
  }

  /**
   * Starts reading; resolves once the reader has joined its group and its
   * start offsets are set, so every record at or after them will be read.
   *
   * @param options Topic, partitions, start offsets and the record callback.
   * @returns The reader.
   * @throws {BrokerError} When the group cannot be joined (kafkajs gave up).
   */
  static async start(options: TopicReaderOptions): Promise<TopicReader> {
    const { settings, topic } = options;
    const consumer = options.kafka.consumer({
      groupId: `prpc_reader_${crypto.randomUUID()}`,
      partitionAssigners: [privateAssigner(topic, options.partitions)],
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
      maxWaitTimeInMs: settings.maxWaitMs,
      metadataMaxAge: settings.metadataMaxAgeMs,
      allowAutoTopicCreation: false,
    });
    const reader = new TopicReader(consumer, topic, options.start);
    /** A failure kafkajs does not retry, while joining. */
    let failed: Error | undefined;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      for (const partition of payload.memberAssignment[topic] ?? []) {
        const next = reader.#progress.get(partition);
        if (next !== undefined) consumer.seek({ topic, partition, offset: String(next) });
      }
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) failed ??= payload.error;
      const log = payload.restart ? options.logger.debug : options.logger.warn;
      log.call(options.logger, `the reader of ${topic} failed`, {
        error: errorText(payload.error),
        restarting: payload.restart,
      });
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: ({ batch, isStale }) => {
          // Fetched before a rewind: the records come again from the rewound offset.
          if (isStale()) return Promise.resolve();
          for (const message of batch.messages) {
            try {
              options.onMessage(batch.partition, message);
            } catch (err) {
              // One bad record must not make kafkajs read the batch again (and hand out the rest twice).
              options.logger.error(`cannot take a record read from ${topic}`, {
                error: errorText(err),
              });
            }
          }
          const next = Number(batch.lastOffset()) + 1;
          if (next > (reader.#progress.get(batch.partition) ?? 0)) {
            reader.#progress.set(batch.partition, next);
          }
          reader.#wake();
          return Promise.resolve();
        },
      });
      // run() resolves after the first join, also when it failed.
      if (failed !== undefined) throw failed;
    } catch (err) {
      await consumer.disconnect().catch(() => {});
      throw brokerError(`Cannot start reading the Kafka topic ${topic}`, err);
    }
    return reader;
  }

  /**
   * Waits until the reader has read every record before `targets` (the next
   * offset to read has reached the target in each partition).
   *
   * @param targets Offsets by partition, e.g. the ends of the partitions a moment ago.
   * @param timeoutMs How long to wait at most.
   * @returns Whether the targets were reached in time.
   */
  reached(targets: ReadonlyMap<number, number>, timeoutMs: number): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    if (this.#hasReached(targets)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), timeoutMs);
      const waiter: Waiter = { targets, resolve: (reached) => finish(reached) };
      const finish = (reached: boolean) => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((other) => other !== waiter);
        resolve(reached);
      };
      this.#waiters.push(waiter);
    });
  }

  /**
   * Reads a partition again from `offset` (it must be one the reader has read
   * past); {@linkcode TopicReader.reached} waits for the records again.
   *
   * @param partition The partition.
   * @param offset The first offset to read again.
   */
  rewind(partition: number, offset: number): void {
    if (this.#stopped || offset >= (this.#progress.get(partition) ?? 0)) return;
    this.#progress.set(partition, offset);
    this.#consumer.seek({ topic: this.#topic, partition, offset: String(offset) });
  }

  /** Stops reading and leaves the group. Waiting callers get `false`. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const waiter of [...this.#waiters]) waiter.resolve(false);
    await this.#consumer.disconnect().catch(() => {});
  }

  #hasReached(targets: ReadonlyMap<number, number>): boolean {
    for (const [partition, target] of targets) {
      if ((this.#progress.get(partition) ?? 0) < target) return false;
    }
    return true;
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) {
      if (this.#hasReached(waiter.targets)) waiter.resolve(true);
    }
  }
}
