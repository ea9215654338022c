/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * The state of the double's single node, shared by the API handlers.
 *
 * @module
 */

import type { GroupCoordinator } from "./groups.ts";
import type { Log } from "./log.ts";

/** The node id of the double: leader of every partition, controller and coordinator. */
export const NODE_ID = 1;

/** What the API handlers work on. */
export interface BrokerState {
  /** The address clients are told to connect to. */
  readonly host: string;
  readonly port: number;
  readonly log: Log;
  readonly groups: GroupCoordinator;
  /** Largest record batch accepted, like Kafka's `message.max.bytes`. */
  readonly maxMessageBytes: number;
  /** How long Metadata keeps answering UNKNOWN_TOPIC_OR_PARTITION for a new topic. */
  readonly metadataLagMs: number;
  /** When each topic was created (`performance.now()`), for `metadataLagMs`. */
  readonly createdAt: Map<string, number>;
}
