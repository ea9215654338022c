/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * ListOffsets v3: timestamp -1 is the latest offset (the high watermark, which
 * is also the last stable offset as there are no transactions), -2 the earliest,
 * any other value the first offset whose record timestamp is at least that
 * value (offset -1 and timestamp -1 when there is none).
 *
 * @module
 */

import { type Reader, Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import type { BrokerState } from "../broker.ts";
import type { PartitionLog, TimestampedOffset } from "../log.ts";
import type { ApiHandler } from "../server.ts";

const LATEST = -1;
const EARLIEST = -2;
const NOT_FOUND: TimestampedOffset = { offset: -1, timestamp: -1 };

function lookUp(log: PartitionLog, timestamp: number): TimestampedOffset {
  if (timestamp === LATEST) return { offset: log.highWatermark, timestamp: -1 };
  if (timestamp === EARLIEST) return { offset: log.logStartOffset, timestamp: -1 };
  return log.offsetForTimestamp(timestamp) ?? NOT_FOUND;
}

/** ListOffsets v3. */
export function listOffsetsApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 2,
    name: "ListOffsets",
    version: 3,
    handle: (body: Reader) => {
      body.int32(); // replica id
      body.int8(); // isolation level: committed and uncommitted are the same here
      const topics = body.array((reader) => ({
        name: reader.string(),
        partitions: reader.array((reader) => ({
          partition: reader.int32(),
          timestamp: reader.int64(),
        })),
      }));
      return new Writer()
        .int32(0) // throttle time
        .array(topics, (writer, topic) => {
          writer.string(topic.name).array(topic.partitions, (writer, { partition, timestamp }) => {
            const log = broker.log.partition(topic.name, partition);
            const found = log ? lookUp(log, timestamp) : NOT_FOUND;
            writer
              .int32(partition)
              .int16(log ? ErrorCode.NONE : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
              .int64(found.timestamp)
              .int64(found.offset);
          });
        });
    },
  };
}
