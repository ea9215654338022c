/** Settings of the Kafka broker: the URL, `brokerSettings` and the PRPC_KAFKA_* variables. */
import { connectBroker } from "../mod.ts";
import { BrokerError, ConfigError } from "../protocol/errors.ts";
import { readKafkaSettings } from "../brokers/kafka/settings.ts";
import { kafkaConfig } from "../brokers/kafka/client.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./support/assert.ts";
import { RecordingLogger } from "./support/logger.ts";

Deno.test("readKafkaSettings reads PRPC's host:port lists and kafka:// URLs", () => {
  assertEquals(readKafkaSettings(undefined, undefined).brokers, ["localhost:9092"]);
  assertEquals(readKafkaSettings("k1:9093,k2", undefined).brokers, ["k1:9093", "k2:9092"]);
  assertEquals(readKafkaSettings("kafka://[::1]:19092/", undefined).brokers, ["[::1]:19092"]);
  const defaults = readKafkaSettings("localhost:9092", undefined);
  assertEquals(defaults.groupId, "prpc_group_consumers");
  assertEquals(defaults.maxMessageBytes, undefined, "read from the brokers at connect");
  assertEquals(defaults.feedbackTopicPartitions, 4);
  assertEquals(defaults.queueTopicPartitions, undefined, "the server's maxWorkers");
  assertEquals(defaults.replicationFactor, 1);
  assertEquals(defaults.tls, undefined);
  assertEquals(defaults.sasl, undefined);
});

Deno.test("readKafkaSettings takes SASL and TLS from the URL, and settings over the URL", () => {
  const fromUrl = readKafkaSettings(
    "kafka://alice:p%40ss@k1:9093?ssl=true&sslRejectUnauthorized=false&sessionTimeoutMs=10000",
    undefined,
  );
  assertEquals(fromUrl.sasl, { mechanism: "plain", username: "alice", password: "p@ss" });
  assertEquals(fromUrl.tls, {
    caFile: undefined,
    certFile: undefined,
    keyFile: undefined,
    rejectUnauthorized: false,
  });
  assertEquals(fromUrl.sessionTimeoutMs, 10_000);
  const overridden = readKafkaSettings(
    "k1:9093?saslUsername=bob&saslPassword=x&queueTopicPartitions=3",
    {
      saslMechanism: "scram-sha-512",
      saslPassword: "y",
      queueTopicPartitions: 5,
      ssl: true,
      sslCaFile: "/etc/ca.pem",
    },
  );
  assertEquals(overridden.sasl, { mechanism: "scram-sha-512", username: "bob", password: "y" });
  assertEquals(overridden.queueTopicPartitions, 5);
  assertEquals(overridden.tls?.caFile, "/etc/ca.pem");
});

Deno.test("readKafkaSettings refuses bad URLs and values with ConfigError, without the password", () => {
  const cases: [string | undefined, Record<string, string | number | boolean>, string][] = [
    ["redis://localhost:6379", {}, "the scheme must be kafka://"],
    ["kafka://alice:secret@host:port", {}, '"host:port" is not host:port'],
    ["k1:9092,", {}, "a broker address is empty"],
    ["k1:99999", {}, "is not host:port"],
    ["k1:9092?partitions=3", {}, 'URL parameter "partitions": known settings are'],
    ["k1:9092", { replicationFactor: 0 }, "replicationFactor as a whole number >= 1"],
    ["k1:9092?maxWaitMs=soon", {}, 'maxWaitMs as a whole number >= 1: current value is "soon"'],
    ["k1:9092?ssl=maybe", {}, "ssl as true or false"],
    ["k1:9092", { saslMechanism: "gssapi" }, "expected one of plain, scram-sha-256, scram-sha-512"],
    ["k1:9092", { saslUsername: "bob" }, "without both a user name and a password"],
    ["k1:9092", { sslCaFile: "/ca.pem" }, "without ssl=true"],
    ["k1:9092", { heartbeatIntervalMs: 30_000 }, "heartbeats must come more often"],
  ];
  for (const [url, settings, message] of cases) {
    const error = assertThrows(() => readKafkaSettings(url, settings), ConfigError, message);
    assert(!error.message.includes("secret"), error.message);
  }
});

const fixture = new URL("./fixtures/kafka_settings.ts", import.meta.url).pathname;

async function resolvedInChild(env: Record<string, string>, url = "", settings = "") {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", fixture, url, settings],
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("PRPC_KAFKA_* variables set partitions and replication; the URL and settings win over them", async () => {
  const env = {
    PRPC_KAFKA_QUEUE_TOPIC_NUMBER_PARTITIONS: "6",
    PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS: "3",
    PRPC_KAFKA_REPLICATION_FACTOR: "2",
  };
  const fromEnv = await resolvedInChild(env);
  assertEquals(fromEnv.code, 0, fromEnv.stderr);
  assertEquals(JSON.parse(fromEnv.stdout), {
    queueTopicPartitions: 6,
    feedbackTopicPartitions: 3,
    replicationFactor: 2,
  });
  const over = await resolvedInChild(
    env,
    "localhost:9092?queueTopicPartitions=8&feedbackTopicPartitions=5",
    JSON.stringify({ feedbackTopicPartitions: 7 }),
  );
  assertEquals(over.code, 0, over.stderr);
  assertEquals(JSON.parse(over.stdout), {
    queueTopicPartitions: 8,
    feedbackTopicPartitions: 7,
    replicationFactor: 2,
  });
  const bad = await resolvedInChild({ PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS: "0" });
  assertEquals(bad.code, 1);
  assert(
    bad.stderr.includes(
      'Cannot read PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS as a whole number >= 1: current value is "0"',
    ),
    bad.stderr,
  );
});

Deno.test("connect fails with ConfigError for an unreadable TLS file and BrokerError without a broker", async () => {
  await assertRejects(
    connectBroker("kafka", { url: "localhost:9092?ssl=true&sslCaFile=/nonexistent/ca.pem" }),
    ConfigError,
    "sslCaFile",
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // a port nobody listens on
  const error = await assertRejects(
    connectBroker("kafka", { url: `127.0.0.1:${port}?retries=0&connectionTimeoutMs=500` }),
    BrokerError,
    `Cannot connect to Kafka at 127.0.0.1:${port}`,
  );
  assert(error.message.includes("ECONNREFUSED"), error.message);
});

Deno.test("kafkaConfig hands kafkajs the SASL and TLS settings of the URL and of settings", () => {
  const ca = Deno.makeTempFileSync({ suffix: ".pem" });
  try {
    Deno.writeTextFileSync(ca, "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n");
    const logger = new RecordingLogger();
    const fromUrl = kafkaConfig(
      readKafkaSettings(
        `kafka://alice:p%40ss@k1:9093,k2:9094?ssl=true&sslRejectUnauthorized=false&sslCaFile=${ca}`,
        { saslMechanism: "scram-sha-256" },
      ),
      logger,
    );
    assertEquals(fromUrl.brokers, ["k1:9093", "k2:9094"]);
    assertEquals(fromUrl.sasl, {
      mechanism: "scram-sha-256",
      username: "alice",
      password: "p@ss",
    });
    assertEquals(fromUrl.ssl, {
      rejectUnauthorized: false,
      ca: ["-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"],
    });
    const fromSettings = kafkaConfig(
      readKafkaSettings("k1:9092", { saslUsername: "bob", saslPassword: "x", ssl: true }),
      logger,
    );
    assertEquals(fromSettings.sasl, { mechanism: "plain", username: "bob", password: "x" });
    assertEquals(fromSettings.ssl, { rejectUnauthorized: true });
    const plain = kafkaConfig(readKafkaSettings("k1:9092", undefined), logger);
    assertEquals([plain.sasl, plain.ssl], [undefined, undefined]);
  } finally {
    Deno.removeSync(ca);
  }
});
