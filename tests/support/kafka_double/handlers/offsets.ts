/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * OffsetCommit v5 and OffsetFetch v4: committed offsets per group, topic and
 * partition, kept by the coordinator of `groups.ts` for as long as the double
 * runs, whatever happens to the members.
 *
 * @module
 */

import { type Reader, Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import type { BrokerState } from "../broker.ts";
import type { ApiHandler } from "../server.ts";

/** Kafka's `offset.metadata.max.bytes` default (counted here in UTF-16 units). */
const MAX_METADATA_LENGTH = 4096;

/** OffsetCommit v5. */
export function offsetCommitApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 8,
    name: "OffsetCommit",
    version: 5,
    handle: (body: Reader) => {
      const groupId = body.string();
      const generationId = body.int32();
      const memberId = body.string();
      const topics = body.array((reader) => ({
        name: reader.string(),
        partitions: reader.array((reader) => ({
          partition: reader.int32(),
          offset: reader.int64(),
          metadata: reader.nullableString(),
        })),
      }));
      const groupError = broker.groups.checkCommit(groupId, generationId, memberId);
      return new Writer()
        .int32(0) // throttle time
        .array(topics, (writer, topic) => {
          writer.string(topic.name).array(
            topic.partitions,
            (writer, { partition, ...committed }) => {
              let errorCode: ErrorCode = groupError;
              if (errorCode === ErrorCode.NONE) {
                if (broker.log.partition(topic.name, partition) === undefined) {
                  errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
                } else if ((committed.metadata?.length ?? 0) > MAX_METADATA_LENGTH) {
                  errorCode = ErrorCode.OFFSET_METADATA_TOO_LARGE;
                } else {
                  broker.groups.commit(groupId, topic.name, partition, committed);
                }
              }
              writer.int32(partition).int16(errorCode);
            },
          );
        });
    },
  };
}

/** OffsetFetch v4; a null topic list asks for every committed offset of the group. */
export function offsetFetchApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 9,
    name: "OffsetFetch",
    version: 4,
    handle: (body: Reader) => {
      const groupId = body.string();
      const requested = body.nullableArray((reader) => ({
        name: reader.string(),
        partitions: reader.array((reader) => reader.int32()),
      }));
      const topics = requested ??
        [...broker.groups.committedOffsets(groupId)].map(([name, offsets]) => ({
          name,
          partitions: [...offsets.keys()],
        }));
      return new Writer()
        .int32(0) // throttle time
        .array(topics, (writer, topic) => {
          writer.string(topic.name).array(topic.partitions, (writer, partition) => {
            const committed = broker.groups.committedOffset(groupId, topic.name, partition);
            writer
              .int32(partition)
              .int64(committed?.offset ?? -1)
              .string(committed ? committed.metadata : "")
              .int16(ErrorCode.NONE);
          });
        })
        .int16(ErrorCode.NONE);
    },
  };
}
