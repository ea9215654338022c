/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * Fetch v11 with long polling: answers at once when the requested partitions
 * hold at least `min_bytes` from the fetch offsets, or one of them has an error;
 * otherwise waits for appends until that holds or `max_wait_ms` has passed, then
 * answers with what there is. Batches are returned whole, as produced, within
 * the partition and response byte limits, except that the first batch of a
 * response is returned even when larger (KIP-74). Fetch sessions are not
 * implemented: every fetch is a full fetch and the session id is 0, which
 * KIP-227 allows a broker to answer.
 *
 * @module
 */

import { type Reader, Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import type { BrokerState } from "../broker.ts";
import type { Log } from "../log.ts";
import type { ApiHandler, RequestContext } from "../server.ts";

const READ_COMMITTED = 1;

interface FetchRequest {
  readonly maxWaitMs: number;
  readonly minBytes: number;
  readonly maxBytes: number;
  readonly isolationLevel: number;
  readonly topics: readonly {
    readonly name: string;
    readonly partitions: readonly {
      readonly partition: number;
      readonly fetchOffset: number;
      readonly maxBytes: number;
    }[];
  }[];
}

interface PartitionData {
  readonly partition: number;
  readonly errorCode: ErrorCode;
  readonly highWatermark: number;
  readonly logStartOffset: number;
  readonly batches: readonly Uint8Array[];
}

interface FetchedData {
  readonly topics: readonly { readonly name: string; readonly partitions: PartitionData[] }[];
  readonly byteCount: number;
  readonly hasError: boolean;
}

function readFetchRequest(body: Reader): FetchRequest {
  body.int32(); // replica id: -1 for consumers
  const maxWaitMs = body.int32();
  const minBytes = body.int32();
  const maxBytes = body.int32();
  const isolationLevel = body.int8();
  body.int32(); // session id: sessions are not implemented
  body.int32(); // session epoch
  const topics = body.array((reader) => ({
    name: reader.string(),
    partitions: reader.array((reader) => {
      const partition = reader.int32();
      reader.int32(); // current leader epoch: the double's is always 0
      const fetchOffset = reader.int64();
      reader.int64(); // log start offset: only followers send one
      return { partition, fetchOffset, maxBytes: reader.int32() };
    }),
  }));
  body.array((reader) => [reader.string(), reader.array((r) => r.int32())]); // forgotten topics
  body.string(); // rack id
  return { maxWaitMs, minBytes, maxBytes, isolationLevel, topics };
}

/** Reads what the request asks for, as it stands now. */
function collect(log: Log, request: FetchRequest): FetchedData {
  let byteCount = 0;
  let hasError = false;
  const topics = request.topics.map(({ name, partitions }) => ({
    name,
    partitions: partitions.map(({ partition, fetchOffset, maxBytes }): PartitionData => {
      const partitionLog = log.partition(name, partition);
      if (partitionLog === undefined) {
        hasError = true;
        const errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        return { partition, errorCode, highWatermark: -1, logStartOffset: -1, batches: [] };
      }
      const { highWatermark, logStartOffset } = partitionLog;
      if (fetchOffset < logStartOffset || fetchOffset > highWatermark) {
        hasError = true;
        const errorCode = ErrorCode.OFFSET_OUT_OF_RANGE;
        return { partition, errorCode, highWatermark, logStartOffset, batches: [] };
      }
      const budget = Math.min(maxBytes, request.maxBytes - byteCount);
      const batches = partitionLog.read(fetchOffset, budget, byteCount === 0);
      for (const batch of batches) byteCount += batch.byteLength;
      return { partition, errorCode: ErrorCode.NONE, highWatermark, logStartOffset, batches };
    }),
  }));
  return { topics, byteCount, hasError };
}

/** Settles at the next append, after `ms`, or when `signal` aborts, whichever comes first. */
async function nextAppendWithin(log: Log, ms: number, signal: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      log.nextAppend(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
      new Promise<void>((resolve) => {
        onAbort = resolve;
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

function writeResponse(fetched: FetchedData, isolationLevel: number): Writer {
  return new Writer()
    .int32(0) // throttle time
    .int16(ErrorCode.NONE)
    .int32(0) // session id: no session
    .array(fetched.topics, (writer, topic) => {
      writer.string(topic.name).array(topic.partitions, (writer, data) => {
        writer
          .int32(data.partition)
          .int16(data.errorCode)
          .int64(data.highWatermark)
          .int64(data.highWatermark) // last stable offset: no transactions
          .int64(data.logStartOffset)
          .array(isolationLevel === READ_COMMITTED ? [] : null, () => {}) // aborted transactions
          .int32(-1) // preferred read replica: none
          .int32(data.batches.reduce((size, batch) => size + batch.byteLength, 0));
        for (const batch of data.batches) writer.raw(batch);
      });
    });
}

/** Fetch v11. */
export function fetchApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 1,
    name: "Fetch",
    version: 11,
    handle: async (body: Reader, context: RequestContext) => {
      const request = readFetchRequest(body);
      const deadline = Date.now() + request.maxWaitMs;
      while (true) {
        const fetched = collect(broker.log, request);
        const waitMs = deadline - Date.now();
        const answerNow = fetched.byteCount >= request.minBytes || fetched.hasError ||
          waitMs <= 0 || context.signal.aborted;
        if (answerNow) return writeResponse(fetched, request.isolationLevel);
        await nextAppendWithin(broker.log, waitMs, context.signal);
      }
    },
  };
}
