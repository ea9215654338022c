/**
 * RabbitMQ going away and coming back, played by a TCP proxy in front of the
 * real server (which other tests keep using): calls wait for the connection to
 * come back or fail at their timeout, and nothing hangs.
 */
import { connect } from "../brokers/amqp.ts";
import { AppServer, BrokerError, CallTimeoutError, Client } from "../mod.ts";
import { assertEquals, assertRejects } from "./support/assert.ts";
import { waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { amqpForTests, OutageProxy } from "./support/amqp_server.ts";

const rabbit = await amqpForTests();

/** Quick reconnects, so that the tests do not wait for the production backoff. */
const FAST = { reconnectMinMs: 20, reconnectMaxMs: 100 };

function outageTest(
  name: string,
  fn: (proxy: OutageProxy, queue: string, logger: RecordingLogger) => Promise<void>,
) {
  Deno.test({
    name,
    ignore: rabbit.ignore !== undefined,
    async fn() {
      const proxy = new OutageProxy(rabbit.url);
      try {
        await fn(proxy, `amqp_outage_${crypto.randomUUID().slice(0, 8)}`, new RecordingLogger());
      } finally {
        await proxy.close();
      }
    },
  });
}

function lostAndBack(logger: RecordingLogger, what: "lost" | "back"): boolean {
  const message = what === "lost"
    ? "lost the connection to RabbitMQ; reconnecting"
    : "reconnected to RabbitMQ";
  return logger.lines.some((line) => line.message === message);
}

outageTest(
  "a call made while RabbitMQ is away completes once it is back",
  async (proxy, queue, logger) => {
    const app = new AppServer({
      broker: "amqp",
      url: rabbit.url,
      queue,
      handleSignals: false,
      logger,
    });
    app.register("add", (a: number, b: number) => a + b);
    await app.start();
    const client = await Client.connect({
      broker: "amqp",
      url: proxy.proxiedUrl,
      queue,
      logger,
      brokerSettings: FAST,
    });
    try {
      assertEquals(await client.call("add", [1, 2]), 3);
      proxy.down();
      await waitFor(() => lostAndBack(logger, "lost"), "the client to notice");
      const call = client.call("add", [2, 3], {}, { timeoutMs: 30_000 });
      // Reconnect attempts fail while the proxy refuses; the call waits for the connection.
      await waitFor(
        () => logger.lines.some((line) => line.message === "cannot reconnect to RabbitMQ yet"),
        "a failed reconnect",
      );
      proxy.up();
      assertEquals(await call, 5);
      assertEquals(lostAndBack(logger, "back"), true);
      assertEquals(logger.at("error"), []);
    } finally {
      await client.close();
      await app.stop({ graceMs: 0 });
    }
  },
);

outageTest(
  "while RabbitMQ stays away, calls fail at their timeout and close() does not hang",
  async (proxy, queue, logger) => {
    const client = await Client.connect({
      broker: "amqp",
      url: proxy.proxiedUrl,
      queue,
      logger,
      brokerSettings: FAST,
    });
    proxy.down();
    await waitFor(() => lostAndBack(logger, "lost"), "the client to notice");
    await assertRejects(
      client.call("anything", [], {}, { timeoutMs: 200 }),
      CallTimeoutError,
      "within 200 ms",
    );
    const waiting = client.call("anything", [], {}, { timeoutMs: 30_000 });
    await client.close();
    await assertRejects(waiting, BrokerError, "closed");
  },
);

outageTest(
  "a publish waits for the connection at most operationTimeoutMs",
  async (proxy, queue, logger) => {
    const broker = await connect({
      url: proxy.proxiedUrl,
      logger,
      settings: { ...FAST, operationTimeoutMs: 200 },
    });
    try {
      proxy.down();
      await waitFor(() => lostAndBack(logger, "lost"), "the broker connection to notice");
      await assertRejects(
        broker.publish(queue, "raw", "{}"),
        BrokerError,
        "within 200 ms",
      );
    } finally {
      await broker.close();
    }
  },
);
