/**
 * Loads the broker module for a broker kind on demand, so that a process only
 * loads the driver it uses (a Redis client never loads kafkajs or amqplib).
 *
 * @module
 */

import type { BrokerKind } from "../protocol/env.ts";
import { ConfigError } from "../protocol/errors.ts";
import type { Broker, BrokerConnectOptions, ConnectBroker } from "./types.ts";

async function importConnector(kind: BrokerKind): Promise<ConnectBroker> {
  switch (kind) {
    case "memory":
      return (await import("./memory.ts")).connect;
    case "redis":
      return (await import("./redis.ts")).connect;
    case "amqp":
      return (await import("./amqp.ts")).connect;
    case "kafka":
      return (await import("./kafka.ts")).connect;
    default:
      // Reachable from code that passes an unchecked string to connectBroker().
      throw new ConfigError(
        `Cannot use broker ${JSON.stringify(kind)}: it is not one prpc knows ` +
          `(memory, redis, amqp, kafka)`,
      );
  }
}

/**
 * Connects to a broker of the given kind.
 *
 * @param kind Which broker.
 * @param options URL and instance name.
 * @returns The connection.
 * @throws {ConfigError} When the kind is not available or the URL is invalid.
 */
export async function connectBroker(
  kind: BrokerKind,
  options: BrokerConnectOptions,
): Promise<Broker> {
  const connect = await importConnector(kind);
  return await connect(options);
}
