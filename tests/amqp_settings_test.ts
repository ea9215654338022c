/**
 * Settings of the RabbitMQ broker: URL, `brokerSettings` and `PRPC_AMQP_*`
 * variables. No server needed.
 */
import { connect } from "../brokers/amqp.ts";
import { readAmqpSettings } from "../brokers/amqp/settings.ts";
import { BrokerError, ConfigError } from "../mod.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./support/assert.ts";

Deno.test("readAmqpSettings() splits the URL into host, port, login and vhost", () => {
  const plain = readAmqpSettings("amqp://app:s%40cret@rabbit.example:5673/orders", {});
  assertEquals(plain.connect, {
    protocol: "amqp",
    hostname: "rabbit.example",
    port: 5673,
    username: "app",
    password: "s@cret",
    vhost: "orders",
    heartbeat: 30,
  });
  assertEquals(plain.displayUrl, "amqp://app:***@rabbit.example:5673/orders");

  const defaults = readAmqpSettings(undefined, {});
  assertEquals(defaults.connect.hostname, "localhost");
  assertEquals(defaults.connect.port, 5672);
  assertEquals(defaults.connect.vhost, "/");
  assertEquals([defaults.connect.username, defaults.connect.password], ["guest", "guest"]);

  const tls = readAmqpSettings("amqps://[::1]/%2Fshop?heartbeat=5&frame_max=8192", {});
  assertEquals(tls.connect.protocol, "amqps");
  assertEquals(tls.connect.hostname, "::1");
  assertEquals(tls.connect.port, 5671);
  assertEquals(tls.connect.vhost, "/shop");
  assertEquals(tls.connect.heartbeat, 5);
  assertEquals(tls.connect.frameMax, 8192);
});

Deno.test("readAmqpSettings() takes brokerSettings over the URL and applies defaults", () => {
  const settings = readAmqpSettings("amqp://localhost?heartbeat=5", {
    heartbeatSec: 0,
    reconnectMinMs: "20",
    queueExpiresMs: 60_000,
    connectionName: "orders-server",
  });
  assertEquals(settings.connect.heartbeat, 0);
  assertEquals(settings.reconnectMinMs, 20);
  assertEquals(settings.reconnectMaxMs, 30_000);
  assertEquals(settings.queueExpiresMs, 60_000);
  assertEquals(settings.connectionName, "orders-server");
  assertEquals(settings.maxMessageBytes, 128 * 1024 * 1024);
  assertEquals(settings.resultTtlMs, 600_000);
  assertEquals(readAmqpSettings(undefined, {}, "server-7").connectionName, "prpc server-7");
});

Deno.test("readAmqpSettings() refuses bad URLs and settings with ConfigError", () => {
  assertThrows(() => readAmqpSettings("redis://localhost", {}), ConfigError, "amqp: or amqps:");
  assertThrows(() => readAmqpSettings("not a url", {}), ConfigError, "as an AMQP broker URL");
  assertThrows(
    () => readAmqpSettings("amqp://localhost?prefetch=3", {}),
    ConfigError,
    "URL parameter prefetch",
  );
  const secret = assertThrows(
    () => readAmqpSettings("amqp://u:hunter2@localhost?heartbeat=x", {}),
    ConfigError,
    "heartbeat",
  );
  assert(!secret.message.includes("hunter2"), secret.message);
  assertThrows(
    () => readAmqpSettings(undefined, { heartbeat: 5 }),
    ConfigError,
    "brokerSettings.heartbeat",
  );
  assertThrows(
    () => readAmqpSettings(undefined, { reconnectMinMs: 0 }),
    ConfigError,
    "brokerSettings.reconnectMinMs as a whole number >= 1",
  );
  assertThrows(
    () => readAmqpSettings(undefined, { reconnectMinMs: 500, reconnectMaxMs: 100 }),
    ConfigError,
    "below reconnectMinMs",
  );
  assertThrows(
    () => readAmqpSettings(undefined, { maxMessageBytes: 1024 ** 3 }),
    ConfigError,
    "above 536870912",
  );
  assertThrows(
    () => readAmqpSettings(undefined, { queueExpiresMs: true }),
    ConfigError,
    "as a whole number",
  );
  assertThrows(() => readAmqpSettings(undefined, { connectionName: "" }), ConfigError, "a name");
});

Deno.test("readAmqpSettings() refuses malformed %-escapes with ConfigError, without the password", () => {
  const password = assertThrows(
    () => readAmqpSettings("amqp://app:hunter2%zz@localhost", {}),
    ConfigError,
    "its password has a malformed %-escape",
  );
  assert(!password.message.includes("hunter2"), password.message);
  assertThrows(
    () => readAmqpSettings("amqp://app%E0@localhost", {}),
    ConfigError,
    "its user name has a malformed %-escape",
  );
  assertThrows(
    () => readAmqpSettings("amqp://localhost/%zz", {}),
    ConfigError,
    "its vhost has a malformed %-escape",
  );
});

Deno.test("connect() fails at once with BrokerError when nothing listens, without the password", async () => {
  const error = await assertRejects(
    connect({ url: "amqp://guest:hunter2@127.0.0.1:1", logger: silent }),
    BrokerError,
    "Cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:1",
  );
  assert(!error.message.includes("hunter2"), error.message);
  await assertRejects(connect({ url: "http://localhost" }), ConfigError, "amqp: or amqps:");
});

const silent = { debug() {}, info() {}, warn() {}, error() {} };
