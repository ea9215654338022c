/**
 * What RabbitMQ refuses, on a real RabbitMQ: results and dead letters that
 * their queue rejects, redeliveries that cannot be counted on a full queue,
 * messages above RabbitMQ's size limit, and queues deleted under a client.
 * Each of these must end the request (or fail the call) once, and never loop.
 */
import type { ConsumeMessage } from "amqplib";
import { connect } from "../brokers/amqp.ts";
import { BrokerError, callContext, PayloadTooLargeError } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import {
  amqpForTests,
  type AmqpScope,
  amqpTest,
  channelsOfConnection,
  DURABLE,
  json,
  rabbitmqctlAvailable,
  Received,
  send,
  within,
} from "./support/amqp_server.ts";

const rabbit = await amqpForTests();
const noRabbitmqctl = rabbit.ignore ??
  (await rabbitmqctlAvailable(rabbit.url)
    ? undefined
    : "rabbitmqctl cannot reach the RabbitMQ of the tests (it counts channels)");

function test(name: string, fn: (scope: AmqpScope) => Promise<void>, ignore = rabbit.ignore) {
  amqpTest(rabbit, name, fn, ignore);
}

/** Declares a queue that refuses every message (a full queue that rejects publishes). */
async function refusingQueue(scope: AmqpScope, name: string): Promise<string> {
  const channel = await scope.channel();
  await channel.assertQueue(name, { ...DURABLE, maxLength: 0, overflow: "reject-publish" });
  return name;
}

function logged(scope: AmqpScope, level: "warn" | "error", message: string): number {
  return scope.logger.at(level).filter((line) => line.message === message).length;
}

test("a result its reply_to refuses is dropped: the request is acknowledged, not run again", async (scope) => {
  const sink = await refusingQueue(scope, `${scope.queue}_sink`);
  let runs = 0;
  await scope.server((app) => {
    app.register("count", () => ++runs);
    app.register("ping", () => "pong");
  });
  const channel = await scope.channel();
  send(channel, `prpc_raw_${scope.queue}`, {
    func_name: "count",
    message_id: crypto.randomUUID(),
  }, { replyTo: sink });
  await waitFor(
    () => logged(scope, "warn", "dropped a result: RabbitMQ refused it") > 0,
    "the refused result to be dropped",
  );
  const client = await scope.client();
  assertEquals(await client.call("ping"), "pong");
  assertEquals(runs, 1);
  assertEquals((await channel.checkQueue(`prpc_raw_${scope.queue}`)).messageCount, 0);
  assertEquals(
    await channel.checkQueue(`prpc_dead_${scope.queue}`).then(() => "exists", () => "none"),
    "none",
  );
  assertEquals(scope.logger.at("error"), []);
});

test("a dead letter whose error result its reply_to refuses is set aside once", async (scope) => {
  const sink = await refusingQueue(scope, `${scope.queue}_sink`);
  await scope.server((app) => app.register("ping", () => "pong"), { maxDeliveries: 2 });
  const channel = await scope.channel();
  // Past its delivery limit: the server sets it aside and sends an error result, which the sink refuses.
  send(channel, `prpc_raw_${scope.queue}`, {
    func_name: "ping",
    message_id: crypto.randomUUID(),
  }, { replyTo: sink, headers: { "x-prpc-delivery": 3 } });
  await waitFor(
    () => logged(scope, "warn", "dropped the error result of a dead letter") > 0,
    "the refused error result to be dropped",
  );
  const client = await scope.client();
  assertEquals(await client.call("ping"), "pong");
  assertEquals((await channel.checkQueue(`prpc_dead_${scope.queue}`)).messageCount, 1);
  assertEquals((await channel.checkQueue(`prpc_raw_${scope.queue}`)).messageCount, 0);
  assertEquals(logged(scope, "warn", "dropped the error result of a dead letter"), 1);
  assertEquals(scope.logger.at("error"), []);
});

test("a poison message the dead-letter queue refuses is rejected once, not looped", async (scope) => {
  await refusingQueue(scope, `prpc_dead_${scope.queue}`);
  await scope.server((app) => app.register("ping", () => "pong"));
  const channel = await scope.channel();
  send(channel, `prpc_raw_${scope.queue}`, "not json");
  const refused =
    "cannot set a poison message aside: RabbitMQ refused the dead letter; the message is " +
    "rejected (dropped, or sent to its queue's own dead-letter exchange if it has one)";
  await waitFor(() => logged(scope, "error", refused) > 0, "the refused dead letter");
  const client = await scope.client();
  assertEquals(await client.call("ping"), "pong");
  assertEquals(logged(scope, "error", refused), 1);
  assertEquals((await channel.checkQueue(`prpc_raw_${scope.queue}`)).messageCount, 0);
});

test("a redelivery its full queue will not take back is run in place, counted", async (scope) => {
  // An operator's queue with room for one waiting request, refusing more.
  const raw = `prpc_raw_${scope.queue}`;
  const channel = await scope.channel();
  await channel.assertQueue(raw, { ...DURABLE, maxLength: 1, overflow: "reject-publish" });
  const { queue: replyTo } = await channel.assertQueue("", { exclusive: true });
  const replies = new Received();
  await channel.consume(replyTo, replies.push, { noAck: true });
  const request = (tag: string) => ({
    func_name: "attempt",
    func_args: [tag],
    message_id: crypto.randomUUID(),
  });

  // A server that takes the first request and dies: it goes back, redelivered, while the
  // second one fills the queue, so the server below cannot put a counted copy in.
  const dying = await scope.channel();
  await dying.prefetch(1);
  const taken = deferred<ConsumeMessage>();
  await dying.consume(raw, (message) => message && taken.resolve(message), { noAck: false });
  send(channel, raw, request("first"), { replyTo });
  await taken.promise;
  send(channel, raw, request("second"), { replyTo });
  await waitFor(async () => (await channel.checkQueue(raw)).messageCount === 1, "a full queue");
  await dying.close();
  await waitFor(async () => (await channel.checkQueue(raw)).messageCount === 2, "the redelivery");

  await scope.server(
    (app) => app.register("attempt", (tag: string) => `${tag} ${callContext().attempt}`),
    { maxWorkers: 1 },
  );
  const results = [];
  for (let i = 0; i < 2; i++) {
    results.push(json(await within(replies.next(), 15_000, "result")).result);
  }
  assertEquals(results, ["first 2", "second 1"]);
  assertEquals(
    scope.logger.at("warn").map((line) => line.message),
    ["cannot count a redelivery on its queue; running it in place"],
  );
});

test("a request above RabbitMQ's max_message_size fails with PayloadTooLargeError at once", async (scope) => {
  await scope.server((app) => app.register("echo", (value: string) => value.length));
  // prpc's limit raised past RabbitMQ's (128 MiB by default), so that RabbitMQ is the one refusing.
  const client = await scope.client({
    maxMessageBytes: 512 * 1024 * 1024,
    operationTimeoutMs: 20_000,
  });
  const big = "x".repeat(129 * 1024 * 1024);
  const tooLarge = client.call("echo", [big], {}, { timeoutMs: 60_000 });
  const small = client.call("echo", ["small"], {}, { timeoutMs: 60_000 });
  small.catch(() => {}); // awaited below
  const error = await assertRejects(tooLarge, PayloadTooLargeError, "max_message_size");
  assert(error.limit !== undefined && error.size !== undefined && error.size > error.limit);
  assertEquals(await small, 5, "a request in flight with it is not lost");
  assertEquals(await client.call("echo", ["after"]), 5);
  // Only the publishing channel was opened again, not the connection.
  assertEquals(
    scope.logger.lines.filter((line) =>
      line.message === "lost the connection to RabbitMQ; reconnecting"
    ),
    [],
  );
});

test("a request to a queue deleted since it was declared declares it again", async (scope) => {
  const broker = await connect({ url: rabbit.url, logger: scope.logger });
  scope.defer(() => broker.close());
  const raw = `prpc_raw_${scope.queue}`;
  const body = () => JSON.stringify({ func_name: "f", message_id: crypto.randomUUID() });
  await broker.publish(scope.queue, "raw", body());
  const channel = await scope.channel();
  // What x-expires does to a queue nobody consumes (queueExpiresMs).
  await channel.deleteQueue(raw);
  await broker.publish(scope.queue, "raw", body());
  assertEquals((await channel.checkQueue(raw)).messageCount, 1);
  assert(
    scope.logger.at("info").some((line) =>
      line.message === "a queue was gone; declaring it again" && line.details?.queue === raw
    ),
  );
});

test("a connection whose consume() failed still reads raw results", async (scope) => {
  const channel = await scope.channel();
  // Exclusive to another connection: RabbitMQ lets nobody else declare or consume it.
  await channel.assertQueue(`prpc_${scope.queue}`, { exclusive: true });
  const broker = await connect({ url: rabbit.url, logger: scope.logger });
  scope.defer(() => broker.close());
  await assertRejects(broker.consume(scope.queue, () => {}, { prefetch: 1 }), BrokerError);
  const feedback = `prpc_feedback_raw_${scope.queue}`;
  await channel.assertQueue(feedback, DURABLE);
  const messageId = crypto.randomUUID();
  send(channel, feedback, { message_id: messageId, result: 42 }, { messageId });
  const body = await waitFor(
    () => broker.readResult(scope.queue, "raw", messageId),
    "the raw result",
  );
  assertEquals(JSON.parse(body).result, 42);
});

test("a closed subscription closes its channel", async (scope) => {
  const name = `prpc-test-${scope.queue}`;
  const broker = await connect({
    url: rabbit.url,
    logger: scope.logger,
    settings: { connectionName: name },
  });
  scope.defer(() => broker.close());
  for (let round = 0; round < 2; round++) {
    const subscription = await broker.consume(scope.queue, () => {}, { prefetch: 2 });
    const consuming = await channelsOfConnection(name);
    await subscription.close();
    assertEquals(await channelsOfConnection(name), consuming - 1);
  }
}, noRabbitmqctl);
