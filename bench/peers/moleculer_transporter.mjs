/**
 * The Moleculer transporter of the benchmark's Moleculer peers: Redis
 * (pub/sub on BENCH_REDIS_URL) by default, Kafka on BENCH_KAFKA_URL when
 * BENCH_TRANSPORTER is `kafka` (Moleculer's Kafka transporter, on
 * `@platformatic/kafka`).
 *
 * @module
 */

import { env } from "./participant.mjs";

/**
 * The `transporter` option of a ServiceBroker.
 *
 * @returns {object} The transporter's type and options.
 */
export function transporter() {
  if (process.env.BENCH_TRANSPORTER === "kafka") {
    // `kafka://host:port,host:port?settings` or `host:port`: Moleculer wants the host:port list.
    const brokers = env("BENCH_KAFKA_URL").replace(/^kafka:\/\//, "").replace(/[/?].*$/, "");
    return { type: "Kafka", options: { bootstrapBrokers: brokers.split(",") } };
  }
  return { type: "Redis", options: env("BENCH_REDIS_URL") };
}
