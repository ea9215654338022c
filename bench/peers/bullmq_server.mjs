/**
 * BullMQ server of the round-trip benchmark: a Worker on the queue BENCH_QUEUE
 * that runs up to BENCH_CONCURRENCY `add` jobs at once. See ./participant.mjs.
 *
 * @module
 */

import { Worker } from "bullmq";
import { env, serveUntilTerminated } from "./participant.mjs";

const worker = new Worker(
  env("BENCH_QUEUE"),
  (job) => job.data.a + job.data.b,
  {
    // BullMQ requires workers' connections to retry forever (null).
    connection: { url: env("BENCH_REDIS_URL"), maxRetriesPerRequest: null },
    concurrency: Number(env("BENCH_CONCURRENCY")),
  },
);
worker.on("error", (error) => console.error(`BullMQ worker: ${error}`));
await worker.waitUntilReady();
await serveUntilTerminated(() => worker.close());
