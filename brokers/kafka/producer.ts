/**
 * Sends records with the connection's one kafkajs producer, and turns
 * Kafka's refusals into prpc's errors.
 *
 * Records sent with {@linkcode RecordSender.sendSoon} in one turn of the event
 * loop go out together, in one Produce request (`sendBatch`, `acks: -1`),
 * as long as their values add up to less than the record limit: a server
 * that finishes many calls at once sends their results in one round trip
 * instead of one each. Should such a request fail, each of its records is
 * sent again on its own, so that each gets its own outcome (a record Kafka
 * took before the failure may then be there twice: a result or a dead letter
 * that readers find twice, never a request that runs twice, since requests
 * are sent one by one with {@linkcode RecordSender.send}).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Message, Producer, TopicMessages } from "kafkajs";
import { PayloadTooLargeError } from "../../protocol/errors.ts";
import { brokerError, kafkaErrorType } from "./client.ts";
import { RECORD_OVERHEAD_BYTES } from "./records.ts";

/** A record waiting for the end of the turn. */
interface Queued {
  readonly topic: string;
  readonly message: Message;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** Most records in one Produce request of {@linkcode RecordSender.sendSoon}. */
const MAX_BATCH_RECORDS = 500;

/** Bytes a record's value counts for in a batch's size. */
function valueBytes(message: Message): number {
  const value = message.value;
  if (typeof value === "string") return value.length * 3; // UTF-8 bytes, at most
  return value?.byteLength ?? 0;
}

/** The producer of one broker connection. */
export class RecordSender {
  readonly #producer: Producer;
  readonly #recordLimit: number;

  /**
   * Wraps the connection's producer.
   *
   * @param producer A connected kafkajs producer (`acks: -1` is used for every send).
   * @param recordLimit The record limit in use (the `maxMessageBytes` setting, else the
   *   brokers' `message.max.bytes`), named in the error when Kafka refuses a record.
   */
  constructor(producer: Producer, recordLimit: number) {
    this.#producer = producer;
    this.#recordLimit = recordLimit;
  }

  #queued: Queued[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;

  /**
   * Sends a record together with the others sent this turn (see the module docs).
   *
   * @param topic The topic.
   * @param message The record.
   * @throws {PayloadTooLargeError} When Kafka refuses the record as too large.
   * @throws {BrokerError} When Kafka cannot be reached or refuses otherwise.
   */
  sendSoon(topic: string, message: Message): Promise<void> {
    const bytes = valueBytes(message) + RECORD_OVERHEAD_BYTES;
    if (
      this.#queued.length >= MAX_BATCH_RECORDS ||
      (this.#queued.length > 0 && this.#queuedBytes + bytes > this.#recordLimit)
    ) {
      this.#flush();
    }
    return new Promise((resolve, reject) => {
      this.#queued.push({ topic, message, resolve, reject });
      this.#queuedBytes += bytes;
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => {
          this.#flushScheduled = false;
          this.#flush();
        });
      }
    });
  }

  /** Sends what is queued now; the scheduled flush then finds less, or nothing. */
  #flush(): void {
    const batch = this.#queued;
    if (batch.length === 0) return;
    this.#queued = [];
    this.#queuedBytes = 0;
    void this.#sendBatch(batch);
  }

  async #sendBatch(batch: Queued[]): Promise<void> {
    if (batch.length > 1) {
      const byTopic = new Map<string, Message[]>();
      for (const { topic, message } of batch) {
        const messages = byTopic.get(topic);
        if (messages === undefined) byTopic.set(topic, [message]);
        else messages.push(message);
      }
      const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({
        topic,
        messages,
      }));
      try {
        await this.#producer.sendBatch({ topicMessages, acks: -1 });
        for (const queued of batch) queued.resolve();
        return;
      } catch {
        // Each record again on its own, for an outcome of its own.
      }
    }
    await Promise.all(
      batch.map((queued) =>
        this.send(queued.topic, queued.message).then(queued.resolve, queued.reject)
      ),
    );
  }

  /**
   * Sends one record and waits until every in-sync replica has it.
   *
   * @param topic The topic.
   * @param message The record.
   * @throws {PayloadTooLargeError} When Kafka refuses the record as too large.
   * @throws {BrokerError} When Kafka cannot be reached or refuses otherwise.
   */
  async send(topic: string, message: Message): Promise<void> {
    try {
      await this.#producer.send({ topic, messages: [message], acks: -1 });
    } catch (err) {
      if (kafkaErrorType(err) === "MESSAGE_TOO_LARGE") {
        const size = typeof message.value === "string"
          ? new TextEncoder().encode(message.value).length
          : undefined;
        throw new PayloadTooLargeError(
          `Cannot publish ${
            size ?? "a"
          } bytes to ${topic}: Kafka refused the record as too large ` +
            `(MESSAGE_TOO_LARGE); the broker's message.max.bytes (or the topic's ` +
            `max.message.bytes) is below the record limit in use (${this.#recordLimit})`,
          { size, cause: err },
        );
      }
      throw brokerError(`Cannot publish to the Kafka topic ${topic}`, err);
    }
  }
}
