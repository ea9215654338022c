/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * Metadata v6: the single node (leader of every partition, and controller), and
 * the requested topics. Topics are never created automatically, whatever the
 * request's `allow_auto_topic_creation` says (it is as if Kafka ran with
 * `auto.create.topics.enable=false`): an unknown topic is UNKNOWN_TOPIC_OR_PARTITION,
 * and so is a topic created less than `metadataLagMs` ago.
 *
 * @module
 */

import { type Reader, Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import { type BrokerState, NODE_ID } from "../broker.ts";
import type { ApiHandler } from "../server.ts";

const CLUSTER_ID = "prpc-kafka-test-double";

/** Metadata v6. */
export function metadataApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 3,
    name: "Metadata",
    version: 6,
    handle: (body: Reader) => {
      const requested = body.nullableArray((reader) => reader.string());
      body.boolean(); // allow_auto_topic_creation: ignored, see the module doc
      const topics = requested ?? broker.log.topicNames();
      return new Writer()
        .int32(0) // throttle time
        .array([NODE_ID], (writer, nodeId) => {
          writer.int32(nodeId).string(broker.host).int32(broker.port).string(null); // no rack
        })
        .string(CLUSTER_ID)
        .int32(NODE_ID) // controller
        .array(topics, (writer, topic) => {
          const createdAt = broker.createdAt.get(topic) ?? -Infinity;
          const partitions = performance.now() - createdAt < broker.metadataLagMs
            ? undefined // not in this node's metadata cache yet
            : broker.log.partitions(topic);
          writer
            .int16(partitions ? ErrorCode.NONE : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            .string(topic)
            .boolean(false) // is_internal
            .array(partitions ? [...partitions.keys()] : [], (writer, partition) => {
              writer
                .int16(ErrorCode.NONE)
                .int32(partition)
                .int32(NODE_ID) // leader
                .array([NODE_ID], (writer, id) => writer.int32(id)) // replicas
                .array([NODE_ID], (writer, id) => writer.int32(id)) // in-sync replicas
                .int32(0); // offline replicas: none
            });
        });
    },
  };
}
