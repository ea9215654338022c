/**
 * Redis broker: results that finish together are settled together, with one
 * run of the completion script for up to MAX_BATCH of them, and each of them
 * is still stored, pushed, acknowledged and deleted.
 */
import { AppServer, Client } from "../mod.ts";
import { CompletionBatcher, MAX_BATCH } from "../brokers/redis/completions.ts";
import { GROUP } from "../brokers/redis/consumer.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { ownServerIgnore, PlainRedis, RedisTestServer } from "./support/redis_server.ts";

const ownIgnore = await ownServerIgnore();

async function finishTogether(calls: number): Promise<Record<string, number>> {
  const server = await RedisTestServer.start();
  const plain = new PlainRedis(server.url);
  const logger = new RecordingLogger();
  const queue = `batch_${crypto.randomUUID().slice(0, 8)}`;
  const app = new AppServer({
    broker: "redis",
    url: server.url,
    queue,
    maxWorkers: calls,
    handleSignals: false,
    logger,
  });
  const release = Promise.withResolvers<void>();
  let running = 0;
  app.register("held", async (n: number) => {
    running++;
    await release.promise;
    return n * 2;
  });
  let client: Client | undefined;
  try {
    await app.start();
    client = await Client.connect({ broker: "redis", url: server.url, queue, logger });
    const results = Array.from({ length: calls }, (_, n) => client!.call("held", [n]));
    await waitFor(() => running === calls, "every call to be running");
    await plain.redis.config("RESETSTAT");
    release.resolve();
    assertEquals(await Promise.all(results), Array.from({ length: calls }, (_, n) => n * 2));
    const counted = await plain.commandCalls();
    assertEquals(await plain.redis.xlen(`prpc_${queue}`), 0);
    const pending = await plain.redis.xpending(`prpc_${queue}`, GROUP) as unknown[];
    assertEquals(pending[0], 0);
    return counted;
  } finally {
    await client?.close();
    await app.stop({ graceMs: 0 });
    await plain.close();
    await server.stop();
  }
}

Deno.test({
  name: "redis: results that finish in one turn are settled by one script run",
  ignore: ownIgnore !== undefined,
  async fn() {
    const counted = await finishTogether(40);
    assertEquals(counted.evalsha, 1);
    // Each result is still stored and pushed on its own; the batch is acknowledged and deleted at once.
    assertEquals(counted.set, 40);
    assertEquals(counted.publish, 40);
    assertEquals(counted.xack, 1);
    assertEquals(counted.xdel, 1);
  },
});

Deno.test({
  name: `redis: more than ${MAX_BATCH} results finishing together take more than one script run`,
  ignore: ownIgnore !== undefined,
  async fn() {
    const counted = await finishTogether(MAX_BATCH + 10);
    assertEquals(counted.evalsha, 2);
    assertEquals(counted.set, MAX_BATCH + 10);
  },
});

Deno.test("CompletionBatcher fails every completion of a batch whose script fails", async () => {
  const batches: number[] = [];
  const batcher = new CompletionBatcher((items) => {
    batches.push(items.length);
    return Promise.reject(new Error("OOM command not allowed"));
  });
  const item = (id: string) => ({ stream: "s", id, resultKey: `r${id}`, body: "{}", replyTo: "" });
  const settled = ["1", "2", "3"].map((id) => batcher.add(item(id)));
  for (const one of settled) await assertRejects(() => one, Error, "OOM");
  assertEquals(batches, [3]);
  // A later completion starts a batch of its own.
  await assertRejects(() => batcher.add(item("4")), Error, "OOM");
  assert(batches.length === 2 && batches[1] === 1);
});
