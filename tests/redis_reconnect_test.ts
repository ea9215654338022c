/**
 * Redis broker: connections that drop and come back. A TCP proxy between the
 * tested side and Redis cuts every connection and refuses new ones until the
 * test opens it again.
 */
import { AppServer, callContext, CallTimeoutError, Client } from "../mod.ts";
import { BLOCK_MS, BLOCKING_GRACE_MS } from "../brokers/redis/connection.ts";
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

Deno.test({
  name:
    "redis: a request whose reply is lost with the client's connection is added once, and its call completes",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withProxy(async ({ queue, direct, proxied, proxy, logger, track }) => {
      const runs = new Map<number, number>();
      const app = track(
        new AppServer({ broker: "redis", url: direct, queue, handleSignals: false, logger }),
      );
      app.register("charge", (n: number) => {
        runs.set(n, (runs.get(n) ?? 0) + 1);
        return n;
      });
      await app.start();
      const client = track(await Client.connect({ broker: "redis", url: proxied, queue, logger }));
      const plain = track(new PlainRedis(direct)).redis;

      // Redis adds the request; the connection drops before its reply reaches the client.
      const dropped = proxy.dropRepliesAfter("XADD");
      const call = client.call("charge", [7], {}, { timeoutMs: 30_000 });
      await dropped;
      await proxy.cut();
      proxy.open();
      assertEquals(await call, 7);
      // A request sent again on reconnect would go before this one on the same connection.
      assertEquals(await client.call("charge", [8], {}, { timeoutMs: 30_000 }), 8);
      await waitFor(
        async () =>
          await plain.xlen(`prpc_${queue}`) === 0 &&
          (await plain.xpending(`prpc_${queue}`, "prpc_group_consumers"))[0] === 0,
        "every request settled",
      );
      assertEquals(runs.get(7), 1, "the request was added (and run) once");
      assert(
        logger.at("warn").some((line) => line.message.includes("may have been added")),
        JSON.stringify(logger.lines),
      );
    }),
});

Deno.test({
  name:
    "redis: requests added while a server's connection is down are read as soon as it is back, not taken over later",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withProxy(async ({ queue, direct, proxied, proxy, logger, track }) => {
      const app = track(
        new AppServer({
          broker: "redis",
          url: proxied,
          queue,
          handleSignals: false,
          logger,
          brokerSettings: { heartbeatIntervalMs: 200, recoverIntervalMs: 2_000 },
        }),
      );
      app.register("attempt", () => callContext().attempt);
      await app.start();
      const plain = track(new PlainRedis(direct)).redis;

      await proxy.cut();
      // Longer than a blocking read waits: reads time out on the server's side while it is away.
      await new Promise((resolve) => setTimeout(resolve, BLOCK_MS + 1_000));
      const ids = [0, 1, 2].map(() => crypto.randomUUID());
      for (const id of ids) {
        await plain.xadd(
          `prpc_raw_${queue}`,
          "*",
          "message",
          JSON.stringify({ func_name: "attempt", message_id: id }),
        );
      }
      proxy.open();
      for (const id of ids) {
        const stored = await waitFor(
          () => plain.get(`prpc_feedback_raw_${queue}_${id}`),
          `the result of ${id}`,
        );
        assertEquals(
          JSON.parse(stored).result,
          1,
          "delivered once, by the read after reconnecting",
        );
      }
      const tookOver = logger.lines.filter((line) => line.message.includes("took over"));
      assertEquals(tookOver, [], "nothing was left pending to be taken over");
    }),
});

Deno.test({
  name:
    "redis: a request read while its server stops is handed back at once, not after the recover interval",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withProxy(async ({ queue, direct, proxied, proxy, logger, track }) => {
      const settings = { heartbeatIntervalMs: 200, recoverIntervalMs: 60_000 };
      // Redis delivers the request to the stopping server's read; the reply never arrives.
      const dropped = proxy.dropRepliesAfter("XREADGROUP");
      const first = track(
        new AppServer({
          broker: "redis",
          url: proxied,
          queue,
          handleSignals: false,
          logger,
          instanceName: "first",
          brokerSettings: settings,
        }),
      );
      first.register("where", () => "first");
      await first.start();
      const plain = track(new PlainRedis(direct)).redis;
      const id = crypto.randomUUID();
      await plain.xadd(
        `prpc_raw_${queue}`,
        "*",
        "message",
        JSON.stringify({ func_name: "where", message_id: id }),
      );
      await dropped;
      await first.stop({ graceMs: 0 });

      const stream = `prpc_raw_${queue}`;
      assertEquals((await plain.xpending(stream, "prpc_group_consumers"))[0], 0, "none pending");
      assertEquals(await plain.xlen(stream), 1, "the request is back in its stream");
      assertEquals(await plain.xinfo("CONSUMERS", stream, "prpc_group_consumers"), []);

      const second = track(
        new AppServer({
          broker: "redis",
          url: direct,
          queue,
          handleSignals: false,
          logger,
          instanceName: "second",
          brokerSettings: settings,
        }),
      );
      second.register("where", () => "second");
      await second.start();
      const stored = await waitFor(
        () => plain.get(`prpc_feedback_raw_${queue}_${id}`),
        "the result from the second server",
      );
      assertEquals(JSON.parse(stored).result, "second");
    }),
});

Deno.test({
  name:
    "redis: a read whose reply never comes is given up after its grace; the server reads on a new connection and serves the request",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withProxy(async ({ queue, direct, proxied, proxy, logger, track }) => {
      // The recover interval is longer than the test: only the server itself can serve the call.
      const settings = { heartbeatIntervalMs: 200, recoverIntervalMs: 120_000 };
      // The read's socket stays open, and no reply on it reaches the server any more.
      const dropped = proxy.dropRepliesAfter("XREADGROUP");
      let runs = 0;
      const app = track(
        new AppServer({
          broker: "redis",
          url: proxied,
          queue,
          handleSignals: false,
          logger,
          brokerSettings: settings,
        }),
      );
      app.register("where", () => {
        runs++;
        return "served";
      });
      await app.start();
      const client = track(await Client.connect({ broker: "redis", url: direct, queue, logger }));
      const call = client.call("where", [], {}, { timeoutMs: 4 * (BLOCK_MS + BLOCKING_GRACE_MS) });
      await dropped;
      assertEquals(await call, "served");
      const warned = logger.lines.filter((line) => line.message.includes("did not answer a read"));
      // Logged before the server read again: the call was served by the read after it.
      assertEquals(warned.length, 1, "the lost read is reported once, before the call is served");
      assertEquals(runs, 1, "run once");
    }),
});
