/**
 * BullMQ client of the round-trip benchmark: each call adds an `add` job to the
 * queue BENCH_QUEUE and waits for its result through QueueEvents. See
 * ./participant.mjs.
 *
 * @module
 */

import { Queue, QueueEvents } from "bullmq";
import { env, parseLevels, runClient } from "./participant.mjs";

const name = env("BENCH_QUEUE");
const connection = { url: env("BENCH_REDIS_URL"), maxRetriesPerRequest: null };
const queue = new Queue(name, { connection });
const queueEvents = new QueueEvents(name, { connection });
queue.on("error", (error) => console.error(`BullMQ queue: ${error}`));
// Every waiting call listens for the queue closing: as many listeners as calls in flight.
queue.setMaxListeners(0);
queueEvents.on(
  "error",
  (error) => console.error(`BullMQ queue events: ${error}`),
);
await Promise.all([queue.waitUntilReady(), queueEvents.waitUntilReady()]);

// Finished jobs are pruned so Redis does not grow, keeping the newest ones as
// BullMQ's docs suggest ({ count: 1000 }), and more than the most calls in
// flight. Not `removeOnComplete: true`: waitUntilFinished looks the job up once
// it listens, and rejects with "Missing key" when the job already finished and
// was removed (taskforcesh/bullmq#801).
const mostInFlight = Math.max(
  ...parseLevels(env("BENCH_LEVELS")).map((level) => level.inFlight),
);
const opts = {
  removeOnComplete: { count: Math.max(1000, 4 * mostInFlight) },
  removeOnFail: { count: 5000 },
};

/** One round trip: add(a, b) as a job, awaited until the worker returns. */
const add = async (a, b) => {
  const job = await queue.add("add", { a, b }, opts);
  return await job.waitUntilFinished(queueEvents);
};

await runClient(add, async () => {
  await queueEvents.close();
  await queue.close();
});
