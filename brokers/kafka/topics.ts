/**
 * Creates the topics prpc uses when they are missing and grows those with
 * fewer partitions than wanted. Partitions are never removed (Kafka cannot),
 * so a topic keeps the largest count any server asked for.
 *
 * Partition counts are cached: read again when a topic is missing or too
 * small, when a partition number a request names is not in the count seen
 * (another process may have grown the topic since), and by
 * `currentPartitionCount` once the topic's count is older than
 * `metadataMaxAgeMs`. At most one read is in flight at a time, and a
 * partition that a read started after the question confirmed missing is
 * remembered as missing for {@linkcode MISSING_PARTITION_TTL_MS} (a foreign
 * header must not cost a Metadata request per result).
 *
 * A topic counts as ready only once the broker's metadata lists a leader for
 * each of its partitions. A process that creates or grows a topic, finds one
 * another process created a moment earlier, or reads a topic with a partition
 * still without a leader waits for that here, within `readyTimeoutMs`: a
 * consumer that subscribed before would fail with `UNKNOWN_TOPIC_OR_PARTITION`.
 * kafkajs's own `waitForLeaders` is not used: it gives up on the first
 * `UNKNOWN_TOPIC_OR_PARTITION`, which a KRaft broker answers for a moment
 * after it created a topic.
 *
 * @module
 */

import type { Admin } from "kafkajs";
import { BrokerError } from "../../protocol/errors.ts";
import { brokerError, errorText, kafkaErrorType } from "./client.ts";

/** A topic and the partitions it should have at least. */
export interface TopicSpec {
  /** The topic. */
  topic: string;
  /** The partitions it should have at least. */
  partitions: number;
}

/** How long a partition a fresh read found missing counts as missing without reading again. */
export const MISSING_PARTITION_TTL_MS = 1_000;

/** A read of the partition counts under way, and when it started. */
interface Refresh {
  readonly startedAt: number;
  readonly done: Promise<void>;
}

/** Errors that only mean another process created or grew the topic at the same time. */
const RACE_ERRORS = new Set(["TOPIC_ALREADY_EXISTS", "INVALID_PARTITIONS"]);

/** Errors of a metadata read that only mean a new topic is not fully there yet. */
const NOT_READY_ERRORS = new Set(["UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE"]);

/** Longest pause between two reads while waiting for a topic's leaders. */
const MAX_READY_PAUSE_MS = 250;

/** Topic administration of one broker connection, with what it has learned cached. */
export class Topics {
  readonly #admin: Admin;
  readonly #replicationFactor: number;
  readonly #maxAgeMs: number;
  readonly #readyTimeoutMs: number;
  /** Topics whose last read showed a partition without a leader. */
  readonly #leaderless = new Set<string>();
  /** Partition counts seen, by topic. */
  readonly #counts = new Map<string, number>();
  /** When each topic's count was last read, by topic. */
  readonly #readAt = new Map<string, number>();
  /** Partitions (`topic/partition`) a fresh read found missing, until when that holds. */
  readonly #missing = new Map<string, number>();
  #refreshing: Refresh | undefined;

  /**
   * Administers topics through the connection's admin client.
   *
   * @param admin A connected kafkajs admin client.
   * @param replicationFactor Replication factor of the topics it creates.
   * @param maxAgeMs How old the counts may get where freshness matters (`metadataMaxAgeMs`).
   * @param readyTimeoutMs How long to wait for the leaders of a topic another process created.
   */
  constructor(admin: Admin, replicationFactor: number, maxAgeMs: number, readyTimeoutMs: number) {
    this.#admin = admin;
    this.#replicationFactor = replicationFactor;
    this.#maxAgeMs = maxAgeMs;
    this.#readyTimeoutMs = readyTimeoutMs;
  }

  /**
   * Makes sure each topic exists with at least its partitions: creates the
   * missing ones, grows the smaller ones. Safe when other processes do the
   * same at the same time.
   *
   * @param specs The topics.
   * @throws {BrokerError} When Kafka refuses (e.g. a replication factor above the number of brokers).
   */
  async ensure(specs: readonly TopicSpec[]): Promise<void> {
    await this.#ensureCounts(specs);
    if (specs.some((spec) => this.#leaderless.has(spec.topic))) await this.#awaitLeaders(specs);
  }

  async #ensureCounts(specs: readonly TopicSpec[]): Promise<void> {
    const isEnough = (spec: TopicSpec) => (this.#counts.get(spec.topic) ?? 0) >= spec.partitions;
    let raced: unknown;
    // More than one round when another process creates or grows a topic at the same time.
    for (let round = 0; round < 3; round++) {
      if (specs.every(isEnough)) return;
      if (round > 0) await delay(100 * round); // metadata of other brokers may lag behind
      await this.#refresh();
      const missing = specs.filter((spec) => !this.#counts.has(spec.topic));
      const small = specs.filter((spec) => this.#counts.has(spec.topic) && !isEnough(spec));
      if (missing.length === 0 && small.length === 0) return;
      try {
        if (missing.length > 0) {
          await this.#admin.createTopics({
            topics: missing.map((spec) => ({
              topic: spec.topic,
              numPartitions: spec.partitions,
              replicationFactor: this.#replicationFactor,
            })),
            // kafkajs's own wait gives up on the first UNKNOWN_TOPIC_OR_PARTITION, which a
            // KRaft broker answers for a moment after creating a topic: wait in #awaitLeaders.
            waitForLeaders: false,
          });
          // Whether created here or by another process a moment ago, the leaders may lag.
          for (const spec of missing) this.#leaderless.add(spec.topic);
        }
        if (small.length > 0) {
          await this.#admin.createPartitions({
            topicPartitions: small.map((spec) => ({ topic: spec.topic, count: spec.partitions })),
          });
          // New partitions have no leader for a moment either.
          for (const spec of small) this.#leaderless.add(spec.topic);
        }
        // Done: another broker's metadata may not show it yet, so do not read it back.
        for (const spec of [...missing, ...small]) this.#counts.set(spec.topic, spec.partitions);
        return;
      } catch (err) {
        raced = err;
        if (!isRace(err)) {
          throw brokerError(
            `Cannot create or grow the Kafka topics ${
              [...missing, ...small].map((spec) => `${spec.topic} (${spec.partitions} partitions)`)
                .join(", ")
            } with replication factor ${this.#replicationFactor}`,
            err,
          );
        }
      }
    }
    throw new BrokerError(
      `Cannot get the Kafka topics ${
        specs.map((spec) => spec.topic).join(", ")
      } to their partition counts: other processes kept changing them (${errorText(raced)})`,
      { cause: raced },
    );
  }

  /**
   * The number of partitions of a topic, as last seen (read from Kafka when not seen yet).
   *
   * @param topic The topic.
   * @returns The count, or `undefined` when the topic does not exist.
   */
  async partitionCount(topic: string): Promise<number | undefined> {
    if (!this.#counts.has(topic)) await this.#refresh();
    return this.#counts.get(topic);
  }

  /**
   * The number of partitions of a topic, read again when last read more than
   * `metadataMaxAgeMs` ago (another process may have grown the topic).
   *
   * @param topic The topic.
   * @returns The count, or `undefined` when the topic does not exist.
   */
  async currentPartitionCount(topic: string): Promise<number | undefined> {
    const readAt = this.#readAt.get(topic);
    if (!this.#counts.has(topic) || readAt === undefined || Date.now() - readAt > this.#maxAgeMs) {
      await this.#refresh();
    }
    return this.#counts.get(topic);
  }

  /**
   * Whether a topic has a partition. When the count last seen is too small,
   * the counts are read again (another process may have grown the topic),
   * unless a read in the last {@linkcode MISSING_PARTITION_TTL_MS} confirmed
   * the partition missing.
   *
   * @param topic The topic.
   * @param partition The partition number.
   */
  async hasPartition(topic: string, partition: number): Promise<boolean> {
    const has = () => (this.#counts.get(topic) ?? 0) > partition;
    if (has()) return true;
    const key = `${topic}/${partition}`;
    const missingUntil = this.#missing.get(key);
    if (missingUntil !== undefined && Date.now() < missingUntil) return false;
    this.#missing.delete(key);
    const askedAt = Date.now();
    // A read that started before the question may have missed a growth just before it.
    while (!has()) {
      const refresh = this.#refreshing;
      await this.#refresh();
      if (refresh === undefined || refresh.startedAt >= askedAt) break;
    }
    if (has()) return true;
    const now = Date.now();
    // Entries are in expiry order: forget the expired ones, so foreign headers cannot pile up.
    for (const [old, until] of this.#missing) {
      if (until > now) break;
      this.#missing.delete(old);
    }
    this.#missing.set(key, now + MISSING_PARTITION_TTL_MS);
    return false;
  }

  /**
   * Reads the partition count of every topic (one Metadata request for all
   * topics); joins the read under way, if any.
   */
  #refresh(): Promise<void> {
    if (this.#refreshing === undefined) {
      const refresh: Refresh = {
        startedAt: Date.now(),
        done: this.#read().finally(() => {
          if (this.#refreshing === refresh) this.#refreshing = undefined;
        }),
      };
      this.#refreshing = refresh;
    }
    return this.#refreshing.done;
  }

  async #read(): Promise<void> {
    let topics;
    try {
      ({ topics } = await this.#admin.fetchTopicMetadata());
    } catch (err) {
      throw brokerError("Cannot read the Kafka topics", err);
    }
    this.#learn(topics);
  }

  /** Takes in what a metadata read said of the topics it listed. */
  #learn(topics: readonly TopicMetadata[]): void {
    const now = Date.now();
    for (const { name, partitions } of topics) {
      // Never below a count this connection created: metadata of other brokers may lag.
      this.#counts.set(name, Math.max(partitions.length, this.#counts.get(name) ?? 0));
      this.#readAt.set(name, now);
      if (partitions.some((partition) => partition.leader < 0)) this.#leaderless.add(name);
      else this.#leaderless.delete(name);
    }
  }

  /**
   * Reads the metadata of the topics until each lists at least its partitions,
   * each with a leader, pausing longer each time, within `readyTimeoutMs`.
   */
  async #awaitLeaders(specs: readonly TopicSpec[]): Promise<void> {
    const names = specs.map((spec) => spec.topic);
    const deadline = Date.now() + this.#readyTimeoutMs;
    let pauseMs = 10;
    let why = "no leader yet";
    while (true) {
      try {
        const { topics } = await this.#admin.fetchTopicMetadata({ topics: names });
        this.#learn(topics);
        const ready = specs.every((spec) =>
          !this.#leaderless.has(spec.topic) &&
          (topics.find((topic) => topic.name === spec.topic)?.partitions.length ?? 0) >=
            spec.partitions
        );
        if (ready) return;
      } catch (err) {
        if (!NOT_READY_ERRORS.has(kafkaErrorType(err) ?? "")) {
          throw brokerError(`Cannot read the Kafka topics ${names.join(", ")}`, err);
        }
        why = errorText(err);
      }
      if (Date.now() + pauseMs > deadline) {
        throw new BrokerError(
          `Cannot use the Kafka topics ${names.join(", ")}: the broker listed no leader for ` +
            `each of their partitions within ${this.#readyTimeoutMs} ms (${why})`,
        );
      }
      await delay(pauseMs);
      pauseMs = Math.min(pauseMs * 2, MAX_READY_PAUSE_MS);
    }
  }
}

/** What kafkajs's `fetchTopicMetadata` says of a topic. */
interface TopicMetadata {
  name: string;
  partitions: { leader: number }[];
}

function isRace(err: unknown): boolean {
  const type = kafkaErrorType(err);
  if (type !== undefined && RACE_ERRORS.has(type)) return true;
  const errors = (err as { errors?: unknown }).errors;
  return Array.isArray(errors) && errors.length > 0 &&
    errors.every((inner) => RACE_ERRORS.has(kafkaErrorType(inner) ?? ""));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
