/**
 * Kafka broker: what the conformance suite cannot see. Servers sharing a
 * group, commits while requests of one partition run at once, reply routing,
 * raw interop with a plain kafkajs client, size limits and readResult.
 */
import { ConfigResourceTypes } from "kafkajs";
import { AppServer, Client, connectBroker, type Delivery, PayloadTooLargeError } from "../mod.ts";
import { feedbackName, requestQueueName } from "../brokers/types.ts";
import { topicOffsets } from "../brokers/kafka/offsets.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { type Deferred, deferred, waitFor } from "./support/async.ts";
import { kafkaTest } from "./support/kafka_setup.ts";
import { testUrl } from "./support/kafka_target.ts";
import { RecordingLogger } from "./support/logger.ts";

kafkaTest(
  "two servers in the group share the partitions, both serve, and one takes over",
  async (k) => {
    const register = (name: string) => (app: { register: (n: string, f: () => string) => void }) =>
      app.register("whoami", () => name);
    const first = await k.server(register("first"), { maxWorkers: 2 });
    await k.server(register("second"), { maxWorkers: 2 });
    const client = await k.client();
    const names = await Promise.all(Array.from({ length: 40 }, () => client.call("whoami")));
    assert(names.includes("first") && names.includes("second"), names.join(","));

    await first.stop();
    const after = await Promise.all(Array.from({ length: 10 }, () => client.call("whoami")));
    assertEquals(new Set(after), new Set(["second"]), "the group gave every partition to second");
  },
  { queueTopicPartitions: 4 },
);

kafkaTest(
  "servers of different queues share one group and each serves its own queue",
  async (k) => {
    const other = `${k.queue}_other`;
    await k.server((app) => app.register("where", () => "main"));
    await k.server((app) => app.register("where", () => "other"), { queue: other });
    const main = await k.client();
    const second = await k.client({ queue: other });
    assertEquals(await main.call("where"), "main");
    assertEquals(await second.call("where"), "other");
  },
);

kafkaTest("servers use the group prpc_group_consumers unless groupId says otherwise", async (k) => {
  const url = k.url.replace(/groupId=[^&]*&?/, "");
  await k.server((app) => app.register("ping", () => "pong"), { url });
  const client = await k.client({ url });
  assertEquals(await client.call("ping"), "pong");
  const topic = requestQueueName(k.queue, "native");
  await waitFor(async () => {
    const offsets = await k.committed(topic, "prpc_group_consumers");
    return [...offsets.values()].some((offset) => offset >= 1);
  }, "a commit of prpc_group_consumers");
});

kafkaTest(
  "a partition's requests run at once up to maxWorkers; commits never pass an unfinished one",
  async (k) => {
    const latches: Deferred<void>[] = [deferred(), deferred(), deferred(), deferred()];
    const started: number[] = [];
    let running = 0;
    let most = 0;
    await k.server((app) =>
      app.register("hold", async (i: number) => {
        started.push(i);
        most = Math.max(most, ++running);
        await latches[i]?.promise;
        running--;
        return i;
      }), { maxWorkers: 3 });
    const broker = await k.broker();
    const replies = new Map<string, unknown>();
    const inbox = await broker.openInbox((body) => {
      const result = JSON.parse(body);
      replies.set(result.message_id, result.result);
    });
    // Sent one after another to the topic's one partition: offsets 0, 1, 2 and 3.
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const id = crypto.randomUUID();
      ids.push(id);
      await broker.publish(
        k.queue,
        "native",
        JSON.stringify({
          func_name: "hold",
          func_args: [i],
          message_id: id,
          reply_to: inbox.address,
        }),
      );
    }
    const topic = requestQueueName(k.queue, "native");
    await waitFor(() => running === 3, "three requests running");
    assertEquals(started, [0, 1, 2], "the fourth waits for a free place");

    latches[1]?.resolve();
    await waitFor(() => replies.has(ids[1] ?? ""), "the result of request 1");
    await waitFor(() => started.length === 4, "request 3 starting in the freed place");
    assertEquals((await k.committed(topic)).get(0), 0, "request 0 still runs: nothing past it");

    latches[0]?.resolve();
    await waitFor(async () => (await k.committed(topic)).get(0) === 2, "the commit past 0 and 1");
    for (const id of ids.slice(0, 2)) {
      assert(await broker.readResult(k.queue, "native", id) !== null, "produced before the commit");
    }
    latches[2]?.resolve();
    latches[3]?.resolve();
    await waitFor(async () => (await k.committed(topic)).get(0) === 4, "the commit past all four");
    assertEquals(most, 3);
    // Produced before each commit, but the inbox reads them on its own schedule.
    await waitFor(() => replies.size === 4, "the four results in the inbox");
    assertEquals([...replies.values()].sort(), [0, 1, 2, 3]);
  },
  { queueTopicPartitions: 1 },
);

kafkaTest(
  "release() while consuming hands the request out again soon, as its next attempt",
  async (k) => {
    const broker = await k.broker();
    const deliveries: Delivery[] = [];
    const subscription = await broker.consume(k.queue, (d) => deliveries.push(d), { prefetch: 3 });
    await broker.publish(k.queue, "raw", "first");
    await broker.publish(k.queue, "raw", "second");
    await waitFor(() => deliveries.length === 2, "two deliveries");
    const [first, second] = deliveries as [Delivery, Delivery];
    assertEquals([first.body, first.attempt, second.body, second.attempt], [
      "first",
      1,
      "second",
      1,
    ]);
    await first.release();
    const again = await waitFor(() => deliveries[2], "the request handed out again");
    assertEquals([again.body, again.attempt], ["first", 2]);
    await again.complete({ messageId: crypto.randomUUID(), body: "{}" });
    await second.complete({ messageId: crypto.randomUUID(), body: "{}" });
    await subscription.close();
    assertEquals(deliveries.length, 3, "the running second request was not handed out again");
  },
  { queueTopicPartitions: 1 },
);

kafkaTest(
  "results go to the caller's partition, keyed by message_id; inboxes read from their first call on",
  async (k) => {
    await k.server((app) => app.register("echo", (value: string) => value));
    const broker = await k.broker();
    const replies: string[] = [];
    const inbox = await broker.openInbox((body) => replies.push(JSON.parse(body).result));
    // Results addressed to this inbox that were on the topic before its first call.
    const producer = await k.producer();
    const feedback = feedbackName(k.queue, "native");
    // Read as prpc reads them: right after the topic was created a partition may not have
    // taken its leadership yet (NOT_LEADER_FOR_PARTITION on a real Kafka).
    const partitions = (await topicOffsets(await k.admin(), feedback)).map((p) => p.partition);
    for (const partition of partitions) {
      await producer.send({
        topic: feedback,
        messages: [{
          partition,
          key: crypto.randomUUID(),
          value: JSON.stringify({ result: "old", message_id: crypto.randomUUID() }),
          headers: { prpc_reply_to: inbox.address },
        }],
      });
    }
    const messageId = crypto.randomUUID();
    await broker.publish(
      k.queue,
      "native",
      JSON.stringify({
        func_name: "echo",
        func_args: ["new"],
        message_id: messageId,
        reply_to: inbox.address,
      }),
    );
    await waitFor(() => replies.length > 0, "the reply");
    assertEquals(replies, ["new"], "nothing from before the first call");

    const requests = await k.readTopic(requestQueueName(k.queue, "native"));
    const results = await k.readTopic(feedback);
    const request = await waitFor(() => requests.records[0], "the request record");
    const result = await waitFor(
      () => results.records.find((r) => r.message.key?.toString() === messageId),
      "the result record",
    );
    assertEquals(
      String(result.partition),
      request.message.headers?.prpc_reply_partition?.toString(),
      "the partition the request named",
    );
    assertEquals(result.message.headers?.prpc_reply_to?.toString(), inbox.address);
  },
);

kafkaTest(
  "a connection's inbox gets only its own results, also from a shared partition",
  async (k) => {
    await k.server((app) => app.register("echo", (value: string) => value));
    const one = await k.client();
    const two = await k.client();
    // Each client calls twice, interleaved: whatever partitions they read, each
    // reader passes the other's first results before its own second one.
    assertEquals(await one.call("echo", ["one-a"]), "one-a");
    assertEquals(await two.call("echo", ["two-a"]), "two-a");
    assertEquals(await one.call("echo", ["one-b"]), "one-b");
    assertEquals(await two.call("echo", ["two-b"]), "two-b");
    assertEquals(k.logger.at("debug").filter((l) => l.message.includes("nobody waits")), []);
  },
  { feedbackTopicPartitions: 1 },
);

kafkaTest(
  "a plain kafkajs client puts JSON on prpc_raw_{queue} and finds its result on prpc_feedback_raw_{queue}",
  async (k) => {
    await k.server((app) => app.register("summ", (a: number, b: number, z = 0.5) => a + b + z));
    const producer = await k.producer();
    const messageId = crypto.randomUUID();
    await producer.send({
      topic: `prpc_raw_${k.queue}`,
      messages: [{
        value: JSON.stringify({
          func_name: "summ",
          func_args: [1, 2],
          func_kwargs: { z: 1 },
          message_id: messageId,
        }),
      }],
    });
    const { records } = await k.readTopic(`prpc_feedback_raw_${k.queue}`);
    const record = await waitFor(
      () =>
        records.find((r) =>
          JSON.parse(r.message.value?.toString() ?? "{}").message_id === messageId
        ),
      "the result on the feedback topic",
    );
    assertEquals(record.message.key?.toString(), messageId, "keyed by message_id");
    const result = JSON.parse(record.message.value?.toString() ?? "");
    assertEquals(result.result, 4);
    assertEquals(result.exception_info, null);
    assertEquals(result.func_args, [1, 2]);
    assertEquals(result.func_kwargs, { z: 1 });
  },
);

kafkaTest(
  "requests over the limit fail with PayloadTooLargeError, before sending or from Kafka",
  async (k) => {
    const broker = await k.broker();
    // The limit is the one the broker enforces, read from its configuration.
    const admin = await k.admin();
    const { brokers } = await admin.describeCluster();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.BROKER, name: String(brokers[0]?.nodeId) }],
    });
    const configured = Number(
      resources[0]?.configEntries.find((entry) => entry.configName === "message.max.bytes")
        ?.configValue,
    );
    assert(configured > 0, "the broker tells its message.max.bytes");
    assertEquals(broker.maxMessageBytes, configured - 1024);
    const error = await assertRejects(
      broker.publish(k.queue, "raw", "x".repeat(broker.maxMessageBytes + 1)),
      PayloadTooLargeError,
      `the Kafka broker's limit is ${configured - 1024} bytes`,
    );
    assertEquals(error.limit, configured - 1024);
    // Told that Kafka takes 4 MiB when it takes its default of about 1 MiB: Kafka refuses.
    const optimistic = await k.broker({ maxMessageBytes: 4 * 1024 * 1024 });
    const refused = await assertRejects(
      optimistic.publish(k.queue, "raw", "y".repeat(2 * 1024 * 1024)),
      PayloadTooLargeError,
      "MESSAGE_TOO_LARGE",
    );
    assertEquals(refused.size, 2 * 1024 * 1024);
    await optimistic.publish(k.queue, "raw", "small enough");
  },
);

kafkaTest("a request of exactly maxMessageBytes and a result just under it travel", async (k) => {
  await k.server((app) => {
    app.register("size", (text: string) => text.length);
    app.register("make", (size: number) => "z".repeat(size));
  });
  const broker = await k.broker();
  const messageId = crypto.randomUUID();
  const request = { func_name: "size", func_args: [""], message_id: messageId };
  const padding = broker.maxMessageBytes - JSON.stringify(request).length;
  request.func_args = ["x".repeat(padding)];
  assertEquals(new TextEncoder().encode(JSON.stringify(request)).length, broker.maxMessageBytes);
  await broker.publish(k.queue, "raw", JSON.stringify(request));
  const result = JSON.parse(
    await waitFor(() => broker.readResult(k.queue, "raw", messageId), "the result"),
  );
  // The raw result echoes the arguments, so it is too large itself: shortened to an error.
  assert(result.exception_info.startsWith("PayloadTooLargeError"), result.exception_info);

  const client = await k.client();
  const big = await client.call<string>("make", [broker.maxMessageBytes - 400]);
  assertEquals(big.length, broker.maxMessageBytes - 400);
});

kafkaTest("readResult finds results of the last resultTtlSec, not older ones", async (k) => {
  await k.server(() => {});
  const producer = await k.producer();
  const topic = feedbackName(k.queue, "raw");
  const [recent, old] = [crypto.randomUUID(), crypto.randomUUID()];
  await producer.send({
    topic,
    messages: [
      { key: old, value: `{"message_id":"${old}"}`, timestamp: String(Date.now() - 7_200_000) },
      { key: recent, value: `{"message_id":"${recent}"}` },
    ],
  });
  const broker = await k.broker();
  assertEquals(await broker.readResult(k.queue, "raw", recent), `{"message_id":"${recent}"}`);
  assertEquals(await broker.readResult(k.queue, "raw", old), null, "two hours old");
  assertEquals(await broker.readResult(k.queue, "raw", crypto.randomUUID()), null);
  assertEquals(await broker.readResult(`${k.queue}_none`, "raw", recent), null, "no such topic");
}, { resultTtlSec: 3600 });

Deno.test("kafka: without a maxMessageBytes setting, the limit is the broker's message.max.bytes", async () => {
  // A broker of its own, with a limit that no default would guess.
  const { startKafkaDouble } = await import("./support/kafka_double/mod.ts");
  const double = await startKafkaDouble({ maxMessageBytes: 300_000 });
  const logger = new RecordingLogger();
  const read = await connectBroker("kafka", { url: double.url, logger });
  const given = await connectBroker("kafka", {
    url: double.url,
    settings: { maxMessageBytes: 200_000 },
    logger,
  });
  try {
    assertEquals(read.maxMessageBytes, 300_000 - 1024);
    assertEquals(given.maxMessageBytes, 200_000 - 1024, "a setting is taken as given");
    assertEquals(logger.at("warn"), []);
  } finally {
    await read.close();
    await given.close();
    await double.close();
  }
});

Deno.test("kafka: a new queue whose topics the broker's metadata does not list yet for 300 ms starts and serves", async () => {
  // A KRaft broker answers UNKNOWN_TOPIC_OR_PARTITION for a moment after creating a topic; a
  // CI run on a real one failed so in kafkajs's own wait for leaders.
  const { startKafkaDouble } = await import("./support/kafka_double/mod.ts");
  const double = await startKafkaDouble({ metadataLagMs: 300 });
  const url = testUrl(double.url, { groupId: `prpc_group_${crypto.randomUUID()}` });
  const queue = `lagging_${crypto.randomUUID().slice(0, 8)}`;
  const logger = new RecordingLogger();
  const server = new AppServer({ broker: "kafka", url, queue, handleSignals: false, logger })
    .register("add", (a: number, b: number) => a + b);
  let client: Client | undefined;
  try {
    await server.start();
    client = await Client.connect({ broker: "kafka", url, queue, logger });
    assertEquals(await client.call("add", [2, 3]), 5);
    assertEquals(logger.at("error"), []);
  } finally {
    await client?.close();
    await server.stop({ graceMs: 0 });
    await double.close();
  }
});
