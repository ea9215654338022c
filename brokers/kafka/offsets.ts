/**
 * Offsets of a topic's partitions (kafkajs's ListOffsets), read again while a
 * partition's leadership is still moving into place.
 *
 * Right after a topic is created or grown, the brokers' metadata can name a
 * partition's leader before that broker has taken the leadership, and
 * ListOffsets then fails with `NOT_LEADER_FOR_PARTITION` (measured on Kafka
 * 3.9 and 4.4: 18 of 20 reads right after CreatePartitions). kafkajs's admin
 * client gives up at once on that error, so these reads try again, with
 * growing pauses, for at most {@linkcode LEADERSHIP_WAIT_MS}.
 *
 * @module
 */

import type { Admin } from "kafkajs";
import { kafkaErrorType } from "./client.ts";

/** Errors that mean a partition's leadership is not in place yet. */
const MOVING = new Set(["NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE"]);

/** Longest time the reads wait for a partition's leadership. */
export const LEADERSHIP_WAIT_MS = 10_000;

/**
 * Runs a read of offsets, again while leadership moves (see the module docs).
 *
 * @param read The read.
 * @returns What it returned.
 * @throws What it threw last, when that was another error or the wait ran out.
 */
async function whileLeadershipMoves<T>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LEADERSHIP_WAIT_MS;
  let pauseMs = 20;
  while (true) {
    try {
      return await read();
    } catch (err) {
      if (!MOVING.has(kafkaErrorType(err) ?? "") || Date.now() + pauseMs > deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    pauseMs = Math.min(pauseMs * 2, 500);
  }
}

/**
 * The first and next offsets of each partition of a topic.
 *
 * @param admin A connected admin client.
 * @param topic The topic.
 * @returns kafkajs's answer: `partition`, `low`, `high` (as strings) per partition.
 */
export function topicOffsets(
  admin: Admin,
  topic: string,
): ReturnType<Admin["fetchTopicOffsets"]> {
  return whileLeadershipMoves(() => admin.fetchTopicOffsets(topic));
}

/**
 * The first offset of each partition of a topic at or after a time.
 *
 * @param admin A connected admin client.
 * @param topic The topic.
 * @param timestamp Epoch milliseconds.
 * @returns kafkajs's answer: `partition` and `offset` per partition.
 */
export function topicOffsetsByTimestamp(
  admin: Admin,
  topic: string,
  timestamp: number,
): ReturnType<Admin["fetchTopicOffsetsByTimestamp"]> {
  return whileLeadershipMoves(() => admin.fetchTopicOffsetsByTimestamp(topic, timestamp));
}
