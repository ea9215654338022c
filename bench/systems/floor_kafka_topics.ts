/**
 * What the Kafka floor's server and client share: topic names, partitions and brokers.
 *
 * @module
 */

import { env } from "../participant.ts";

/** Partitions of the request and reply topics. */
export const FLOOR_PARTITIONS = 4;

/**
 * The floor's topics for a queue name.
 *
 * @param queue `BENCH_QUEUE`.
 * @returns The request and reply topics.
 */
export function floorTopics(queue: string): { requests: string; replies: string } {
  return { requests: `floor_${queue}`, replies: `floor_reply_${queue}` };
}

/**
 * The `host:port` list of `BENCH_KAFKA_URL` (`kafka://host:port,...` or `host:port,...`).
 *
 * @returns The brokers.
 */
export function kafkaBrokers(): string[] {
  return env("BENCH_KAFKA_URL").replace(/^kafka:\/\//, "").replace(/[/?].*$/, "").split(",");
}
