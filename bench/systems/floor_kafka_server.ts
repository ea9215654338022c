/**
 * The Kafka floor's server: the benchmark's round trip written directly with
 * kafkajs, with the guarantees prpc's Kafka broker gives and nothing else.
 *
 * - Requests are records on `floor_{BENCH_QUEUE}` (4 partitions), read in the
 *   consumer group `floor_{BENCH_QUEUE}` with `eachBatch`, the partitions
 *   handled concurrently.
 * - The results of a batch are produced together, in one send with `acks: -1`
 *   (every in-sync replica has them), to the partition of
 *   `floor_reply_{BENCH_QUEUE}` each request names, keyed by request id.
 * - Only then are the requests' offsets resolved and committed: at least
 *   once, as prpc (a server that dies before the commit leaves the requests to
 *   the group's next owner of the partition).
 *
 * No envelope, validation, ledger of deliveries, dead-lettering or recovery:
 * prpc's overhead is read as a ratio against it.
 *
 * Run by the conductor (see `bench/participant.ts`): prints `READY`, serves until SIGTERM.
 *
 * @module
 */

import { Kafka, logLevel } from "kafkajs";
import { env, serveUntilTerminated } from "../participant.ts";
import { FLOOR_PARTITIONS, floorTopics, kafkaBrokers } from "./floor_kafka_topics.ts";

const queue = env("BENCH_QUEUE");
const kafka = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
const { requests, replies } = floorTopics(queue);

const admin = kafka.admin();
await admin.connect();
await admin.createTopics({
  waitForLeaders: true,
  topics: [
    { topic: requests, numPartitions: FLOOR_PARTITIONS, replicationFactor: 1 },
    { topic: replies, numPartitions: FLOOR_PARTITIONS, replicationFactor: 1 },
  ],
});
await admin.disconnect();

const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
await producer.connect();
const consumer = kafka.consumer({
  groupId: `floor_${queue}`,
  maxWaitTimeInMs: 100,
  allowAutoTopicCreation: false,
});
await consumer.connect();
await consumer.subscribe({ topic: requests, fromBeginning: true });
const joined = new Promise<void>((resolve) =>
  consumer.on(consumer.events.GROUP_JOIN, () => resolve())
);
await consumer.run({
  autoCommit: false,
  partitionsConsumedConcurrently: FLOOR_PARTITIONS,
  eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
    if (batch.messages.length === 0) return;
    const results = batch.messages.map((message) => {
      const { id, a, b, p } = JSON.parse(message.value!.toString()) as {
        id: string;
        a: number;
        b: number;
        p: number;
      };
      return { key: id, partition: p, value: JSON.stringify({ id, r: a + b }) };
    });
    await producer.send({ topic: replies, acks: -1, messages: results });
    resolveOffset(batch.lastOffset());
    await commitOffsetsIfNecessary();
  },
});
await joined;
await serveUntilTerminated(async () => {
  await consumer.disconnect();
  await producer.disconnect();
});
