/**
 * The parts of one Kafka broker connection that its modules share.
 *
 * @module
 */

import type { Admin, Kafka } from "kafkajs";
import type { Logger } from "../../protocol/logger.ts";
import type { KafkaSettings } from "./settings.ts";
import type { Topics } from "./topics.ts";

/** See the module docs. */
export interface KafkaContext {
  /** The kafkajs client, which creates consumers. */
  kafka: Kafka;
  /** The connection's connected admin client. */
  admin: Admin;
  /** Topic administration, with the partition counts seen. */
  topics: Topics;
  /** The resolved settings. */
  settings: KafkaSettings;
  /** Where the modules report (kafkajs's own lines go there at `debug`). */
  logger: Logger;
}
