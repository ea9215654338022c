/**
 * Tests of the Kafka test double (`tests/support/kafka_double/`), mostly with the
 * real kafkajs client, plus a few at the wire level for what kafkajs does not
 * show (CRC-32C of fetched batches, long polling, pipelining), and one on the
 * Fetch handler itself, where a test can be sure the fetch is already waiting.
 */

import net from "node:net";
import {
  CompressionTypes,
  type Consumer,
  type ConsumerConfig,
  type EachMessagePayload,
  type IMemberAssignment,
  Kafka,
  logLevel,
  type Producer,
} from "kafkajs";
import { assert, assertEquals } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { Reader, Writer } from "./support/kafka_double/codec.ts";
import { crc32c } from "./support/kafka_double/crc32c.ts";
import { GroupCoordinator } from "./support/kafka_double/groups.ts";
import { fetchApi } from "./support/kafka_double/handlers/fetch.ts";
import { Log } from "./support/kafka_double/log.ts";
import { validateProducedRecordSet } from "./support/kafka_double/records.ts";
import {
  type KafkaDouble,
  type KafkaDoubleOptions,
  startKafkaDouble,
} from "./support/kafka_double/mod.ts";

/** Short backoffs: every failure in these tests is either expected or a bug. */
const FAST_RETRY = { initialRetryTime: 50, maxRetryTime: 500, retries: 8 };
/** Group timings short enough for fast tests, long enough for a loaded machine. */
const GROUP_TIMING = {
  sessionTimeout: 1_500,
  rebalanceTimeout: 4_000,
  heartbeatInterval: 100,
  maxWaitTimeInMs: 100,
} satisfies Partial<ConsumerConfig>;

/** What a test gets: a double, a kafkajs client on it, and factories closed at the end. */
interface Harness {
  double: KafkaDouble;
  kafka: Kafka;
  createTopic(topic: string, numPartitions: number): Promise<void>;
  producer(): Promise<Producer>;
  /** A connected consumer of `groupId` with fast group timings. */
  consumer(groupId: string): Promise<TrackedConsumer>;
  /** Registers a cleanup step, run (last first) before the double closes. */
  defer(cleanup: () => Promise<void>): void;
}

/** How a {@linkcode TrackedConsumer} runs. */
interface RunOptions {
  fromBeginning: boolean;
  eachMessage?: (payload: EachMessagePayload) => Promise<void>;
  /** Commit after this many messages (kafkajs's default is time-based only). */
  autoCommitThreshold?: number;
}

/** A kafkajs consumer with what the tests look at. */
interface TrackedConsumer {
  consumer: Consumer;
  /** Every message handled, in order. */
  received: EachMessagePayload[];
  /** Its assignment after its latest join, or `undefined` before the first. */
  assignment(): IMemberAssignment | undefined;
  /** Starts consuming `topic`; every message is recorded, then passed to `eachMessage`. */
  run(topic: string, options: RunOptions): Promise<void>;
}

async function withKafkaDouble(
  test: (harness: Harness) => Promise<void>,
  options: KafkaDoubleOptions = {},
): Promise<void> {
  const double = await startKafkaDouble(options);
  const kafka = new Kafka({
    clientId: "kafka-double-test",
    brokers: [double.url],
    logLevel: logLevel.NOTHING,
    retry: FAST_RETRY,
  });
  const cleanups: (() => Promise<void>)[] = [];
  const defer = (cleanup: () => Promise<void>) => void cleanups.push(cleanup);
  const harness: Harness = {
    double,
    kafka,
    defer,
    async createTopic(topic, numPartitions) {
      const admin = kafka.admin();
      await admin.connect();
      try {
        assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions }] }), true);
      } finally {
        await admin.disconnect();
      }
    },
    async producer() {
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      defer(() => producer.disconnect());
      return producer;
    },
    async consumer(groupId) {
      const consumer = kafka.consumer({ groupId, ...GROUP_TIMING });
      await consumer.connect();
      defer(() => consumer.disconnect());
      return track(consumer);
    },
  };
  try {
    await test(harness);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await double.close();
  }
}

function track(consumer: Consumer): TrackedConsumer {
  let assignment: IMemberAssignment | undefined;
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    assignment = event.payload.memberAssignment;
  });
  const received: EachMessagePayload[] = [];
  return {
    consumer,
    received,
    assignment: () => assignment,
    async run(topic, { fromBeginning, eachMessage, autoCommitThreshold }) {
      await consumer.subscribe({ topic, fromBeginning });
      await consumer.run({
        ...(autoCommitThreshold === undefined ? {} : { autoCommitThreshold }),
        eachMessage: async (payload) => {
          received.push(payload);
          await eachMessage?.(payload);
        },
      });
    },
  };
}

/** The partitions of `topic` in `assignment`, sorted; `[]` when none. */
function partitionsOf(assignment: IMemberAssignment | undefined, topic: string): number[] {
  return [...(assignment?.[topic] ?? [])].sort((a, b) => a - b);
}

function text(bytes: Uint8Array | Buffer | null | undefined): string | null {
  return bytes == null ? null : new TextDecoder().decode(bytes);
}

Deno.test("crc32c() matches the CRC-32C check values of RFC 3720 and the '123456789' check", () => {
  const ascending = Uint8Array.from({ length: 32 }, (_, index) => index);
  assertEquals(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(0)), 0);
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assertEquals(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assertEquals(crc32c(ascending), 0x46dd794e);
  assertEquals(crc32c(ascending.slice().reverse()), 0x113fdb5c);
});

Deno.test("startKafkaDouble() rejects invalid options with RangeError", async () => {
  for (
    const options of [{ port: -1 }, { port: 1.5 }, { maxMessageBytes: 0 }, { metadataLagMs: -1 }]
  ) {
    await startKafkaDouble(options).then(
      () => assert.fail(`accepted ${JSON.stringify(options)}`),
      (error) => assert.ok(error instanceof RangeError, String(error)),
    );
  }
});

Deno.test("kafka double: admin creates topics, grows them (never shrinks them) and deletes them", async () => {
  await withKafkaDouble(async ({ kafka }) => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      assert.equal(
        await admin.createTopics({ topics: [{ topic: "orders", numPartitions: 3 }] }),
        true,
      );
      assert.equal(
        await admin.createTopics({ topics: [{ topic: "orders", numPartitions: 3 }] }),
        false,
      );
      const described = async () => {
        const { topics } = await admin.fetchTopicMetadata({ topics: ["orders"] });
        return topics[0]!.partitions.map(({ partitionId, leader }) => [partitionId, leader]);
      };
      assertEquals(await described(), [[0, 1], [1, 1], [2, 1]]);

      await admin.createPartitions({ topicPartitions: [{ topic: "orders", count: 5 }] });
      assertEquals((await described()).length, 5);
      await admin.createPartitions({ topicPartitions: [{ topic: "orders", count: 4 }] }).then(
        () => assert.fail("shrinking was accepted"),
        (error) => assert.equal(error.type, "INVALID_PARTITIONS"),
      );
      await admin.createTopics({ topics: [{ topic: "replicated", replicationFactor: 3 }] }).then(
        () => assert.fail("a replication factor of 3 was accepted on one node"),
        (error) => assert.equal(error.errors[0].type, "INVALID_REPLICATION_FACTOR"),
      );
      assertEquals(await admin.listTopics(), ["orders"]);

      await admin.deleteTopics({ topics: ["orders"] });
      assertEquals(await admin.listTopics(), []);
      assert.equal(await admin.createTopics({ topics: [{ topic: "orders" }] }), true);
      assertEquals(await described(), [[0, 1]]);
    } finally {
      await admin.disconnect();
    }
  });
});

Deno.test("kafka double: topics are not created by metadata requests or produce", async () => {
  await withKafkaDouble(async ({ double }) => {
    const kafka = new Kafka({
      brokers: [double.url],
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    });
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    try {
      await producer.send({ topic: "missing", messages: [{ value: "x" }] }).then(
        () => assert.fail("produced to a topic nobody created"),
        (error) => assert.match(String(error), /does not host this topic-partition/),
      );
    } finally {
      await producer.disconnect();
    }
  });
});

Deno.test("kafka double: keys, values, headers and timestamps round-trip across partitions", async () => {
  await withKafkaDouble(async ({ kafka, createTopic, producer, consumer }) => {
    await createTopic("events", 3);
    const sent = [0, 1, 2].flatMap((partition) =>
      [0, 1].map((index) => ({
        partition,
        key: `key-${partition}-${index}`,
        value: `value-${partition}-${index}`,
        timestamp: String(1_700_000_000_000 + 10 * partition + index),
        headers: { trace: `trace-${partition}-${index}`, repeated: ["a", "b"] },
      }))
    );
    const metadata = await (await producer()).send({ topic: "events", acks: -1, messages: sent });
    assertEquals(
      metadata.map(({ partition, baseOffset, errorCode }) => [partition, baseOffset, errorCode])
        .sort(),
      [[0, "0", 0], [1, "0", 0], [2, "0", 0]],
    );

    const reader = await consumer("events-readers");
    await reader.run("events", { fromBeginning: true });
    await waitFor(() => reader.received.length === sent.length, "all messages");
    const received = reader.received.map(({ partition, message }) => ({
      partition,
      offset: message.offset,
      key: text(message.key),
      value: text(message.value),
      timestamp: message.timestamp,
      headers: {
        trace: text(message.headers?.trace as Buffer),
        repeated: (message.headers?.repeated as Buffer[]).map(text),
      },
    }));
    const expected = sent.map(({ partition, key, value, timestamp, headers }, index) => ({
      partition,
      offset: String(index % 2),
      key,
      value,
      timestamp,
      headers,
    }));
    const byPartitionAndOffset = (a: { partition: number; offset: string }, b: typeof a) =>
      a.partition - b.partition || Number(a.offset) - Number(b.offset);
    assertEquals(received.sort(byPartitionAndOffset), expected);

    const admin = kafka.admin();
    await admin.connect();
    try {
      // First offsets with a timestamp of at least ...011; none in partition 0: its end then.
      assertEquals(await admin.fetchTopicOffsetsByTimestamp("events", 1_700_000_000_011), [
        { partition: 0, offset: "2" },
        { partition: 1, offset: "1" },
        { partition: 2, offset: "0" },
      ]);
    } finally {
      await admin.disconnect();
    }
  });
});

Deno.test("kafka double: Produce honours acks 0, 1 and -1", async () => {
  await withKafkaDouble(async ({ kafka, createTopic, producer }) => {
    await createTopic("acks", 1);
    const sender = await producer();
    assertEquals(await sender.send({ topic: "acks", acks: 0, messages: [{ value: "a" }] }), []);
    const [one] = await sender.send({ topic: "acks", acks: 1, messages: [{ value: "b" }] });
    const [all] = await sender.send({ topic: "acks", acks: -1, messages: [{ value: "c" }] });
    assertEquals([one?.baseOffset, all?.baseOffset], ["1", "2"]);
    const admin = kafka.admin();
    await admin.connect();
    try {
      assertEquals(await admin.fetchTopicOffsets("acks"), [
        { partition: 0, offset: "3", high: "3", low: "0" },
      ]);
    } finally {
      await admin.disconnect();
    }
  });
});

Deno.test("kafka double: a batch over maxMessageBytes fails with MESSAGE_TOO_LARGE", async () => {
  await withKafkaDouble(async ({ createTopic, producer }) => {
    await createTopic("limited", 1);
    const sender = await producer();
    await sender.send({ topic: "limited", messages: [{ value: "x".repeat(9_000) }] });
    const error = await sender
      .send({ topic: "limited", messages: [{ value: "x".repeat(10_000) }] })
      .then(() => undefined, (error) => error);
    assert.ok(error, "the large batch was accepted");
    assert.equal(error.name, "KafkaJSProtocolError");
    assert.equal(error.type, "MESSAGE_TOO_LARGE");
  }, { maxMessageBytes: 10_000 });
});

Deno.test("kafka double: compressed batches are refused with UNSUPPORTED_COMPRESSION_TYPE", async () => {
  await withKafkaDouble(async ({ createTopic, producer }) => {
    await createTopic("compressed", 1);
    const error = await (await producer())
      .send({ topic: "compressed", compression: CompressionTypes.GZIP, messages: [{ value: "x" }] })
      .then(() => undefined, (error) => error);
    assert.equal(error?.type, "UNSUPPORTED_COMPRESSION_TYPE");
  });
});

Deno.test("kafka double: fromBeginning reads earlier messages, otherwise only later ones", async () => {
  await withKafkaDouble(async ({ createTopic, producer, consumer }) => {
    await createTopic("history", 1);
    const sender = await producer();
    await sender.send({ topic: "history", messages: [{ value: "old" }] });

    const fromBeginning = await consumer("history-from-beginning");
    await fromBeginning.run("history", { fromBeginning: true });
    const latest = await consumer("history-latest");
    const fetched = deferred();
    latest.consumer.on(latest.consumer.events.FETCH, () => fetched.resolve());
    await latest.run("history", { fromBeginning: false });
    await fetched.promise; // its offset is resolved once it has fetched

    await sender.send({ topic: "history", messages: [{ value: "new" }] });
    await waitFor(() => fromBeginning.received.length === 2, "old and new messages");
    await waitFor(() => latest.received.length === 1, "the new message");
    assertEquals(fromBeginning.received.map(({ message }) => text(message.value)), ["old", "new"]);
    assertEquals(latest.received.map(({ message }) => [message.offset, text(message.value)]), [
      ["1", "new"],
    ]);
  });
});

Deno.test("kafka double: committed offsets are resumed by a new member of the group", async () => {
  await withKafkaDouble(async ({ kafka, createTopic, producer, consumer }) => {
    await createTopic("resume", 1);
    const sender = await producer();
    await sender.send({
      topic: "resume",
      messages: ["m0", "m1", "m2"].map((value) => ({ value })),
    });
    const first = await consumer("resumers");
    await first.run("resume", { fromBeginning: true, autoCommitThreshold: 1 });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitFor(async () => {
        const [offsets] = await admin.fetchOffsets({ groupId: "resumers", topics: ["resume"] });
        return offsets?.partitions[0]?.offset === "3";
      }, "the committed offset 3");
    } finally {
      await admin.disconnect();
    }
    await first.consumer.disconnect();

    await sender.send({ topic: "resume", messages: ["m3", "m4"].map((value) => ({ value })) });
    const second = await consumer("resumers");
    await second.run("resume", { fromBeginning: true });
    await waitFor(() => second.received.length === 2, "the messages after the committed offset");
    assertEquals(second.received.map(({ message }) => [message.offset, text(message.value)]), [
      ["3", "m3"],
      ["4", "m4"],
    ]);
  });
});

Deno.test("kafka double: two members split the partitions and rebalance when one leaves", async () => {
  await withKafkaDouble(async ({ kafka, createTopic, producer, consumer }) => {
    await createTopic("shared", 4);
    const first = await consumer("sharers");
    await first.run("shared", { fromBeginning: true });
    await waitFor(() => partitionsOf(first.assignment(), "shared").length === 4, "a first join");
    const second = await consumer("sharers");
    await second.run("shared", { fromBeginning: true });
    await waitFor(
      () =>
        partitionsOf(first.assignment(), "shared").length === 2 &&
        partitionsOf(second.assignment(), "shared").length === 2,
      "two members with two partitions each",
    );
    assertEquals(
      [
        ...partitionsOf(first.assignment(), "shared"),
        ...partitionsOf(second.assignment(), "shared"),
      ]
        .sort(),
      [0, 1, 2, 3],
    );

    const sender = await producer();
    await sender.send({
      topic: "shared",
      messages: [0, 1, 2, 3].map((partition) => ({ partition, value: `to-${partition}` })),
    });
    await waitFor(
      () => first.received.length + second.received.length === 4,
      "one message per partition",
    );
    for (const member of [first, second]) {
      assertEquals(
        member.received.map(({ partition }) => partition).sort(),
        partitionsOf(member.assignment(), "shared"),
      );
    }

    await second.consumer.disconnect();
    await waitFor(() => partitionsOf(first.assignment(), "shared").length === 4, "a rebalance");
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.describeGroups(["sharers"]);
      assertEquals(groups.map(({ state, members }) => [state, members.length]), [["Stable", 1]]);
    } finally {
      await admin.disconnect();
    }
  });
});

/** A kafkajs socket factory whose sockets the test can kill, refusing new ones after. */
function killableSockets() {
  const sockets = new Set<net.Socket>();
  let killed = false;
  return {
    socketFactory: (
      { host, port, onConnect }: { host: string; port: number; onConnect(): void },
    ) => {
      const socket = killed ? new net.Socket() : net.connect({ host, port }, onConnect);
      if (killed) setTimeout(() => socket.destroy(new Error("the test killed this client")), 0);
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      return socket;
    },
    kill() {
      killed = true;
      for (const socket of sockets) socket.destroy(new Error("the test killed this client"));
    },
  };
}

Deno.test("kafka double: a member whose connections die is evicted after its session timeout", async () => {
  await withKafkaDouble(async ({ double, createTopic, producer, consumer, defer }) => {
    await createTopic("fragile", 2);
    const survivor = await consumer("fragile-group");
    await survivor.run("fragile", { fromBeginning: true });
    await waitFor(() => partitionsOf(survivor.assignment(), "fragile").length === 2, "a join");

    const sockets = killableSockets();
    const doomedClient = new Kafka({
      clientId: "doomed",
      brokers: [double.url],
      logLevel: logLevel.NOTHING,
      retry: FAST_RETRY,
      socketFactory: sockets.socketFactory,
    });
    const doomed = track(doomedClient.consumer({ groupId: "fragile-group", ...GROUP_TIMING }));
    await doomed.consumer.connect();
    defer(() => doomed.consumer.disconnect());
    await doomed.run("fragile", { fromBeginning: true });
    await waitFor(
      () => partitionsOf(doomed.assignment(), "fragile").length === 1,
      "the doomed member's partition",
    );
    const [lostPartition] = partitionsOf(doomed.assignment(), "fragile");

    sockets.kill();
    await waitFor(() => partitionsOf(survivor.assignment(), "fragile").length === 2, "an eviction");
    await (await producer()).send({
      topic: "fragile",
      messages: [{ partition: lostPartition!, value: "after-eviction" }],
    });
    await waitFor(
      () => survivor.received.some(({ message }) => text(message.value) === "after-eviction"),
      "the survivor reading the evicted member's partition",
    );
  });
});

Deno.test("kafka double: a member that stops heartbeating is evicted and its message redelivered", async () => {
  await withKafkaDouble(async ({ createTopic, producer, consumer, defer }) => {
    await createTopic("stalled", 2);
    const survivor = await consumer("stalled-group");
    await survivor.run("stalled", { fromBeginning: true });
    await waitFor(() => partitionsOf(survivor.assignment(), "stalled").length === 2, "a join");
    const stuck = await consumer("stalled-group");
    const release = deferred();
    defer(() => Promise.resolve(release.resolve())); // before it disconnects, even on failure
    await stuck.run("stalled", { fromBeginning: true, eachMessage: () => release.promise });
    await waitFor(
      () => partitionsOf(stuck.assignment(), "stalled").length === 1,
      "the stuck member's partition",
    );
    const [stuckPartition] = partitionsOf(stuck.assignment(), "stalled");

    await (await producer()).send({
      topic: "stalled",
      messages: [{ partition: stuckPartition!, value: "stuck-message" }],
    });
    await waitFor(() => stuck.received.length === 1, "the stuck member taking the message");
    await waitFor(
      () => survivor.received.some(({ message }) => text(message.value) === "stuck-message"),
      "the message redelivered after the eviction",
    );
    assertEquals(partitionsOf(survivor.assignment(), "stalled"), [0, 1]);
  });
});

/** A wire-level client for what kafkajs hides: one connection, raw frames. */
class RawConnection {
  #connection: Deno.TcpConn;
  #buffer = new Uint8Array(0);
  #nextCorrelationId = 1;

  private constructor(connection: Deno.TcpConn) {
    this.#connection = connection;
  }

  static async open(port: number): Promise<RawConnection> {
    return new RawConnection(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends a request (header v1); returns its correlation id. */
  async send(apiKey: number, apiVersion: number, body: Writer): Promise<number> {
    const correlationId = this.#nextCorrelationId++;
    const request = new Writer()
      .int16(apiKey)
      .int16(apiVersion)
      .int32(correlationId)
      .string("raw-test-client")
      .raw(body.toBytes())
      .toBytes();
    const frame = new Writer().int32(request.byteLength).raw(request).toBytes();
    for (let written = 0; written < frame.byteLength;) {
      written += await this.#connection.write(frame.subarray(written));
    }
    return correlationId;
  }

  /** The next response (header v0), or `null` when the server closed the connection. */
  async receive(): Promise<{ correlationId: number; body: Reader } | null> {
    const size = await this.#readExactly(4);
    if (size === null) return null;
    const frame = await this.#readExactly(new DataView(size.buffer).getInt32(0));
    if (frame === null) return null;
    const reader = new Reader(frame);
    return { correlationId: reader.int32(), body: reader };
  }

  /** Sends a request and returns the body of its response. */
  async request(apiKey: number, apiVersion: number, body: Writer): Promise<Reader> {
    const correlationId = await this.send(apiKey, apiVersion, body);
    const response = await this.receive();
    assert.ok(response, "the connection closed");
    assert.equal(response.correlationId, correlationId);
    return response.body;
  }

  close(): void {
    this.#connection.close();
  }

  async #readExactly(size: number): Promise<Uint8Array | null> {
    while (this.#buffer.byteLength < size) {
      const chunk = new Uint8Array(64 * 1024);
      const read = await this.#connection.read(chunk);
      if (read === null) return null;
      const grown = new Uint8Array(this.#buffer.byteLength + read);
      grown.set(this.#buffer);
      grown.set(chunk.subarray(0, read), this.#buffer.byteLength);
      this.#buffer = grown;
    }
    const bytes = this.#buffer.slice(0, size);
    this.#buffer = this.#buffer.slice(size);
    return bytes;
  }
}

/** Zigzag varint of a small value (one byte): enough for these hand-made records. */
function smallVarint(value: number): number {
  const zigzag = value >= 0 ? value * 2 : -value * 2 - 1;
  assert.ok(zigzag < 0x80);
  return zigzag;
}

/** A v2 record batch of one record with `value` (ASCII, short), as a producer builds it. */
function recordBatch(value: string, timestamp: number): Uint8Array {
  const valueBytes = new TextEncoder().encode(value);
  const recordBody = [
    0, // attributes
    smallVarint(0), // timestamp delta
    smallVarint(0), // offset delta
    smallVarint(-1), // key: null
    smallVarint(valueBytes.byteLength),
    ...valueBytes,
    smallVarint(0), // headers
  ];
  const record = Uint8Array.from([smallVarint(recordBody.length), ...recordBody]);
  const checked = new Writer()
    .int16(0) // attributes: no compression, CreateTime
    .int32(0) // last offset delta
    .int64(timestamp)
    .int64(timestamp)
    .int64(-1) // producer id
    .int16(-1) // producer epoch
    .int32(-1) // base sequence
    .int32(1) // record count
    .raw(record)
    .toBytes();
  const afterLength = new Writer().int32(0).int8(2).int32(crc32c(checked) | 0).raw(checked);
  const tail = afterLength.toBytes();
  return new Writer().int64(0).int32(tail.byteLength).raw(tail).toBytes();
}

function produceRequest(topic: string, batch: Uint8Array): Writer {
  return new Writer()
    .string(null) // transactional id
    .int16(-1) // acks
    .int32(5_000)
    .array([topic], (writer, name) => {
      writer.string(name).array([batch], (writer, records) => writer.int32(0).bytes(records));
    });
}

/** Error code and base offset of the single partition of a Produce v7 response. */
function readProduceResponse(body: Reader): [number, number] {
  const [[result]] = body.array((reader) => {
    reader.string();
    return reader.array((reader) => {
      reader.int32();
      const errorCode = reader.int16();
      const baseOffset = reader.int64();
      reader.int64();
      reader.int64();
      return [errorCode, baseOffset] as [number, number];
    });
  }) as [[[number, number]]];
  body.int32();
  return result;
}

function fetchRequest(topic: string, options: { maxWaitMs: number; minBytes: number }): Writer {
  return new Writer()
    .int32(-1) // replica id
    .int32(options.maxWaitMs)
    .int32(options.minBytes)
    .int32(50 * 1024 * 1024)
    .int8(1) // read committed
    .int32(0) // session id
    .int32(-1) // session epoch
    .array([topic], (writer, name) => {
      writer.string(name).array([0], (writer, partition) => {
        writer.int32(partition).int32(-1).int64(0).int64(-1).int32(1024 * 1024);
      });
    })
    .array([], () => {}) // forgotten topics
    .string(""); // rack id
}

/** The record batches of the single partition of a Fetch v11 response. */
function readFetchedBatches(body: Reader): Uint8Array[] {
  body.int32(); // throttle time
  assert.equal(body.int16(), 0);
  body.int32(); // session id
  const [[records]] = body.array((reader) => {
    reader.string();
    return reader.array((reader) => {
      reader.int32();
      assert.equal(reader.int16(), 0);
      reader.raw(8 * 3); // high watermark, last stable offset, log start offset
      reader.nullableArray((reader) => reader.raw(16));
      reader.int32(); // preferred read replica
      return reader.bytes();
    });
  }) as [[Uint8Array]];
  const batches: Uint8Array[] = [];
  const all = new Reader(records);
  while (all.remaining > 0) {
    const header = all.raw(12);
    const length = new DataView(header.buffer, header.byteOffset).getInt32(8);
    batches.push(Uint8Array.from([...header, ...all.raw(length)]));
  }
  return batches;
}

async function withRawConnection(
  test: (raw: RawConnection, harness: Harness) => Promise<void>,
): Promise<void> {
  await withKafkaDouble(async (harness) => {
    const raw = await RawConnection.open(harness.double.port);
    try {
      await test(raw, harness);
    } finally {
      raw.close();
    }
  });
}

Deno.test("kafka double: ApiVersions advertises exactly one version of each implemented API", async () => {
  await withRawConnection(async (raw) => {
    const body = await raw.request(18, 2, new Writer());
    assert.equal(body.int16(), 0);
    const versions = body.array((reader) => [reader.int16(), reader.int16(), reader.int16()]);
    assertEquals(
      Object.fromEntries(versions.map(([key, min, max]) => [key, [min, max]])),
      {
        0: [7, 7], // Produce
        1: [11, 11], // Fetch
        2: [3, 3], // ListOffsets
        3: [6, 6], // Metadata
        8: [5, 5], // OffsetCommit
        9: [4, 4], // OffsetFetch
        10: [2, 2], // FindCoordinator
        11: [5, 5], // JoinGroup
        12: [3, 3], // Heartbeat
        13: [3, 3], // LeaveGroup
        14: [3, 3], // SyncGroup
        15: [2, 2], // DescribeGroups
        18: [2, 2], // ApiVersions
        19: [3, 3], // CreateTopics
        20: [1, 1], // DeleteTopics
        32: [2, 2], // DescribeConfigs
        37: [1, 1], // CreatePartitions
      },
    );
  });
});

Deno.test("kafka double: Produce checks the CRC-32C and Fetch returns batches as produced", async () => {
  await withRawConnection(async (raw, { createTopic }) => {
    await createTopic("raw", 1);
    const first = recordBatch("first", 1_700_000_000_001);
    const second = recordBatch("second", 1_700_000_000_002);
    const corrupt = recordBatch("corrupt", 1_700_000_000_003);
    corrupt[20]! ^= 0xff; // last byte of the CRC

    assertEquals(readProduceResponse(await raw.request(0, 7, produceRequest("raw", first))), [
      0,
      0,
    ]);
    assertEquals(readProduceResponse(await raw.request(0, 7, produceRequest("raw", second))), [
      0,
      1,
    ]);
    assertEquals(readProduceResponse(await raw.request(0, 7, produceRequest("raw", corrupt))), [
      2, // CORRUPT_MESSAGE
      -1,
    ]);

    const batches = readFetchedBatches(
      await raw.request(1, 11, fetchRequest("raw", { maxWaitMs: 0, minBytes: 1 })),
    );
    assertEquals(batches.length, 2);
    batches.forEach((batch, index) => {
      const view = new DataView(batch.buffer);
      assertEquals(view.getBigInt64(0), BigInt(index), "base offset");
      assertEquals(view.getUint32(17), crc32c(batch.subarray(21)), "CRC-32C");
      assertEquals(batch.subarray(12 + 4), [first, second][index]!.subarray(12 + 4));
    });
  });
});

Deno.test("kafka double: Fetch waits up to maxWaitTime for minBytes, then answers", async () => {
  await withRawConnection(async (raw, { createTopic }) => {
    await createTopic("polled", 1);
    let started = Date.now();
    const empty = await raw.request(1, 11, fetchRequest("polled", { maxWaitMs: 300, minBytes: 1 }));
    assert.ok(Date.now() - started >= 290, `answered after ${Date.now() - started} ms`);
    assertEquals(readFetchedBatches(empty), []);

    const [errorCode] = readProduceResponse(
      await raw.request(0, 7, produceRequest("polled", recordBatch("small", 1))),
    );
    assertEquals(errorCode, 0);
    started = Date.now();
    const waited = await raw.request(
      1,
      11,
      fetchRequest("polled", { maxWaitMs: 300, minBytes: 1_000_000 }),
    );
    assert.ok(Date.now() - started >= 290, "answered before minBytes or maxWaitTime");
    assertEquals(readFetchedBatches(waited).length, 1);
  });
});

Deno.test("fetchApi() answers a waiting Fetch as soon as a batch is appended", async () => {
  const log = new Log();
  log.createTopic("woken", 1);
  const groups = new GroupCoordinator();
  const broker = {
    host: "127.0.0.1",
    port: 9092,
    log,
    groups,
    maxMessageBytes: 1_048_588,
    metadataLagMs: 0,
    createdAt: new Map(),
  };
  const request = new Reader(fetchRequest("woken", { maxWaitMs: 20_000, minBytes: 1 }).toBytes());
  const context = {
    clientId: "unit",
    clientHost: "/127.0.0.1",
    signal: new AbortController().signal,
  };
  const started = Date.now();
  const answer = Promise.resolve(fetchApi(broker).handle(request, context));

  const { batch } = validateProducedRecordSet(recordBatch("wake", 1), broker.maxMessageBytes);
  assert.ok(batch);
  log.partition("woken", 0)!.append(batch);
  const body = await answer;
  assert.ok(Date.now() - started < 10_000, "the fetch waited for its maxWaitTime");
  assert.ok(body);
  assertEquals(readFetchedBatches(new Reader(body.toBytes())).length, 1);
  groups.close();
});

Deno.test("kafka double: requests pipelined on a connection are answered one by one, in order", async () => {
  await withRawConnection(async (raw, { createTopic }) => {
    await createTopic("pipelined", 1);
    const started = Date.now();
    const fetchId = await raw.send(
      1,
      11,
      fetchRequest("pipelined", { maxWaitMs: 300, minBytes: 1 }),
    );
    const versionsId = await raw.send(18, 2, new Writer());
    assertEquals((await raw.receive())?.correlationId, fetchId);
    assertEquals((await raw.receive())?.correlationId, versionsId);
    assert.ok(Date.now() - started >= 290, "ApiVersions was answered while the Fetch waited");
  });
});

Deno.test("kafka double: an unimplemented API version closes the connection", async () => {
  await withRawConnection(async (raw) => {
    await raw.send(3, 9, new Writer()); // Metadata v9 is a flexible version
    assertEquals(await raw.receive(), null);
  });
});
