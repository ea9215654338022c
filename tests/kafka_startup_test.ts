/** Servers and clients that start at the same moment on a new Kafka queue. */
import { AppServer, Client } from "../mod.ts";
import { assertEquals } from "./support/assert.ts";
import { kafkaUrl, testUrl } from "./support/kafka_target.ts";
import { RecordingLogger } from "./support/logger.ts";

const base = await kafkaUrl();

Deno.test("kafka: 3 servers and 2 clients started together on a new queue all start and serve, 10 times", async () => {
  for (let round = 0; round < 10; round++) {
    // A new queue each round: its topics do not exist yet, so every process races to create them.
    const queue = `startup_${crypto.randomUUID().slice(0, 8)}`;
    const url = testUrl(base, { groupId: `prpc_group_${crypto.randomUUID()}` });
    const logger = new RecordingLogger();
    const servers = [0, 1, 2].map(() =>
      new AppServer({ broker: "kafka", url, queue, handleSignals: false, logger, maxWorkers: 2 })
        .register("add", (a: number, b: number) => a + b)
    );
    const started = await Promise.allSettled([
      ...servers.map((server) => server.start()),
      Client.connect({ broker: "kafka", url, queue, logger, timeoutMs: 20_000 }),
      Client.connect({ broker: "kafka", url, queue, logger, timeoutMs: 20_000 }),
    ]);
    const clients = started.slice(3).flatMap((outcome) =>
      outcome.status === "fulfilled" ? [outcome.value as Client] : []
    );
    try {
      const failures = started.flatMap((outcome) =>
        outcome.status === "rejected" ? [String(outcome.reason)] : []
      );
      assertEquals(failures, [], `round ${round}`);
      const sums = await Promise.all(
        clients.flatMap((client) => [1, 2, 3].map((i) => client.call("add", [i, 10]))),
      );
      assertEquals(sums, [11, 12, 13, 11, 12, 13]);
      assertEquals(logger.at("error"), []);
    } finally {
      for (const client of clients) await client.close();
      for (const server of servers) await server.stop({ graceMs: 0 });
    }
  }
});
