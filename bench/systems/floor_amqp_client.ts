/**
 * The RabbitMQ floor's client (see `floor_amqp_server.ts` for what the floor
 * is). Per call it publishes one persistent request to the durable request
 * queue on a confirm channel, naming its own durable reply queue and the
 * call's correlation id; it takes each result from that queue and
 * acknowledges it.
 *
 * Run by the conductor (see `bench/participant.ts`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { connect } from "amqplib";
import { brokerUrl, env, runClient } from "../participant.ts";

// Nagle off, as prpc has it (amqplib leaves it on: 40 ms per call at 1 in flight).
const connection = await connect(brokerUrl("amqp"), { noDelay: true });
const channel = await connection.createConfirmChannel();
const requests = `floor_${env("BENCH_QUEUE")}`;
await channel.assertQueue(requests, { durable: true });
const replies = `floor_reply_${crypto.randomUUID()}`;
// Durable, and deleted by RabbitMQ a minute after the client is gone.
await channel.assertQueue(replies, { durable: true, expires: 60_000 });

/** Calls waiting for their result, by correlation id. */
const waiting = new Map<string, (result: number) => void>();
let counter = 0;

await channel.consume(replies, (message) => {
  if (message === null) return;
  channel.ack(message);
  const resolve = waiting.get(message.properties.correlationId);
  if (resolve === undefined) return; // a duplicate
  waiting.delete(message.properties.correlationId);
  resolve((JSON.parse(message.content.toString()) as { r: number }).r);
}, { noAck: false });

function add(a: number, b: number): Promise<number> {
  const id = String(counter++);
  const { promise, resolve, reject } = Promise.withResolvers<number>();
  waiting.set(id, resolve);
  channel.sendToQueue(
    requests,
    Buffer.from(JSON.stringify({ a, b })),
    { persistent: true, replyTo: replies, correlationId: id },
    (err: unknown) => {
      if (err) {
        waiting.delete(id);
        reject(err);
      }
    },
  );
  return promise;
}

await runClient(add, async () => {
  await channel.close();
  await connection.close();
});
