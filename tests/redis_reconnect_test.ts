/**
 * Redis broker: connections that drop and come back. A TCP proxy between the
 * tested side and Redis cuts every connection and refuses new ones until the
 * test opens it again.
 */
import { AppServer, CallTimeoutError, Client } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { PlainRedis, redisForTests } from "./support/redis_server.ts";
import { TcpProxy } from "./support/tcp_proxy.ts";

const redis = await redisForTests();
const SETTINGS = { heartbeatIntervalMs: 200, recoverIntervalMs: 1_000 };

/** A test's queue, a proxy to Redis, and everything closed at the end. */
async function withProxy(
  body: (setup: {
    queue: string;
    direct: string;
    proxied: string;
    proxy: TcpProxy;
    logger: RecordingLogger;
    track: <T extends { close(): Promise<void> } | AppServer>(thing: T) => T;
  }) => Promise<void>,
): Promise<void> {
  const direct = redis.url ?? "";
  const proxy = TcpProxy.start(Number(new URL(direct).port));
  const things: ({ close(): Promise<void> } | AppServer)[] = [];
  try {
    await body({
      queue: `reconnect_${crypto.randomUUID().slice(0, 8)}`,
      direct,
      proxied: `redis://127.0.0.1:${proxy.port}`,
      proxy,
      logger: new RecordingLogger(),
      track: (thing) => {
        things.push(thing);
        return thing;
      },
    });
  } finally {
    proxy.open();
    for (const thing of things.reverse()) {
      if (thing instanceof AppServer) await thing.stop({ graceMs: 0 });
      else await thing.close();
    }
    await proxy.close();
  }
}

function hold() {
  const started = deferred();
  const release = deferred<string>();
  return {
    started,
    release,
    fn: () => {
      started.resolve();
      return release.promise;
    },
  };
}

Deno.test({
  name:
    "redis: a result published while the client's connection is down is read from its key after the reconnect",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withProxy(async ({ queue, direct, proxied, proxy, logger, track }) => {
      const work = hold();
      const app = track(
        new AppServer({ broker: "redis", url: direct, queue, handleSignals: false, logger }),
      );
      app.register("hold", work.fn);
      await app.start();
      const client = track(await Client.connect({ broker: "redis", url: proxied, queue, logger }));
      const plain = track(new PlainRedis(direct)).redis;

      const call = client.call("hold", [], {}, { timeoutMs: 30_000 });
      await work.started.promise;
      await proxy.cut();
      work.release.resolve("done");
      // The result is stored (and published to an inbox that is not subscribed any more).
      await waitFor(
        async () => (await plain.keys(`prpc_feedback_${queue}_*`)).length > 0,
        "the stored result",
      );
      proxy.open();
      assertEquals(await call, "done");
      const back = logger.at("info").filter((line) => line.message.includes("connection is back"));
      assert(back.some((line) => line.details?.role === "inbox"), JSON.stringify(logger.lines));
    }),
});

Deno.test({
  name: "redis: calls made while the connection is down are sent once it is back, or time out",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withProxy(async ({ queue, direct, proxied, proxy, logger, track }) => {
      const app = track(
        new AppServer({ broker: "redis", url: direct, queue, handleSignals: false, logger }),
      );
      app.register("echo", (value: unknown) => value);
      await app.start();
      const client = track(await Client.connect({ broker: "redis", url: proxied, queue, logger }));
      assertEquals(await client.call("echo", [1]), 1);

      await proxy.cut();
      await assertRejects(
        client.call("echo", [2], {}, { timeoutMs: 200 }),
        CallTimeoutError,
        "within 200 ms",
      );
      const waiting = client.call("echo", [3], {}, { timeoutMs: 30_000 });
      proxy.open();
      assertEquals(await waiting, 3);
      assertEquals(await client.call("echo", [4]), 4);
    }),
});

Deno.test({
  name: "redis: a server whose connections drop finishes its running call and serves again",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withProxy(async ({ queue, direct, proxied, proxy, logger, track }) => {
      const work = hold();
      const app = track(
        new AppServer({
          broker: "redis",
          url: proxied,
          queue,
          handleSignals: false,
          logger,
          brokerSettings: SETTINGS,
        }),
      );
      app.register("hold", work.fn);
      app.register("echo", (value: unknown) => value);
      await app.start();
      const client = track(await Client.connect({ broker: "redis", url: direct, queue, logger }));

      const running = client.call("hold", [], {}, { timeoutMs: 30_000 });
      await work.started.promise;
      await proxy.cut();
      const queued = client.call("echo", ["sent while the server was away"], {}, {
        timeoutMs: 30_000,
      });
      work.release.resolve("finished while away");
      proxy.open();
      assertEquals(await running, "finished while away");
      assertEquals(await queued, "sent while the server was away");
      assertEquals(await client.call("echo", ["after"]), "after");
      assertEquals(logger.at("error"), [], "no errors");
    }),
});
