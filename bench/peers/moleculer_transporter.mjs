/**
 * The Moleculer transporter of the benchmark's Moleculer peers: Redis
 * (pub/sub on BENCH_REDIS_URL) by default, Kafka on BENCH_KAFKA_URL when
 * BENCH_TRANSPORTER is `kafka` (Moleculer's Kafka transporter, on
 * `@platformatic/kafka`), RabbitMQ on BENCH_AMQP_URL when it is `amqp`
 * (Moleculer's AMQP transporter, on `amqplib`).
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
  if (process.env.BENCH_TRANSPORTER === "amqp") {
    // Moleculer's defaults are prefetch 1 and Nagle's algorithm on (amqplib's noDelay off): 23
    // calls/s, 44 ms per call. As a user tuning it would: prpc's prefetch (maxWorkers, the calls
    // in flight) and noDelay.
    return {
      type: "AMQP",
      options: {
        url: env("BENCH_AMQP_URL"),
        prefetch: Number(env("BENCH_CONCURRENCY")),
        socketOptions: { noDelay: true },
      },
    };
  }
  return { type: "Redis", options: env("BENCH_REDIS_URL") };
}
