/**
 * The record size limit a connection works with: the `maxMessageBytes`
 * setting when given, else what the brokers enforce, read with
 * DescribeConfigs (`message.max.bytes` of each broker, the smallest of them).
 * Kafka's default differs between versions (1 000 012 bytes up to 2.x,
 * 1 048 588 since), so no fixed default is right for every broker.
 *
 * A topic created by prpc inherits the brokers' limit; a topic given a lower
 * `max.message.bytes` by hand is found out when Kafka refuses a record
 * (`PayloadTooLargeError`, see `producer.ts`).
 *
 * @module
 */

import { type Admin, ConfigResourceTypes } from "kafkajs";
import type { Logger } from "../../protocol/logger.ts";
import { errorText } from "./client.ts";

/** The limit assumed when the brokers' configuration cannot be read: the lowest default of any Kafka. */
export const FALLBACK_RECORD_LIMIT = 1_000_012;

/**
 * The largest record batch the brokers accept, as configured.
 *
 * @param admin A connected admin client.
 * @param logger Where a configuration that cannot be read is reported.
 * @returns The smallest `message.max.bytes` of the brokers, or {@linkcode FALLBACK_RECORD_LIMIT}.
 */
export async function brokerRecordLimit(admin: Admin, logger: Logger): Promise<number> {
  let why: string;
  try {
    const { brokers } = await admin.describeCluster();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: brokers.map((broker) => ({
        type: ConfigResourceTypes.BROKER,
        name: String(broker.nodeId),
        configNames: ["message.max.bytes"],
      })),
    });
    const limits = resources.flatMap((resource) =>
      resource.configEntries
        .filter((entry) => entry.configName === "message.max.bytes")
        .map((entry) => Number(entry.configValue))
        .filter((limit) => Number.isSafeInteger(limit) && limit > 0)
    );
    if (limits.length > 0) return Math.min(...limits);
    why = "no broker told its message.max.bytes";
  } catch (err) {
    why = errorText(err);
  }
  logger.warn(
    `cannot read the Kafka brokers' message.max.bytes; assuming ${FALLBACK_RECORD_LIMIT} bytes ` +
      "(set the Kafka setting maxMessageBytes to use another limit)",
    { error: why },
  );
  return FALLBACK_RECORD_LIMIT;
}
