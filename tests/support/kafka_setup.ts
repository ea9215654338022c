/**
 * What one Kafka test works with: its own queue and consumer group, servers,
 * clients, bare broker connections and plain kafkajs clients (as another
 * program would use Kafka), all closed at the end.
 */

import type { Admin, Consumer, Kafka, KafkaMessage, Producer } from "kafkajs";
import {
  AppServer,
  type AppServerOptions,
  type Broker,
  Client,
  type ClientOptions,
  connectBroker,
} from "../../mod.ts";
import { createKafka } from "../../brokers/kafka/client.ts";
import { readKafkaSettings } from "../../brokers/kafka/settings.ts";
import { kafkaUrl, testUrl } from "./kafka_target.ts";
import { RecordingLogger } from "./logger.ts";

const base = await kafkaUrl();

/** A record read by {@linkcode KafkaSetup.readTopic}. */
export interface ReadRecord {
  partition: number;
  message: KafkaMessage;
}

/** See the module docs. */
export class KafkaSetup {
  readonly queue = `kafka_${crypto.randomUUID().slice(0, 8)}`;
  readonly groupId = `prpc_group_${crypto.randomUUID()}`;
  readonly logger = new RecordingLogger();
  /** The broker URL with short group timings, this test's group and `settings`. */
  readonly url: string;
  readonly #closers: (() => Promise<void>)[] = [];
  #kafka: Kafka | undefined;
  #admin: Promise<Admin> | undefined;

  constructor(settings: Record<string, string | number> = {}) {
    this.url = testUrl(base, { groupId: this.groupId, ...settings });
  }

  /** Creates, fills and starts a server on the test's queue. */
  async server(
    register: (app: AppServer) => void,
    options: Partial<AppServerOptions> = {},
  ): Promise<AppServer> {
    const app = new AppServer({
      broker: "kafka",
      url: this.url,
      queue: this.queue,
      handleSignals: false,
      logger: this.logger,
      ...options,
    });
    register(app);
    this.#closers.push(() => app.stop({ graceMs: 0 }));
    await app.start();
    return app;
  }

  /** Connects a client to the test's queue. */
  async client(options: Partial<ClientOptions> = {}): Promise<Client> {
    const client = await Client.connect({
      broker: "kafka",
      url: this.url,
      queue: this.queue,
      logger: this.logger,
      ...options,
    });
    this.#closers.push(() => client.close());
    return client;
  }

  /** A bare broker connection of prpc. */
  async broker(settings: Record<string, string | number> = {}): Promise<Broker> {
    const broker = await connectBroker("kafka", {
      url: this.url,
      settings,
      logger: this.logger,
    });
    this.#closers.push(() => broker.close());
    return broker;
  }

  /** A plain kafkajs client for the same Kafka (SASL and TLS of the URL included). */
  get kafka(): Kafka {
    this.#kafka ??= createKafka(readKafkaSettings(base, undefined), new RecordingLogger());
    return this.#kafka;
  }

  /** The test's connected kafkajs admin client. */
  admin(): Promise<Admin> {
    this.#admin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      this.#closers.push(() => admin.disconnect());
      return admin;
    })();
    return this.#admin;
  }

  /** A connected kafkajs producer. */
  async producer(): Promise<Producer> {
    const producer = this.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    this.#closers.push(() => producer.disconnect());
    return producer;
  }

  /**
   * Reads a topic from its beginning with a kafkajs consumer of a group of its
   * own, collecting every record as it comes.
   *
   * @param topic The topic.
   * @returns The records read so far (the array grows) and the consumer.
   */
  async readTopic(topic: string): Promise<{ records: ReadRecord[]; consumer: Consumer }> {
    const records: ReadRecord[] = [];
    const consumer = this.kafka.consumer({
      groupId: `reader_${crypto.randomUUID()}`,
      maxWaitTimeInMs: 100,
      heartbeatInterval: 200,
      sessionTimeout: 6_000,
    });
    await consumer.connect();
    this.#closers.push(() => consumer.disconnect());
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        records.push({ partition, message });
        return Promise.resolve();
      },
    });
    return { records, consumer };
  }

  /** Committed offsets of this test's group for a topic, by partition (-1: none). */
  async committed(topic: string, groupId = this.groupId): Promise<Map<number, number>> {
    const admin = await this.admin();
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(offsets?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? []);
  }

  /** Closes everything, the latest first. */
  async close(): Promise<void> {
    for (const close of this.#closers.reverse()) await close();
  }
}

/**
 * Registers a Kafka test with a fresh {@linkcode KafkaSetup}.
 *
 * @param name The test's name (prefixed with `kafka: `).
 * @param fn The test.
 * @param settings Settings of the test's URL.
 */
export function kafkaTest(
  name: string,
  fn: (setup: KafkaSetup) => Promise<void>,
  settings: Record<string, string | number> = {},
): void {
  Deno.test(`kafka: ${name}`, async () => {
    const setup = new KafkaSetup(settings);
    try {
      await fn(setup);
    } finally {
      await setup.close();
    }
  });
}
