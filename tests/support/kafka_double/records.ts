/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * Kafka v2 record batches (magic 2) as producers send them: validation of a
 * produced record set, and the header fields the log needs. Batches are kept as
 * produced; only the base offset and the partition leader epoch, which lie
 * outside the CRC-32C, are rewritten when a batch is appended, so the checksum
 * stays valid when the batch is fetched. Compressed batches are refused with
 * UNSUPPORTED_COMPRESSION_TYPE: the double implements no codec.
 *
 * Batch layout (byte offsets): base offset int64 (0), batch length int32 (8),
 * partition leader epoch int32 (12), magic int8 (16), CRC-32C uint32 (17),
 * attributes int16 (21), last offset delta int32 (23), first timestamp int64 (27),
 * max timestamp int64 (35), producer id int64 (43), producer epoch int16 (51),
 * base sequence int32 (53), record count int32 (57), records (61). The CRC
 * covers everything from the attributes to the end.
 *
 * @module
 */

import { MalformedRequestError, Reader } from "./codec.ts";
import { crc32c } from "./crc32c.ts";
import { ErrorCode } from "./error_codes.ts";

/** Bytes before the batch length field ends: base offset and length. */
const LOG_OVERHEAD = 12;
const MAGIC_AT = 16;
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;
const RECORDS_AT = 61;
const COMPRESSION_MASK = 0x07;
const CONTROL_FLAG = 0x20;
const RECORD_BATCH_MAGIC = 2;

/** A validated batch of records, ready to be appended to a partition log. */
export interface ProducedBatch {
  /** The whole batch, copied from the request. */
  readonly bytes: Uint8Array;
  /** Timestamp (ms) of each record, in offset order. */
  readonly timestamps: readonly number[];
}

/** Why a produced record set was refused: the error code and a reason for debugging. */
export interface RefusedRecordSet {
  readonly errorCode: ErrorCode;
  readonly reason: string;
}

/** The outcome of {@linkcode validateProducedRecordSet}. */
export type RecordSetValidation =
  | { readonly batch: ProducedBatch; readonly refused?: undefined }
  | { readonly batch?: undefined; readonly refused: RefusedRecordSet };

function refuse(errorCode: ErrorCode, reason: string): RecordSetValidation {
  return { refused: { errorCode, reason } };
}

/**
 * Validates the record set of one partition of a Produce request the way a
 * broker does for Produce v3+: exactly one uncompressed v2 batch, no larger than
 * `maxMessageBytes` (the batch with its 12-byte log overhead, like Kafka's
 * `message.max.bytes`), with a correct CRC-32C and well-formed records whose
 * offset deltas run 0, 1, 2, ...
 */
export function validateProducedRecordSet(
  recordSet: Uint8Array | null,
  maxMessageBytes: number,
): RecordSetValidation {
  if (recordSet === null || recordSet.byteLength < RECORDS_AT) {
    return refuse(ErrorCode.CORRUPT_MESSAGE, "record set shorter than a batch header");
  }
  const view = new DataView(recordSet.buffer, recordSet.byteOffset, recordSet.byteLength);
  const batchSize = LOG_OVERHEAD + view.getInt32(8);
  if (batchSize > recordSet.byteLength) {
    return refuse(ErrorCode.CORRUPT_MESSAGE, "batch length beyond the record set");
  }
  if (batchSize < recordSet.byteLength) {
    return refuse(ErrorCode.INVALID_RECORD, "Produce v3+ takes exactly one batch per partition");
  }
  if (batchSize > maxMessageBytes) {
    return refuse(
      ErrorCode.MESSAGE_TOO_LARGE,
      `batch of ${batchSize} bytes over the limit of ${maxMessageBytes}`,
    );
  }
  if (view.getInt8(MAGIC_AT) !== RECORD_BATCH_MAGIC) {
    return refuse(ErrorCode.INVALID_RECORD, `magic ${view.getInt8(MAGIC_AT)}, expected 2`);
  }
  const storedCrc = view.getUint32(CRC_AT);
  const computedCrc = crc32c(recordSet.subarray(ATTRIBUTES_AT));
  if (storedCrc !== computedCrc) {
    return refuse(
      ErrorCode.CORRUPT_MESSAGE,
      `CRC-32C ${storedCrc.toString(16)} in the batch, ${computedCrc.toString(16)} computed`,
    );
  }
  const attributes = view.getInt16(ATTRIBUTES_AT);
  if ((attributes & COMPRESSION_MASK) !== 0) {
    return refuse(
      ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
      `compression codec ${
        attributes & COMPRESSION_MASK
      }: the test double takes only uncompressed batches`,
    );
  }
  if ((attributes & CONTROL_FLAG) !== 0) {
    return refuse(ErrorCode.INVALID_RECORD, "producers cannot send control batches");
  }
  try {
    const timestamps = readRecordTimestamps(recordSet);
    return { batch: { bytes: recordSet.slice(), timestamps } };
  } catch (error) {
    if (!(error instanceof MalformedRequestError)) throw error;
    return refuse(ErrorCode.INVALID_RECORD, error.message);
  }
}

/** Reads every record of a validated-size batch; throws {@linkcode MalformedRequestError}. */
function readRecordTimestamps(batch: Uint8Array): number[] {
  const header = new Reader(batch.subarray(23, RECORDS_AT));
  const lastOffsetDelta = header.int32();
  const firstTimestamp = header.int64();
  header.raw(8 + 8 + 2 + 4); // max timestamp, producer id and epoch, base sequence
  const count = header.int32();
  if (count < 1 || count !== lastOffsetDelta + 1) {
    throw new MalformedRequestError(
      `${count} records but a last offset delta of ${lastOffsetDelta}`,
    );
  }
  const records = new Reader(batch.subarray(RECORDS_AT));
  const timestamps: number[] = [];
  for (let index = 0; index < count; index++) {
    const length = records.varint();
    const record = new Reader(records.raw(length));
    record.int8(); // attributes, unused
    const timestampDelta = record.varlong();
    const offsetDelta = record.varint();
    if (offsetDelta !== index) {
      throw new MalformedRequestError(`record ${index} has offset delta ${offsetDelta}`);
    }
    record.varintBytes(); // key
    record.varintBytes(); // value
    const headerCount = record.varint();
    if (headerCount < 0) throw new MalformedRequestError(`${headerCount} record headers`);
    for (let header = 0; header < headerCount; header++) {
      if (record.varintBytes() === null) throw new MalformedRequestError("null header key");
      record.varintBytes();
    }
    if (record.remaining !== 0) {
      throw new MalformedRequestError(`record ${index} has ${record.remaining} trailing bytes`);
    }
    timestamps.push(firstTimestamp + timestampDelta);
  }
  if (records.remaining !== 0) {
    throw new MalformedRequestError(`${records.remaining} bytes after the last record`);
  }
  return timestamps;
}

/**
 * Sets the base offset of a stored batch (and a partition leader epoch of 0);
 * both lie outside the CRC-32C, which therefore stays valid.
 */
export function assignBaseOffset(batch: Uint8Array, baseOffset: number): void {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  view.setBigInt64(0, BigInt(baseOffset));
  view.setInt32(12, 0);
}
