/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * Produce v7: appends one validated v2 batch per partition (see `records.ts`:
 * CRC-32C checked, MESSAGE_TOO_LARGE over `maxMessageBytes`, no compression).
 * A refused batch other than a too large one is also reported on stderr, as the
 * error codes alone can mislead (UNSUPPORTED_COMPRESSION_TYPE reads, in kafkajs,
 * as if the client lacked the codec).
 * acks 1 and -1 are the same on a single node; with acks 0 nothing is answered,
 * errors included (Kafka would also close the connection on an error).
 * Transactional and idempotent producers are not supported (no InitProducerId).
 *
 * @module
 */

import { type Reader, Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import type { BrokerState } from "../broker.ts";
import { validateProducedRecordSet } from "../records.ts";
import type { ApiHandler } from "../server.ts";

interface PartitionResult {
  readonly partition: number;
  readonly errorCode: ErrorCode;
  readonly baseOffset: number;
  readonly logStartOffset: number;
}

/** Produce v7. */
export function produceApi(broker: BrokerState): ApiHandler {
  function append(topic: string, partition: number, recordSet: Uint8Array | null) {
    const log = broker.log.partition(topic, partition);
    if (log === undefined) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    const validation = validateProducedRecordSet(recordSet, broker.maxMessageBytes);
    if (validation.refused) {
      const { errorCode, reason } = validation.refused;
      if (errorCode !== ErrorCode.MESSAGE_TOO_LARGE) {
        console.error(`kafka test double: refused a batch for ${topic}/${partition}: ${reason}`);
      }
      return errorCode;
    }
    return { baseOffset: log.append(validation.batch), logStartOffset: log.logStartOffset };
  }

  return {
    apiKey: 0,
    name: "Produce",
    version: 7,
    handle: (body: Reader) => {
      body.nullableString(); // transactional id
      const acks = body.int16();
      body.int32(); // timeout: appends are immediate
      const topics = body.array((reader) => ({
        name: reader.string(),
        partitions: reader.array((reader) => ({
          partition: reader.int32(),
          records: reader.nullableBytes(),
        })),
      }));
      const validAcks = acks === 0 || acks === 1 || acks === -1;
      const results = topics.map(({ name, partitions }) => ({
        name,
        partitions: partitions.map(({ partition, records }): PartitionResult => {
          const outcome = validAcks
            ? append(name, partition, records)
            : ErrorCode.INVALID_REQUIRED_ACKS;
          return typeof outcome === "number"
            ? { partition, errorCode: outcome, baseOffset: -1, logStartOffset: -1 }
            : { partition, errorCode: ErrorCode.NONE, ...outcome };
        }),
      }));
      if (acks === 0) return null;
      return new Writer()
        .array(results, (writer, topic) => {
          writer.string(topic.name).array(topic.partitions, (writer, result) => {
            writer
              .int32(result.partition)
              .int16(result.errorCode)
              .int64(result.baseOffset)
              .int64(-1) // log append time: -1 as timestamps are the producer's (CreateTime)
              .int64(result.logStartOffset);
          });
        })
        .int32(0); // throttle time
    },
  };
}
