/**
 * The Kafka floor's client (see `floor_kafka_server.ts` for what the floor
 * is). Per call it produces one request record with `acks: -1` to
 * `floor_{BENCH_QUEUE}`, naming the reply partition it reads; the results
 * arrive on that partition of `floor_reply_{BENCH_QUEUE}`, which it reads
 * from its end with a consumer group of its own (it commits nothing: results
 * are matched to waiting calls by id, and others' results are skipped).
 *
 * Run by the conductor (see `bench/participant.ts`).
 *
 * @module
 */

import { Kafka, logLevel } from "kafkajs";
import { runClient } from "../participant.ts";
import { env } from "../participant.ts";
import { FLOOR_PARTITIONS, floorTopics, kafkaBrokers } from "./floor_kafka_topics.ts";

const { requests, replies } = floorTopics(env("BENCH_QUEUE"));
const kafka = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
const clientId = crypto.randomUUID();
const partition = Math.floor(Math.random() * FLOOR_PARTITIONS);

/** Calls waiting for their result, by request id. */
const waiting = new Map<string, (result: number) => void>();
let counter = 0;

const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
await producer.connect();
const consumer = kafka.consumer({
  groupId: `floor_client_${clientId}`,
  maxWaitTimeInMs: 100,
  allowAutoTopicCreation: false,
});
await consumer.connect();
await consumer.subscribe({ topic: replies, fromBeginning: false });
const joined = new Promise<void>((resolve) =>
  consumer.on(consumer.events.GROUP_JOIN, () => resolve())
);
await consumer.run({
  autoCommit: false,
  eachBatch: ({ batch }) => {
    for (const message of batch.messages) {
      const { id, r } = JSON.parse(message.value!.toString()) as { id: string; r: number };
      const resolve = waiting.get(id);
      if (resolve === undefined) continue; // another client's, or a duplicate
      waiting.delete(id);
      resolve(r);
    }
    return Promise.resolve();
  },
});
await joined;

function add(a: number, b: number): Promise<number> {
  const id = `${clientId}_${counter++}`;
  const { promise, resolve, reject } = Promise.withResolvers<number>();
  waiting.set(id, resolve);
  producer.send({
    topic: requests,
    acks: -1,
    messages: [{ key: id, value: JSON.stringify({ id, a, b, p: partition }) }],
  }).catch((err: unknown) => {
    waiting.delete(id);
    reject(err);
  });
  return promise;
}

await runClient(add, async () => {
  await consumer.disconnect();
  await producer.disconnect();
});
