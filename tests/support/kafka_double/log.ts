/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * Topics and their partition logs, in memory: batches kept as produced, offsets
 * assigned on append, reads by offset and lookups by timestamp. Records are
 * never deleted (only whole topics are), so every log starts at offset 0, and
 * the high watermark is the next offset (a single node has no replicas to wait
 * for, and no transactions).
 *
 * @module
 */

import { assignBaseOffset, type ProducedBatch } from "./records.ts";

/** A batch in a partition log. */
interface StoredBatch {
  readonly baseOffset: number;
  /** Offset of the last record (inclusive). */
  readonly lastOffset: number;
  /** The batch as produced, with its base offset set. */
  readonly bytes: Uint8Array;
  readonly timestamps: readonly number[];
}

/** The offset and timestamp of a record found by timestamp. */
export interface TimestampedOffset {
  readonly offset: number;
  readonly timestamp: number;
}

/** The records of one partition. */
export class PartitionLog {
  #batches: StoredBatch[] = [];
  #nextOffset = 0;
  #onAppend: () => void;

  /** An empty partition; `onAppend` runs after every append. */
  constructor(onAppend: () => void) {
    this.#onAppend = onAppend;
  }

  /** The first offset of the log; always 0, as records are never deleted. */
  get logStartOffset(): number {
    return 0;
  }

  /** The offset the next record will get: the end of the log, and the high watermark. */
  get highWatermark(): number {
    return this.#nextOffset;
  }

  /** Appends `batch`, wakes waiting fetches, and returns the offset of its first record. */
  append(batch: ProducedBatch): number {
    const baseOffset = this.#nextOffset;
    assignBaseOffset(batch.bytes, baseOffset);
    const lastOffset = baseOffset + batch.timestamps.length - 1;
    this.#batches.push({
      baseOffset,
      lastOffset,
      bytes: batch.bytes,
      timestamps: batch.timestamps,
    });
    this.#nextOffset = lastOffset + 1;
    this.#onAppend();
    return baseOffset;
  }

  /**
   * Whole batches from the one holding `fetchOffset`, while they fit in `maxBytes`.
   * The first batch is returned even when larger if `firstEvenIfLarger` is set
   * (KIP-74: a consumer must always be able to make progress).
   */
  read(fetchOffset: number, maxBytes: number, firstEvenIfLarger: boolean): Uint8Array[] {
    const batches: Uint8Array[] = [];
    let size = 0;
    for (let index = this.#indexOfBatchWith(fetchOffset); index < this.#batches.length; index++) {
      const bytes = this.#batches[index]!.bytes;
      const fits = size + bytes.byteLength <= maxBytes;
      if (!fits && !(firstEvenIfLarger && batches.length === 0)) break;
      batches.push(bytes);
      size += bytes.byteLength;
    }
    return batches;
  }

  /** The first record (in offset order) whose timestamp is at least `timestamp`. */
  offsetForTimestamp(timestamp: number): TimestampedOffset | undefined {
    for (const batch of this.#batches) {
      const index = batch.timestamps.findIndex((recordTimestamp) => recordTimestamp >= timestamp);
      if (index !== -1) {
        return { offset: batch.baseOffset + index, timestamp: batch.timestamps[index]! };
      }
    }
    return undefined;
  }

  /** Index of the first batch whose last offset is at least `offset` (binary search). */
  #indexOfBatchWith(offset: number): number {
    let low = 0;
    let high = this.#batches.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#batches[middle]!.lastOffset < offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

/** Every topic of the double, and a signal for fetches waiting for data. */
export class Log {
  #topics = new Map<string, PartitionLog[]>();
  #appended = Promise.withResolvers<void>();

  /** Names of all topics, in creation order. */
  topicNames(): string[] {
    return [...this.#topics.keys()];
  }

  /** The partitions of `topic`, or `undefined` when it does not exist. */
  partitions(topic: string): readonly PartitionLog[] | undefined {
    return this.#topics.get(topic);
  }

  /** One partition, or `undefined` when the topic or the partition does not exist. */
  partition(topic: string, partition: number): PartitionLog | undefined {
    return this.#topics.get(topic)?.[partition];
  }

  /** Creates `topic` with `partitionCount` empty partitions (the caller checks it is new). */
  createTopic(topic: string, partitionCount: number): void {
    this.#topics.set(topic, []);
    this.growTopic(topic, partitionCount);
  }

  /** Grows an existing `topic` to `partitionCount` partitions (the caller checks the count). */
  growTopic(topic: string, partitionCount: number): void {
    const partitions = this.#topics.get(topic);
    while (partitions && partitions.length < partitionCount) {
      partitions.push(new PartitionLog(() => this.#wakeFetches()));
    }
  }

  /** Deletes `topic` with its records; `false` when it does not exist. */
  deleteTopic(topic: string): boolean {
    const deleted = this.#topics.delete(topic);
    if (deleted) this.#wakeFetches();
    return deleted;
  }

  #wakeFetches(): void {
    this.#appended.resolve();
    this.#appended = Promise.withResolvers<void>();
  }

  /** Settles at the next append to any partition, or deletion of a topic. */
  nextAppend(): Promise<void> {
    return this.#appended.promise;
  }
}
