/**
 * Redis broker: a Redis that stops answering while its connections stay open
 * (a frozen process, a network partition without resets), and servers that
 * share one instance name.
 */
import { AppServer, Client } from "../mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { redisForTests } from "./support/redis_server.ts";
import { TcpProxy } from "./support/tcp_proxy.ts";

const redis = await redisForTests();
const SETTINGS = { heartbeatIntervalMs: 200, recoverIntervalMs: 1_000 };
/** Generous: stopping waits a few seconds per step for a Redis that does not answer. */
const STOP_LIMIT_MS = 25_000;

/** Resolves with whether `promise` settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    promise.then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}

Deno.test({
  name: "redis: a server stops while Redis is frozen, and its call is still answered later",
  ignore: redis.ignore !== undefined,
  async fn() {
    const direct = redis.url ?? "";
    const proxy = TcpProxy.start(Number(new URL(direct).port));
    const queue = `frozen_${crypto.randomUUID().slice(0, 8)}`;
    const logger = new RecordingLogger();
    const started = deferred();
    const release = deferred<string>();
    const frozenApp = new AppServer({
      broker: "redis",
      url: `redis://127.0.0.1:${proxy.port}`,
      queue,
      handleSignals: false,
      logger,
      brokerSettings: SETTINGS,
    });
    frozenApp.register("hold", () => {
      started.resolve();
      return release.promise;
    });
    const rescuer = new AppServer({
      broker: "redis",
      url: direct,
      queue,
      handleSignals: false,
      logger,
      brokerSettings: SETTINGS,
    });
    rescuer.register("hold", () => "rescued");
    let client: Client | undefined;
    let stopping: Promise<void> | undefined;
    try {
      await frozenApp.start();
      client = await Client.connect({ broker: "redis", url: direct, queue, logger });
      const call = client.call("hold", [], {}, { timeoutMs: 60_000 }).then(
        (result) => String(result),
        (err: Error) => `${err.name}: ${err.message}`,
      );
      await started.promise;
      proxy.freeze();
      // Heartbeats (and recovery) are sent and get no answer.
      await waitFor(() => proxy.held >= 3, "commands held back by the frozen proxy");
      release.resolve("done");
      stopping = frozenApp.stop();
      assert(
        await settlesWithin(stopping, STOP_LIMIT_MS),
        `stop() did not end within ${STOP_LIMIT_MS} ms of Redis freezing`,
      );
      proxy.thaw();
      // The result came through late, or the request is taken over after the recover interval.
      await rescuer.start();
      const outcome = await call;
      assert(["done", "rescued"].includes(outcome), outcome);
    } finally {
      release.resolve("done");
      proxy.thaw();
      await stopping;
      await client?.close();
      await rescuer.stop({ graceMs: 0 });
      await proxy.close();
    }
  },
});

Deno.test({
  name: "redis: a server warns when a live server of its queue already uses its instance name",
  ignore: redis.ignore !== undefined,
  async fn() {
    const url = redis.url ?? "";
    const queue = `namesake_${crypto.randomUUID().slice(0, 8)}`;
    const instanceName = `twin_${crypto.randomUUID().slice(0, 8)}`;
    const loggers = [new RecordingLogger(), new RecordingLogger()];
    const apps = loggers.map((logger) =>
      new AppServer({ broker: "redis", url, queue, instanceName, handleSignals: false, logger })
    );
    for (const app of apps) app.register("f", () => 1);
    const client = await Client.connect({ broker: "redis", url, queue });
    try {
      await apps[0]?.start();
      // Redis lists a consumer once it was delivered something.
      assertEquals(await client.call("f", []), 1);
      await apps[1]?.start();
      const warned = (logger: RecordingLogger) =>
        logger.at("warn").filter((line) => line.message.includes("under this server's name"));
      assertEquals(warned(loggers[0] ?? new RecordingLogger()).length, 0);
      assertEquals(warned(loggers[1] ?? new RecordingLogger()).length, 1);
    } finally {
      await client.close();
      for (const app of apps) await app.stop({ graceMs: 0 });
    }
  },
});
