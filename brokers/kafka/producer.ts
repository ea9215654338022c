/**
 * Sends records with the connection's one kafkajs producer, and turns
 * Kafka's refusals into prpc's errors.
 *
 * @module
 */

import type { Message, Producer } from "kafkajs";
import { PayloadTooLargeError } from "../../protocol/errors.ts";
import { brokerError, kafkaErrorType } from "./client.ts";

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
