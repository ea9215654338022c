/**
 * The RabbitMQ floor's server: the round trip written directly with amqplib,
 * with the guarantees prpc gives on RabbitMQ. Requests wait in a durable
 * queue as persistent messages; the server takes up to BENCH_CONCURRENCY at a
 * time (prefetch), publishes each result as a persistent message to the
 * caller's reply queue on a confirm channel, and acknowledges the request only
 * once RabbitMQ has confirmed the result.
 *
 * Run by the conductor (see `bench/participant.ts`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { connect } from "amqplib";
import { brokerUrl, env, serveUntilTerminated } from "../participant.ts";

// Nagle off, as prpc has it (amqplib leaves it on: 40 ms per call at 1 in flight).
const connection = await connect(brokerUrl("amqp"), { noDelay: true });
const channel = await connection.createConfirmChannel();
const requests = `floor_${env("BENCH_QUEUE")}`;
await channel.assertQueue(requests, { durable: true });
await channel.prefetch(Number(env("BENCH_CONCURRENCY")));
await channel.consume(requests, (message) => {
  if (message === null) return;
  const { a, b } = JSON.parse(message.content.toString()) as { a: number; b: number };
  channel.sendToQueue(
    message.properties.replyTo,
    Buffer.from(JSON.stringify({ r: a + b })),
    { persistent: true, correlationId: message.properties.correlationId },
    (err: unknown) => err ? channel.nack(message) : channel.ack(message),
  );
}, { noAck: false });

await serveUntilTerminated(async () => {
  await channel.close();
  await connection.close();
});
