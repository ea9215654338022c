/**
 * RabbitMQ-specific behaviour of the AMQP broker, on a real RabbitMQ: reply
 * queues, publisher confirms, the raw protocol with and without `reply_to`,
 * dead letters and recovery from connections closed by the broker.
 */
import type { Channel } from "amqplib";
import { connect } from "../brokers/amqp.ts";
import { type AppServer, BrokerError, callContext, Client } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import {
  amqpForTests,
  type AmqpScope,
  amqpTest,
  closeConnectionsNamed,
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
    : "rabbitmqctl cannot reach the RabbitMQ of the tests (it closes connections from the broker's side)");
if (rabbit.ignore === undefined && noRabbitmqctl !== undefined) {
  console.warn(`[prpc tests] skipping the AMQP recovery test: ${noRabbitmqctl}`);
}

/** Registers a test with a scope of its own. */
function test(name: string, fn: (scope: AmqpScope) => Promise<void>, ignore = rabbit.ignore) {
  amqpTest(rabbit, name, fn, ignore);
}

/** Consumes `prpc_{queue}` as a stand-in server, to see the requests a client sends. */
async function standInServer(scope: AmqpScope): Promise<{ channel: Channel; requests: Received }> {
  const channel = await scope.channel();
  const requests = new Received();
  await channel.assertQueue(`prpc_${scope.queue}`, DURABLE);
  await channel.consume(`prpc_${scope.queue}`, requests.push, { noAck: true });
  return { channel, requests };
}

test("a client's reply queue is deleted when the client closes", async (scope) => {
  const { channel, requests } = await standInServer(scope);
  const client = await scope.client();
  const call = client.call("anything", [], {}, { timeoutMs: 30_000 });
  const request = json(await requests.next());
  const replyQueue = String(request.reply_to);
  assert(replyQueue.startsWith("prpc_reply_"), replyQueue);
  assertEquals((await channel.checkQueue(replyQueue)).consumerCount, 1);
  await client.close();
  await assertRejects(call, BrokerError, "closed");
  const check = await scope.channel();
  const gone = await check.checkQueue(replyQueue).then(() => "exists", (err) => err.code);
  assertEquals(gone, 404);
});

test("replies for unknown message ids and non-results are ignored", async (scope) => {
  const { channel, requests } = await standInServer(scope);
  const client = await scope.client();
  const call = client.call("answer", [], {}, { timeoutMs: 30_000 });
  const request = json(await requests.next());
  const replyTo = String(request.reply_to);
  const result = (messageId: unknown, value: unknown) => ({
    func_name: "answer",
    message_id: messageId,
    result: value,
    exception_info: null,
    date_create_message: "2026-01-01T00:00:00.000+00:00",
    date_done_message: "2026-01-01T00:00:00.000+00:00",
  });
  const stranger = crypto.randomUUID();
  send(channel, replyTo, result(stranger, "not yours"), { correlationId: stranger });
  send(channel, replyTo, "not json at all");
  send(channel, replyTo, result(request.message_id, 42), {
    correlationId: String(request.message_id),
  });
  assertEquals(await call, 42);
  const ignored = scope.logger.at("debug").filter((line) =>
    line.message === "ignored a result nobody waits for"
  );
  assertEquals(ignored.map((line) => line.details?.messageId), [stranger]);
  assertEquals(scope.logger.at("warn").map((line) => line.message), [
    "ignored a reply that is not a prpc result",
  ]);
  assertEquals(client.pendingCalls, 0);
});

test("a request RabbitMQ refuses (publisher confirm nack) fails the call", async (scope) => {
  // An operator's queue that takes nothing: the client uses it as it is and gets a nack.
  const channel = await scope.channel();
  await channel.assertQueue(`prpc_${scope.queue}`, {
    ...DURABLE,
    maxLength: 0,
    overflow: "reject-publish",
  });
  const client = await scope.client();
  await assertRejects(client.call("anything"), BrokerError, "RabbitMQ refused the message");
  assertEquals(client.pendingCalls, 0);
  const used = scope.logger.at("info").find((line) =>
    line.message === "a queue exists with other arguments; using it as it is"
  );
  assertEquals(used?.details?.queue, `prpc_${scope.queue}`);
});

test(
  "raw requests get their result at reply_to or on prpc_feedback_raw_{queue}",
  async (scope) => {
    await scope.server((app) => app.register("summ", (a: number, b: number, z = 0.5) => a + b + z));
    const channel = await scope.channel();
    const raw = `prpc_raw_${scope.queue}`;
    const request = (messageId: string, extra = {}) => ({
      func_name: "summ",
      func_args: [1, 2],
      func_kwargs: { z: 1 },
      message_id: messageId,
      ...extra,
    });

    // The tutorial's way: an exclusive queue of the client, reply_to and correlation_id properties.
    const { queue: ownQueue } = await channel.assertQueue("", { exclusive: true });
    const replies = new Received();
    await channel.consume(ownQueue, replies.push, { noAck: true });
    const byProperty = crypto.randomUUID();
    send(channel, raw, request(byProperty), { replyTo: ownQueue, correlationId: "corr-1" });
    const first = await replies.next();
    assertEquals(first.properties.correlationId, "corr-1");
    assertEquals(first.properties.messageId, byProperty);
    assertEquals(first.properties.contentType, "application/json");
    const firstResult = json(first);
    assertEquals(firstResult.result, 4);
    assertEquals(firstResult.func_args, [1, 2], "raw results echo the arguments");

    // reply_to as a field of the JSON; correlation_id then is the message_id.
    const byField = crypto.randomUUID();
    send(channel, raw, request(byField, { reply_to: ownQueue }));
    const second = await replies.next();
    assertEquals(second.properties.correlationId, byField);
    assertEquals(json(second).message_id, byField);

    // RabbitMQ's direct reply-to works too: the server answers the address RabbitMQ wrote.
    const direct = new Received();
    await channel.consume("amq.rabbitmq.reply-to", direct.push, { noAck: true });
    const byDirect = crypto.randomUUID();
    send(channel, raw, request(byDirect), { replyTo: "amq.rabbitmq.reply-to" });
    assertEquals(json(await direct.next()).message_id, byDirect);

    // Without reply_to: a persistent message with a TTL on the durable feedback queue.
    const feedback = new Received();
    await channel.assertQueue(`prpc_feedback_raw_${scope.queue}`, DURABLE);
    await channel.consume(`prpc_feedback_raw_${scope.queue}`, feedback.push, { noAck: true });
    const noReplyTo = crypto.randomUUID();
    send(channel, raw, request(noReplyTo));
    const stored = await feedback.next();
    assertEquals(stored.properties.messageId, noReplyTo);
    assertEquals(stored.properties.deliveryMode, 2);
    assertEquals(stored.properties.expiration, "600000");
    assertEquals(json(stored).result, 4);
  },
);

test(
  "readResult() finds raw results on a client connection, never on a serving one",
  async (scope) => {
    await scope.server((app) => app.register("echo", (value: unknown) => value));
    const broker = await connect({ url: rabbit.url, logger: scope.logger });
    scope.defer(() => broker.close());
    const messageId = crypto.randomUUID();
    await broker.publish(
      scope.queue,
      "raw",
      JSON.stringify({ func_name: "echo", func_args: ["x"], message_id: messageId }),
    );
    const body = await waitFor(() => broker.readResult(scope.queue, "raw", messageId), "result");
    assertEquals(JSON.parse(body).result, "x");
    assertEquals(await broker.readResult(scope.queue, "native", messageId), null);

    const serving = await connect({ url: rabbit.url, logger: scope.logger });
    scope.defer(() => serving.close());
    const subscription = await serving.consume(`${scope.queue}_other`, () => {}, { prefetch: 1 });
    scope.defer(() => subscription.close());
    assertEquals(await serving.readResult(scope.queue, "raw", messageId), null);
  },
);

test(
  "unreadable requests go to the durable prpc_dead_{queue} with the reason in headers",
  async (scope) => {
    await scope.server((app) => app.register("echo", (value: unknown) => value));
    const channel = await scope.channel();
    send(channel, `prpc_raw_${scope.queue}`, "not json", { replyTo: "nobody" });
    const broker = await connect({ url: rabbit.url, logger: scope.logger });
    scope.defer(() => broker.close());
    const entries = await waitFor(async () => {
      const read = await broker.readDeadLetters(scope.queue, 10);
      return read.length > 0 && read;
    }, "the dead letter");
    const letter = await channel.get(`prpc_dead_${scope.queue}`, { noAck: false });
    assert(letter !== false, "readDeadLetters() left the message in its queue");
    assertEquals(letter.content.toString("utf8"), "not json");
    assertEquals(letter.properties.deliveryMode, 2);
    assertEquals(letter.properties.replyTo, "nobody");
    const headers = letter.properties.headers ?? {};
    assert(
      String(headers["x-prpc-dead-reason"]).includes("not JSON"),
      headers["x-prpc-dead-reason"],
    );
    assertEquals(headers["x-prpc-dead-kind"], "raw");
    assert(/^\d{4}-\d\d-\d\dT/.test(String(headers["x-prpc-dead-date"])));
    channel.nack(letter, false, true);
    assertEquals(entries.map((entry) => [entry.kind, entry.body]), [["raw", "not json"]]);
    assertEquals(await broker.readDeadLetters(`${scope.queue}_none`, 10), []);
  },
);

test(
  "a prpc client with protocol raw reads its results from prpc_feedback_raw_{queue}",
  async (scope) => {
    await scope.server((app) => app.register("add", (a: number, b: number) => a + b));
    const client = await Client.connect({
      broker: "amqp",
      url: rabbit.url,
      queue: scope.queue,
      logger: scope.logger,
      protocol: "raw",
    });
    scope.defer(() => client.close());
    assertEquals(await Promise.all([client.call("add", [1, 2]), client.call("add", [3, 4])]), [
      3,
      7,
    ]);
  },
);

test(
  "maxWorkers is one budget across both queues: a busy server leaves the other queue to an idle one",
  async (scope) => {
    let running = 0;
    let most = 0;
    const release = deferred<void>();
    const held = deferred<void>();
    scope.defer(() => Promise.resolve(release.resolve()));
    const register = (name: string) => (app: AppServer) => {
      app.register("hold", async () => {
        most = Math.max(most, ++running);
        held.resolve();
        await release.promise;
        running--;
        return name;
      });
      app.register("where", () => name);
    };
    await scope.server(register("busy"), { maxWorkers: 1 });
    const client = await scope.client();
    const native = client.call("hold", [], {}, { timeoutMs: 30_000 });
    native.catch(() => {}); // awaited below; if the test fails earlier, close() rejects it
    await held.promise;

    // A raw request while the only worker is taken: RabbitMQ must keep it for another server.
    const channel = await scope.channel();
    const { queue: replies } = await channel.assertQueue("", { exclusive: true });
    const rawReplies = new Received();
    await channel.consume(replies, rawReplies.push, { noAck: true });
    send(channel, `prpc_raw_${scope.queue}`, {
      func_name: "where",
      message_id: crypto.randomUUID(),
    }, { replyTo: replies });
    await scope.server(register("idle"), { maxWorkers: 1 });
    const answer = await within(rawReplies.next(), 15_000, "answer from the idle server");
    assertEquals(json(answer).result, "idle");
    assertEquals(running, 1, "the busy server still runs its call");

    release.resolve();
    assertEquals(await native, "busy");
    assertEquals(most, 1);
  },
);

test("servers and clients work on quorum queues an operator declared", async (scope) => {
  const channel = await scope.channel();
  for (const name of [`prpc_${scope.queue}`, `prpc_raw_${scope.queue}`]) {
    await channel.assertQueue(name, { ...DURABLE, arguments: { "x-queue-type": "quorum" } });
  }
  const firstStarted = deferred<void>();
  const first = await scope.server((app) =>
    app.register("attempt", () => {
      firstStarted.resolve();
      return new Promise(() => {});
    }), { maxWorkers: 2 });
  const client = await scope.client();
  const call = client.call("attempt", [], {}, { timeoutMs: 30_000 });
  await firstStarted.promise;
  await scope.server((app) => app.register("attempt", () => callContext().attempt));
  await first.stop({ graceMs: 0 });
  assertEquals(await call, 2, "handed back and counted on a quorum queue");
  assertEquals(scope.logger.at("error"), []);
});

test("connections closed by the broker are recovered by server and client", async (scope) => {
  const id = crypto.randomUUID().slice(0, 8);
  const serverName = `prpc-test-server-${id}`;
  const clientName = `prpc-test-client-${id}`;
  const fast = { reconnectMinMs: 20, reconnectMaxMs: 200 };
  const holdRelease = deferred<void>();
  const holdStarted = deferred<void>();
  const firstRun = deferred<void>();
  const finishFirstRun = deferred<void>();
  scope.defer(() => {
    holdRelease.resolve();
    finishFirstRun.resolve();
    return Promise.resolve();
  });
  await scope.server((app) => {
    app.register("add", (a: number, b: number) => a + b);
    app.register("hold", async () => {
      holdStarted.resolve();
      await holdRelease.promise;
      return "held";
    });
    app.register("attempt", async () => {
      const attempt = callContext().attempt;
      if (attempt === 1) {
        firstRun.resolve();
        await finishFirstRun.promise;
      }
      return attempt;
    });
  }, { maxWorkers: 4, brokerSettings: { ...fast, connectionName: serverName } });
  const client = await scope.client({ ...fast, connectionName: clientName });
  assertEquals(await client.call("add", [1, 2]), 3);

  const reconnected = (name: string, count: number) =>
    waitFor(
      () =>
        scope.logger.at("info").filter((line) =>
          line.message === "reconnected to RabbitMQ" && line.details?.connection === name
        ).length >= count,
      `${name} to reconnect`,
    );

  // The client's connection goes while a call runs: the result waits in its reply queue.
  const held = client.call("hold", [], {}, { timeoutMs: 30_000 });
  held.catch(() => {}); // awaited below; if the test fails earlier, close() rejects it
  await holdStarted.promise;
  assertEquals(await closeConnectionsNamed(clientName), 1);
  await reconnected(clientName, 1);
  holdRelease.resolve();
  assertEquals(await held, "held");

  // The server's connection goes while a call runs: RabbitMQ delivers the request again to
  // the reconnected server, and the first run's late result is dropped without an error.
  const attempt = client.call("attempt", [], {}, { timeoutMs: 30_000 });
  attempt.catch(() => {}); // awaited below
  await firstRun.promise;
  assertEquals(await closeConnectionsNamed(serverName), 1);
  assertEquals(await attempt, 2);
  await reconnected(serverName, 1);
  finishFirstRun.resolve();
  assertEquals(await client.call("add", [2, 3]), 5, "both sides serve after reconnecting");
  await waitFor(
    () =>
      scope.logger.at("debug").some((line) =>
        line.message.startsWith("the connection was lost before a message was settled")
      ),
    "the first run to end",
  );
  for (const name of [serverName, clientName]) {
    assert(
      scope.logger.at("warn").some((line) =>
        line.message === "lost the connection to RabbitMQ; reconnecting" &&
        line.details?.connection === name
      ),
      `${name} logged the loss`,
    );
  }
  assertEquals(scope.logger.at("error"), []);
}, noRabbitmqctl);
