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
 * When kafkajs gives up on the reader's consumer (its connection failed, say
 * while the broker restarts), the reader does not let kafkajs restart it in
 * the same group: kafkajs would join as a new member, and the coordinator,
 * which still counts the old member, would hold the join back until that
 * member's session expired (`sessionTimeoutMs`, 30 s by default), and with it
 * every result. It starts a new consumer in a new private group instead,
 * which nobody else is in, from where the old one got to, again and again
 * with growing pauses (at most {@linkcode MAX_REPLACE_PAUSE_MS}) while the
 * broker is away. The old group is left to expire: it holds no commits.
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

/** Longest pause between two tries to replace a failed consumer. */
export const MAX_REPLACE_PAUSE_MS = 2_000;

/** A running reader; see the module docs. */
export class TopicReader {
  readonly #options: TopicReaderOptions;
  #consumer: Consumer | undefined;
  /** Next offset to read, by partition. */
  readonly #progress: Map<number, number>;
  readonly #topic: string;
  #waiters: Waiter[] = [];
  #stopped = false;
  #replacing: Promise<void> | undefined;
  /** A consumer that failed while a replacement was being set up. */
  #failedWhileReplacing: Consumer | undefined;
  /** Consumers that failed and were replaced: a batch they still hand over is dropped. */
  readonly #retired = new WeakSet<Consumer>();

  private constructor(options: TopicReaderOptions) {
    this.#options = options;
    this.#topic = options.topic;
    this.#progress = new Map(options.start);
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
    const reader = new TopicReader(options);
    await reader.#open();
    return reader;
  }

  /**
   * Starts a consumer in a new private group, reading on from the progress
   * made, and makes it the reader's consumer once it has joined.
   */
  async #open(): Promise<Consumer> {
    const { settings, topic, logger } = this.#options;
    const consumer = this.#options.kafka.consumer({
      groupId: `prpc_reader_${crypto.randomUUID()}`,
      partitionAssigners: [privateAssigner(topic, this.#options.partitions)],
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
      maxWaitTimeInMs: settings.maxWaitMs,
      metadataMaxAge: settings.metadataMaxAgeMs,
      allowAutoTopicCreation: false,
      // A consumer that fails is replaced, in a new group (see the module docs).
      retry: { retries: settings.retries, restartOnFailure: () => Promise.resolve(false) },
    });
    /** A failure kafkajs does not retry, while joining. */
    let failed: Error | undefined;
    let started = false;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      for (const partition of payload.memberAssignment[topic] ?? []) {
        const next = this.#progress.get(partition);
        if (next !== undefined) consumer.seek({ topic, partition, offset: String(next) });
      }
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!started) {
        failed ??= payload.error;
        return;
      }
      logger.debug(`the reader of ${topic} failed; reading on in a new group`, {
        error: errorText(payload.error),
      });
      // Failed while it was still being set up as a replacement: replaced once that ends.
      if (this.#replacing !== undefined) this.#failedWhileReplacing = consumer;
      else this.#replace(consumer);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: ({ batch, isStale }) => {
          // Fetched before a rewind: the records come again from the rewound offset.
          if (isStale() || this.#retired.has(consumer)) return Promise.resolve();
          this.#take(batch.partition, batch.messages, Number(batch.lastOffset()) + 1);
          return Promise.resolve();
        },
      });
      // run() resolves after the first join, also when it failed.
      if (failed !== undefined) throw failed;
    } catch (err) {
      await consumer.disconnect().catch(() => {});
      throw brokerError(`Cannot start reading the Kafka topic ${topic}`, err);
    }
    started = true;
    this.#consumer = consumer;
    return consumer;
  }

  /** Hands a batch's records on and notes how far the partition has been read. */
  #take(partition: number, messages: KafkaMessage[], next: number): void {
    for (const message of messages) {
      try {
        this.#options.onMessage(partition, message);
      } catch (err) {
        // One bad record must not make kafkajs read the batch again (and hand out the rest twice).
        this.#options.logger.error(`cannot take a record read from ${this.#topic}`, {
          error: errorText(err),
        });
      }
    }
    if (next > (this.#progress.get(partition) ?? 0)) this.#progress.set(partition, next);
    this.#wake();
  }

  /** Replaces a failed consumer, trying again with growing pauses until it works or the reader stops. */
  #replace(failed: Consumer): void {
    if (this.#stopped || this.#consumer !== failed || this.#replacing !== undefined) return;
    this.#retired.add(failed);
    this.#replacing = (async () => {
      failed.disconnect().catch(() => {});
      let pauseMs = 100;
      while (!this.#stopped) {
        try {
          const consumer = await this.#open();
          if (this.#stopped) {
            await consumer.disconnect().catch(() => {});
            return;
          }
          this.#options.logger.debug(`the reader of ${this.#topic} reads on in a new group`);
          return;
        } catch (err) {
          this.#options.logger.debug(`cannot start the reader of ${this.#topic} again yet`, {
            error: errorText(err),
            retryInMs: pauseMs,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        pauseMs = Math.min(pauseMs * 2, MAX_REPLACE_PAUSE_MS);
      }
    })().finally(() => {
      this.#replacing = undefined;
      const failedMeanwhile = this.#failedWhileReplacing;
      this.#failedWhileReplacing = undefined;
      if (failedMeanwhile !== undefined) this.#replace(failedMeanwhile);
    });
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
    // While a consumer is being replaced, the new one starts from the progress set here.
    if (this.#replacing !== undefined) return;
    try {
      this.#consumer?.seek({ topic: this.#topic, partition, offset: String(offset) });
    } catch {
      // Not running (it failed a moment ago): its replacement starts from the progress.
    }
  }

  /** Stops reading and leaves the group. Waiting callers get `false`. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const waiter of [...this.#waiters]) waiter.resolve(false);
    await this.#replacing;
    await this.#consumer?.disconnect().catch(() => {});
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
