/**
 * Redis broker: the Lua scripts on their own, driven with plain commands, for
 * the cases integration tests cannot bring about on demand (a late heartbeat,
 * an entry deleted while pending, entries left to a consumer by a lost reply).
 */
import { GROUP } from "../brokers/redis/consumer.ts";
import { HAND_BACK, RECOVER, runScript } from "../brokers/redis/scripts.ts";
import { assertEquals } from "./support/assert.ts";
import { PlainRedis, redisForTests } from "./support/redis_server.ts";

const redis = await redisForTests();

/** A stream of the test's own with the group created, and a plain connection; removed at the end. */
function scriptTest(name: string, fn: (plain: PlainRedis, stream: string) => Promise<void>) {
  Deno.test({
    name: `redis scripts: ${name}`,
    ignore: redis.ignore !== undefined,
    async fn() {
      const plain = new PlainRedis(redis.url ?? "");
      const stream = `prpc_raw_scripts_${crypto.randomUUID().slice(0, 8)}`;
      try {
        await plain.redis.xgroup("CREATE", stream, GROUP, "0", "MKSTREAM");
        await fn(plain, stream);
      } finally {
        await plain.redis.del(stream);
        await plain.close();
      }
    },
  });
}

/** Adds entries and reads them as `consumer`, then makes them look idle for a minute. */
async function deliver(
  plain: PlainRedis,
  stream: string,
  consumer: string,
  messages: string[],
): Promise<string[]> {
  const ids: string[] = [];
  for (const message of messages) {
    ids.push(await plain.redis.xadd(stream, "*", "message", message) ?? "");
  }
  await plain.redis.call("XREADGROUP", "GROUP", GROUP, consumer, "STREAMS", stream, ">");
  // XCLAIM ... JUSTID sets the idle time without counting a delivery.
  await plain.redis.call("XCLAIM", stream, GROUP, consumer, 0, ...ids, "IDLE", 60_000, "JUSTID");
  return ids;
}

/** Entry id, consumer and delivery count of each pending entry. */
async function pending(plain: PlainRedis, stream: string): Promise<[string, string, number][]> {
  const rows = await plain.redis.xpending(stream, GROUP, "-", "+", 100) as [
    string,
    string,
    number,
    number,
  ][];
  return rows.map(([id, consumer, , count]) => [id, consumer, count]);
}

scriptTest(
  "RECOVER leaves the entries its consumer holds, and their delivery count",
  async (plain, stream) => {
    const [held = "", orphan = ""] = await deliver(plain, stream, "me", ["held", "orphan"]);
    const taken = await runScript(plain.redis, RECOVER, [stream], [GROUP, "me", 1_000, 10, held]);
    assertEquals(taken, [[orphan, ["message", "orphan"], 2]]);
    assertEquals(await pending(plain, stream), [[held, "me", 1], [orphan, "me", 2]]);
  },
);

scriptTest("RECOVER takes over idle entries of other consumers", async (plain, stream) => {
  const [id = ""] = await deliver(plain, stream, "crashed", ["work"]);
  const taken = await runScript(plain.redis, RECOVER, [stream], [GROUP, "me", 1_000, 10]);
  assertEquals(taken, [[id, ["message", "work"], 2]]);
  assertEquals(await pending(plain, stream), [[id, "me", 2]]);
});

scriptTest("RECOVER acknowledges entries deleted while pending", async (plain, stream) => {
  const [gone = "", kept = ""] = await deliver(plain, stream, "crashed", ["gone", "kept"]);
  await plain.redis.xdel(stream, gone);
  const taken = await runScript(plain.redis, RECOVER, [stream], [GROUP, "me", 1_000, 10]);
  assertEquals(taken, [[kept, ["message", "kept"], 2]]);
  assertEquals(await pending(plain, stream), [[kept, "me", 2]]);
});

scriptTest(
  "HAND_BACK re-adds its consumer's entries it does not hold, with their delivery count",
  async (plain, stream) => {
    const [held = "", lost = "", gone = ""] = await deliver(plain, stream, "me", [
      "held",
      "lost",
      "gone",
    ]);
    await plain.redis.xdel(stream, gone);
    const [others = ""] = await deliver(plain, stream, "other", ["other's"]);
    const count = await runScript(plain.redis, HAND_BACK, [stream], [GROUP, "me", 0, held]);
    assertEquals(count, 1);
    assertEquals(await pending(plain, stream), [[held, "me", 1], [others, "other", 1]]);
    assertEquals(await plain.redis.xrange(stream, lost, lost), [], "the old entry is deleted");
    const entries = await plain.redis.xrange(stream, "-", "+");
    assertEquals(entries.map(([, fields]) => fields), [
      ["message", "held"],
      ["message", "other's"],
      ["message", "lost", "prpc_deliveries", "1"],
    ]);
  },
);

scriptTest(
  "HAND_BACK discounts the last delivery when asked (a lost read never ran)",
  async (plain, stream) => {
    await deliver(plain, stream, "me", ["lost"]);
    const count = await runScript(plain.redis, HAND_BACK, [stream], [GROUP, "me", 1]);
    assertEquals(count, 1);
    const entries = await plain.redis.xrange(stream, "-", "+");
    assertEquals(entries.map(([, fields]) => fields), [
      ["message", "lost", "prpc_deliveries", "0"],
    ]);
  },
);
