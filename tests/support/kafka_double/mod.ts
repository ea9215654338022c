/**
 * Test double, not a Kafka: a single-node Kafka protocol server for the tests,
 * never exported by the package. It speaks the Kafka wire protocol on loopback
 * TCP, in the API versions kafkajs 2.2.4 uses (see `handlers/mod.ts`), keeps
 * topics, record batches and committed offsets in memory, and coordinates
 * consumer groups (rebalances, generations, session timeouts). Topics are never
 * created automatically: create them with the admin client.
 *
 * @example Start, use with kafkajs, close
 * ```ts
 * import assert from "node:assert/strict";
 * import { Kafka, logLevel } from "kafkajs";
 * const kafkaDouble = await startKafkaDouble();
 * const kafka = new Kafka({ brokers: [kafkaDouble.url], logLevel: logLevel.NOTHING });
 * const admin = kafka.admin();
 * await admin.connect();
 * await admin.createTopics({ topics: [{ topic: "doc_topic", numPartitions: 2 }] });
 * assert.deepEqual(await admin.listTopics(), ["doc_topic"]);
 * await admin.disconnect();
 * await kafkaDouble.close();
 * ```
 *
 * @module
 */

import type { BrokerState } from "./broker.ts";
import { GroupCoordinator } from "./groups.ts";
import { createApis } from "./handlers/mod.ts";
import { Log } from "./log.ts";
import { ProtocolServer } from "./server.ts";

const HOST = "127.0.0.1";
/** Kafka's default `message.max.bytes`. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/** Options of {@linkcode startKafkaDouble}. */
export interface KafkaDoubleOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one. @default {0} */
  port?: number;
  /**
   * Largest record batch accepted (with its 12-byte log overhead), like Kafka's
   * `message.max.bytes`; larger ones get MESSAGE_TOO_LARGE. @default {1048588}
   */
  maxMessageBytes?: number;
  /**
   * Fault injection: for this long after a topic is created, Metadata answers
   * UNKNOWN_TOPIC_OR_PARTITION for it, as a KRaft broker does until its
   * metadata cache has caught up with the controller. @default {0}
   */
  metadataLagMs?: number;
}

/** A running double. */
export interface KafkaDouble {
  /** Broker address for kafkajs, `"127.0.0.1:PORT"`. */
  readonly url: string;
  /** The TCP port it listens on. */
  readonly port: number;
  /** Closes every connection, stops every timer, and forgets all data. */
  close(): Promise<void>;
}

/**
 * Starts a Kafka test double listening on 127.0.0.1.
 *
 * @throws {RangeError} When `port` or `maxMessageBytes` is not a valid value
 * (as a rejection, like a failure to listen).
 */
export function startKafkaDouble(options: KafkaDoubleOptions = {}): Promise<KafkaDouble> {
  return new Promise((resolve) => resolve(start(options)));
}

function start(options: KafkaDoubleOptions): KafkaDouble {
  const {
    port: requestedPort = 0,
    maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
    metadataLagMs = 0,
  } = options;
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65_535) {
    throw new RangeError(`Cannot listen on port ${requestedPort}: use 0..65535`);
  }
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1) {
    throw new RangeError(
      `Cannot use maxMessageBytes as it is not a positive integer: current value is ${maxMessageBytes}`,
    );
  }
  if (!Number.isFinite(metadataLagMs) || metadataLagMs < 0) {
    throw new RangeError(
      `Cannot use metadataLagMs as it is not a non-negative number: current value is ${metadataLagMs}`,
    );
  }
  const listener = Deno.listen({ hostname: HOST, port: requestedPort });
  const port = listener.addr.port;
  const broker: BrokerState = {
    host: HOST,
    port,
    log: new Log(),
    groups: new GroupCoordinator(),
    maxMessageBytes,
    metadataLagMs,
    createdAt: new Map(),
  };
  const server = new ProtocolServer(listener, createApis(broker));
  let closing: Promise<void> | undefined;
  return {
    url: `${HOST}:${port}`,
    port,
    close: () => {
      broker.groups.close();
      closing ??= server.close();
      return closing;
    },
  };
}
