/**
 * Redis broker: the Redis server restarts (empty, as without persistence) while
 * calls are under way. Nothing may hang: every call succeeds or fails with a
 * clear error by its timeout, and servers and clients serve again afterwards.
 */
import { AppServer, BrokerError, CallTimeoutError, Client } from "../mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { ownServerIgnore, RedisTestServer } from "./support/redis_server.ts";

const ignore = await ownServerIgnore();
const TIMEOUT_MS = 3_000;

Deno.test({
  name:
    "redis: a Redis restart under load: every call settles by its timeout, then all is served again",
  ignore: ignore !== undefined,
  async fn() {
    const redis = await RedisTestServer.start();
    const logger = new RecordingLogger();
    const queue = `restart_${crypto.randomUUID().slice(0, 8)}`;
    const app = new AppServer({
      broker: "redis",
      url: redis.url,
      queue,
      handleSignals: false,
      logger,
      maxWorkers: 2,
      brokerSettings: { heartbeatIntervalMs: 200, recoverIntervalMs: 1_000 },
    });
    app.register("slow_double", async (n: number) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return n * 2;
    });
    let client: Client | undefined;
    try {
      await app.start();
      client = await Client.connect({ broker: "redis", url: redis.url, queue, logger });
      const caller = client;

      // Six loops keep calls in flight (more than the server runs at once, so some wait in the
      // stream and are lost with it) until told to stop; each call's outcome is recorded.
      const outcomes: { ok: boolean; error?: string; settledAfterMs: number }[] = [];
      let running = true;
      const loop = async () => {
        for (let n = 0; running; n++) {
          const started = Date.now();
          try {
            assertEquals(
              await caller.call("slow_double", [n], {}, { timeoutMs: TIMEOUT_MS }),
              n * 2,
            );
            outcomes.push({ ok: true, settledAfterMs: Date.now() - started });
          } catch (err) {
            assert(
              err instanceof CallTimeoutError || err instanceof BrokerError,
              `a clear error, got ${err}`,
            );
            outcomes.push({ ok: false, error: err.name, settledAfterMs: Date.now() - started });
          }
        }
      };
      const loops = Array.from({ length: 6 }, loop);
      await waitFor(() => outcomes.length >= 50, "calls before the restart");

      await redis.stop();
      const before = outcomes.length;
      await new Promise((resolve) => setTimeout(resolve, 500)); // Redis stays down for a while
      await redis.restart();
      await waitFor(
        () => outcomes.slice(before).filter((outcome) => outcome.ok).length >= 50,
        "calls succeeding after the restart",
        { timeoutMs: 20_000 },
      );
      running = false;
      await Promise.all(loops);

      const slowest = Math.max(...outcomes.map((outcome) => outcome.settledAfterMs));
      const failed = outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.error);
      assert(
        slowest <= TIMEOUT_MS + 1_000,
        `a call took ${slowest} ms to settle (${outcomes.length} calls, failed: ${failed})`,
      );
      assertEquals(await client.call("slow_double", [21]), 42, "a fresh call works");
      const warned = logger.at("warn").map((line) => line.message);
      assert(warned.includes("lost the Redis connection; reconnecting"), warned.join("\n"));
    } finally {
      await client?.close();
      await app.stop({ graceMs: 0 });
      await redis.stop();
    }
  },
});

Deno.test({
  name: "redis: stop() with calls running while Redis is down returns within seconds",
  ignore: ignore !== undefined,
  async fn() {
    const redis = await RedisTestServer.start();
    const logger = new RecordingLogger();
    const queue = `stop_down_${crypto.randomUUID().slice(0, 8)}`;
    const app = new AppServer({
      broker: "redis",
      url: redis.url,
      queue,
      handleSignals: false,
      logger,
      maxWorkers: 4,
    });
    let started = 0;
    app.register("hold", () => {
      started++;
      return new Promise(() => {});
    });
    let client: Client | undefined;
    try {
      await app.start();
      client = await Client.connect({ broker: "redis", url: redis.url, queue, logger });
      const caller = client;
      const calls = [1, 2, 3].map(() =>
        caller.call("hold", [], {}, { timeoutMs: 1_000 }).then(
          () => "answered",
          (err) => err.name,
        )
      );
      await waitFor(() => started === 3, "three calls running");
      await redis.stop();

      const began = Date.now();
      await app.stop({ graceMs: 0 });
      const tookMs = Date.now() - began;
      // Without Redis nothing can be handed back; the messages are taken over after the recover
      // interval. Waiting for reconnect attempts instead took minutes.
      assert(tookMs < 10_000, `stop() took ${tookMs} ms`);
      assert(
        logger.at("warn").some((line) => line.message.includes("hand")),
        JSON.stringify(logger.lines),
      );
      assertEquals(await Promise.all(calls), Array(3).fill("CallTimeoutError"));
    } finally {
      await client?.close();
      await app.stop({ graceMs: 0 });
      await redis.stop();
    }
  },
});
