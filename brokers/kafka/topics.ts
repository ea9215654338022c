/**
 * Creates the topics prpc uses when they are missing and grows those with
 * fewer partitions than wanted. Partitions are never removed (Kafka cannot),
 * so a topic keeps the largest count any server asked for.
 *
 * @module
 */

import type { Admin } from "kafkajs";
import { BrokerError } from "../../protocol/errors.ts";
import { brokerError, kafkaErrorType } from "./client.ts";

/** A topic and the partitions it should have at least. */
export interface TopicSpec {
  /** The topic. */
  topic: string;
  /** The partitions it should have at least. */
  partitions: number;
}

/** Errors that only mean another process created or grew the topic at the same time. */
const RACE_ERRORS = new Set(["TOPIC_ALREADY_EXISTS", "INVALID_PARTITIONS"]);

/** Topic administration of one broker connection, with what it has learned cached. */
export class Topics {
  readonly #admin: Admin;
  readonly #replicationFactor: number;
  /** Partition counts seen, by topic. */
  readonly #counts = new Map<string, number>();

  /**
   * Administers topics through the connection's admin client.
   *
   * @param admin A connected kafkajs admin client.
   * @param replicationFactor Replication factor of the topics it creates.
   */
  constructor(admin: Admin, replicationFactor: number) {
    this.#admin = admin;
    this.#replicationFactor = replicationFactor;
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
    const isEnough = (spec: TopicSpec) => (this.#counts.get(spec.topic) ?? 0) >= spec.partitions;
    if (specs.every(isEnough)) return;
    // More than one round when another process creates or grows a topic at the same time.
    for (let round = 0; round < 3; round++) {
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
            waitForLeaders: true,
          });
        }
        if (small.length > 0) {
          await this.#admin.createPartitions({
            topicPartitions: small.map((spec) => ({ topic: spec.topic, count: spec.partitions })),
          });
        }
      } catch (err) {
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
      } to their partition counts`,
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
   * Whether a topic has a partition, reading the topics again when the count
   * last seen is too small (another process may have grown the topic).
   *
   * @param topic The topic.
   * @param partition The partition number.
   */
  async hasPartition(topic: string, partition: number): Promise<boolean> {
    if ((this.#counts.get(topic) ?? 0) <= partition) await this.#refresh();
    return (this.#counts.get(topic) ?? 0) > partition;
  }

  /** Reads the partition count of every topic (one Metadata request for all topics). */
  async #refresh(): Promise<void> {
    let topics;
    try {
      ({ topics } = await this.#admin.fetchTopicMetadata());
    } catch (err) {
      throw brokerError("Cannot read the Kafka topics", err);
    }
    for (const { name, partitions } of topics) this.#counts.set(name, partitions.length);
  }
}

function isRace(err: unknown): boolean {
  const type = kafkaErrorType(err);
  if (type !== undefined && RACE_ERRORS.has(type)) return true;
  const errors = (err as { errors?: unknown }).errors;
  return Array.isArray(errors) && errors.length > 0 &&
    errors.every((inner) => RACE_ERRORS.has(kafkaErrorType(inner) ?? ""));
}
