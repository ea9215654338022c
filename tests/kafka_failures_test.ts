/**
 * Kafka broker when things go wrong: a group that refuses the server, close()
 * while calls are under way, topics grown by another process, results looked
 * up after the fact, and results Kafka refuses as too large.
 */
import { BrokerError, callContext, connectBroker, PayloadTooLargeError } from "../mod.ts";
import { feedbackName, requestQueueName } from "../brokers/types.ts";
import { keyPartition } from "../brokers/kafka/stores.ts";
import { roundRobinAssigner } from "../brokers/kafka/assigners.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { kafkaTest } from "./support/kafka_setup.ts";
import { RecordingLogger } from "./support/logger.ts";
import { topicOffsets } from "../brokers/kafka/offsets.ts";
import { Topics } from "../brokers/kafka/topics.ts";

kafkaTest("start() fails with BrokerError when the group refuses the server", async (k) => {
  // Above group.max.session.timeout.ms (Kafka's default is 1 800 000, 300 000 before 2.3).
  const url = k.url.replace(/sessionTimeoutMs=\d+/, "sessionTimeoutMs=1800001");
  await assertRejects(
    k.server((app) => app.register("ping", () => "pong"), { url }),
    BrokerError,
    "INVALID_SESSION_TIMEOUT",
  );
});

kafkaTest(
  "start() fails with BrokerError once the first join takes longer than joinTimeoutMs",
  async (k) => {
    // Another member of the group is stuck in a batch: a join waits for it to rejoin, until its
    // rebalance timeout (60 s) or session timeout (10 s) ends, far beyond joinTimeoutMs.
    const topic = `stuck_${crypto.randomUUID().slice(0, 8)}`;
    const admin = await k.admin();
    // As prpc creates its topics: a real broker may not list a new topic for a moment.
    await new Topics(admin, 1, 60_000, 10_000).ensure([{ topic, partitions: 1 }]);
    const stuck = deferred<void>();
    const released = deferred<void>();
    const member = k.kafka.consumer({
      groupId: k.groupId,
      partitionAssigners: [roundRobinAssigner],
      sessionTimeout: 10_000,
      heartbeatInterval: 200,
      rebalanceTimeout: 60_000,
      maxWaitTimeInMs: 100,
    });
    await member.connect();
    try {
      await member.subscribe({ topics: [topic], fromBeginning: true });
      await member.run({
        eachMessage: async () => {
          stuck.resolve();
          await released.promise;
        },
      });
      await (await k.producer()).send({ topic, messages: [{ value: "x" }] });
      await stuck.promise;
      await assertRejects(
        k.server((app) => app.register("ping", () => "pong")),
        BrokerError,
        "joinTimeoutMs (1500 ms)",
      );
    } finally {
      released.resolve();
      await member.disconnect();
    }
  },
  { joinTimeoutMs: 1_500 },
);

kafkaTest(
  "close() while a call publishes, consumes and reads results leaves nothing running",
  async (k) => {
    // The topics exist first, so that the calls get as far as starting their consumers.
    const setup = await k.broker();
    await (await setup.consume(k.queue, () => {}, { prefetch: 1 })).close();

    // Not closed by the setup: this test closes it, and the sanitizers see what is left.
    const logger = new RecordingLogger();
    const groupId = `prpc_group_${crypto.randomUUID()}`;
    const broker = await connectBroker("kafka", { url: k.url, settings: { groupId }, logger });
    const inbox = await broker.openInbox(() => {});
    const body = JSON.stringify({
      func_name: "f",
      func_args: [],
      message_id: crypto.randomUUID(),
      reply_to: inbox.address,
    });
    const calls = [
      broker.publish(k.queue, "native", body),
      broker.consume(k.queue, () => {}, { prefetch: 1 }),
      broker.readResult(k.queue, "raw", crypto.randomUUID()),
      broker.readDeadLetters(k.queue, 10),
    ];
    // close() comes while the server's consumer is joining the group (kafkajs says so).
    await waitFor(
      () =>
        logger.lines.some((line) =>
          line.message.endsWith("Consumer: Starting") && line.details?.groupId === groupId
        ),
      "the consumer starting",
    );
    await broker.close();
    for (const outcome of await Promise.allSettled(calls)) {
      if (outcome.status === "rejected") {
        assert(outcome.reason instanceof BrokerError, String(outcome.reason));
      }
    }
    await assertRejects(broker.publish(k.queue, "raw", "{}"), BrokerError, "after close()");
    // A consumer left running would still be a member of the group.
    const [group] = (await (await k.admin()).describeGroups([groupId])).groups;
    assertEquals(group?.members.length ?? 0, 0, "no member left in the servers' group");
  },
);

kafkaTest(
  "a client spreads its requests over partitions a server added after its first call",
  async (k) => {
    const client = await k.client();
    // The client's first call creates prpc_{queue} with one partition.
    const early = client.call("ping", [], {}, { timeoutMs: 20_000 });
    const topic = requestQueueName(k.queue, "native");
    const admin = await k.admin();
    await waitFor(async () => (await admin.listTopics()).includes(topic), "the request topic");
    await k.server((app) => app.register("ping", () => "pong"), { maxWorkers: 4 });
    assertEquals(await early, "pong");
    const partitions = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions;
    assertEquals(partitions?.length, 4, "grown by the server");
    await waitFor(async () => {
      await client.call("ping");
      const offsets = await topicOffsets(admin, topic);
      return offsets.some(({ partition, high }) => partition > 0 && Number(high) > 0);
    }, "a request on a partition the server added");
  },
  { metadataMaxAgeMs: 500 },
);

kafkaTest(
  "results reach clients whose reply partition is one they added after the server read the count",
  async (k) => {
    // The server reads prpc_feedback_{queue} (1 partition) at start and would trust that for a minute.
    await k.server((app) => app.register("ping", () => "pong"), {
      url: `${k.url}&feedbackTopicPartitions=1&metadataMaxAgeMs=60000`,
    });
    const url = `${k.url}&feedbackTopicPartitions=8`;
    // Each client grows the topic to 8 and reads a random one of them: most read one of 1..7.
    for (let i = 0; i < 4; i++) {
      const client = await k.client({ url });
      assertEquals(await client.call("ping", [], {}, { timeoutMs: 15_000 }), "pong");
    }
  },
);

kafkaTest(
  "readResult reads the partition of the result's key, also for results it read before",
  async (k) => {
    await k.server(() => {}, { maxWorkers: 1 });
    const topic = feedbackName(k.queue, "raw");
    const producer = await k.producer();
    const admin = await k.admin();
    const count = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions
      .length ?? 0;
    assertEquals(count, 4);
    const ids = Array.from({ length: 12 }, () => crypto.randomUUID());
    for (const id of ids) {
      await producer.send({ topic, messages: [{ key: id, value: `{"message_id":"${id}"}` }] });
    }
    // Where plain kafkajs put them is where readResult looks.
    const { records } = await k.readTopic(topic);
    await waitFor(() => records.length === ids.length, "the results");
    for (const { partition, message } of records) {
      assertEquals(partition, keyPartition(message.key?.toString() ?? "", count));
    }
    const broker = await k.broker();
    for (const id of ids) {
      assertEquals(await broker.readResult(k.queue, "raw", id), `{"message_id":"${id}"}`);
    }
    // Read again: the first lookups read past these without keeping their bodies.
    for (const id of ids.slice(0, 3)) {
      assertEquals(await broker.readResult(k.queue, "raw", id), `{"message_id":"${id}"}`);
    }
    assertEquals(await broker.readResult(k.queue, "raw", crypto.randomUUID()), null);
  },
);

kafkaTest(
  "a result Kafka refuses as too large reaches the caller as PayloadTooLargeError, run once",
  async (k) => {
    const attempts: number[] = [];
    // The server believes Kafka takes 4 MiB; Kafka takes its default of about 1 MiB.
    const brokerSettings = { maxMessageBytes: 4 * 1024 * 1024 };
    await k.server((app) =>
      app.register("big", () => {
        attempts.push(callContext().attempt);
        return "x".repeat(2 * 1024 * 1024);
      }), { brokerSettings, maxWorkers: 1 });
    const client = await k.client();
    await assertRejects(
      client.call("big", [], {}, { timeoutMs: 20_000 }),
      PayloadTooLargeError,
      "MESSAGE_TOO_LARGE",
    );
    assertEquals(attempts, [1]);
    assertEquals(k.logger.at("warn").filter((l) => l.message.includes("too large")).length, 1);
  },
);
