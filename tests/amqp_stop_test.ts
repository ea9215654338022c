/** Stopping an AMQP server right after its calls were answered leaves nothing to deliver again. */
import { AppServer, Client, connectBroker } from "../mod.ts";
import { assertEquals } from "./support/assert.ts";
import { amqpForTests } from "./support/amqp_server.ts";
import { waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";

const rabbit = await amqpForTests();

Deno.test({
  name: "amqp: calls answered just before stop() are acknowledged, not delivered again (20 rounds)",
  ignore: rabbit.ignore !== undefined,
  async fn() {
    // amqplib loses acknowledgements still in a channel's buffer when the connection closes
    // first: the server must close its consuming channel before the connection.
    for (let round = 0; round < 20; round++) {
      const queue = `stop_${crypto.randomUUID().slice(0, 8)}`;
      const logger = new RecordingLogger();
      const app = new AppServer({
        broker: "amqp",
        url: rabbit.url,
        queue,
        handleSignals: false,
        logger,
        maxWorkers: 4,
      });
      app.register("double", (n: number) => n * 2);
      await app.start();
      const client = await Client.connect({ broker: "amqp", url: rabbit.url, queue, logger });
      const bare = await connectBroker("amqp", { url: rabbit.url, logger });
      try {
        assertEquals(
          await Promise.all([1, 2, 3, 4].map((n) => client.call("double", [n]))),
          [2, 4, 6, 8],
        );
        await app.stop();
        // A consumer of the same queue sees whatever was left unacknowledged before a sentinel.
        const left: string[] = [];
        const sentinel = JSON.stringify({ func_name: "none", message_id: crypto.randomUUID() });
        let sentinelSeen = false;
        const subscription = await bare.consume(queue, (delivery) => {
          if (delivery.body === sentinel) sentinelSeen = true;
          else left.push(delivery.body);
          delivery.complete({ messageId: crypto.randomUUID(), body: "{}" }).catch(() => {});
        }, { prefetch: 10 });
        await bare.publish(queue, "native", sentinel);
        await waitFor(() => sentinelSeen, "the sentinel");
        await subscription.close();
        assertEquals(left, [], `round ${round}: answered calls came back`);
      } finally {
        await bare.close();
        await client.close();
        await app.stop();
      }
    }
  },
});
