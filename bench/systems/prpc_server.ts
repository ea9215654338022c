/**
 * prpc's server side in the round-trip benchmark: `add` registered in the
 * worker type `BENCH_WORKER`, over the broker `BENCH_BROKER` (`redis`, `amqp`
 * or `kafka`). See {@link ../participant.ts} for the contract.
 *
 * @module
 */

import { AppServer, type BrokerKind, consoleLogger, type WorkerType } from "../../mod.ts";
import { add } from "../add.ts";
import { brokerUrl, env, serveUntilTerminated } from "../participant.ts";
import { FLOOR_PARTITIONS } from "./floor_kafka_topics.ts";

const broker = env("BENCH_BROKER") as BrokerKind;
const worker = env("BENCH_WORKER") as WorkerType;
const app = new AppServer({
  broker,
  url: brokerUrl(broker),
  queue: env("BENCH_QUEUE"),
  // thread and process pools hold one worker per call running: their systems cap it.
  maxWorkers: Number(Deno.env.get("BENCH_MAX_WORKERS") ?? env("BENCH_CONCURRENCY")),
  handleSignals: false,
  logger: consoleLogger("warn"),
  // Kafka: the floor's partition count, not one partition per worker (PRPC's default), so that
  // both fetch the same number of partitions.
  ...(broker === "kafka" ? { brokerSettings: { queueTopicPartitions: FLOOR_PARTITIONS } } : {}),
});
app.register(
  "add",
  add,
  worker === "async" ? {} : { worker, module: new URL("../add.ts", import.meta.url) },
);
if (import.meta.main) {
  await app.start();
  await serveUntilTerminated(() => app.stop());
}
