/**
 * Redis broker: the parts of the contract the conformance suite cannot see
 * (keys, group, consumer names, trimming, the order of store and acknowledge,
 * the heartbeat), and connecting (URLs with user, password and db, TLS, errors).
 */
import {
  AppServer,
  BrokerError,
  callContext,
  Client,
  ConfigError,
  connectBroker,
  PayloadTooLargeError,
} from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import {
  freePort,
  ownServerIgnore,
  PlainRedis,
  redisForTests,
  RedisTestServer,
} from "./support/redis_server.ts";

const redis = await redisForTests();
const ownIgnore = await ownServerIgnore();
const FAST = { heartbeatIntervalMs: 100, recoverIntervalMs: 500 };

/** Servers, clients and plain connections of one test, closed at the end. */
class Setup {
  readonly queue = `broker_${crypto.randomUUID().slice(0, 8)}`;
  readonly logger = new RecordingLogger();
  readonly plain = new PlainRedis(redis.url ?? "");
  readonly #servers: AppServer[] = [];
  readonly #clients: Client[] = [];

  async server(
    register: (app: AppServer) => void,
    options: Partial<ConstructorParameters<typeof AppServer>[0]> = {},
  ): Promise<AppServer> {
    const app = new AppServer({
      broker: "redis",
      url: redis.url,
      queue: this.queue,
      handleSignals: false,
      logger: this.logger,
      brokerSettings: FAST,
      ...options,
    });
    register(app);
    this.#servers.push(app);
    await app.start();
    return app;
  }

  async client(): Promise<Client> {
    const client = await Client.connect({
      broker: "redis",
      url: redis.url,
      queue: this.queue,
      logger: this.logger,
    });
    this.#clients.push(client);
    return client;
  }

  async close(): Promise<void> {
    for (const client of this.#clients) await client.close();
    for (const server of this.#servers) await server.stop({ graceMs: 0 });
    await this.plain.close();
  }
}

function redisTest(name: string, fn: (setup: Setup) => Promise<void>): void {
  Deno.test({
    name: `redis: ${name}`,
    ignore: redis.ignore !== undefined,
    async fn() {
      const setup = new Setup();
      try {
        await fn(setup);
      } finally {
        await setup.close();
      }
    },
  });
}

redisTest(
  "servers read in prpc_group_consumers under their instance name and leave it on stop",
  async (s) => {
    const app = await s.server((app) => app.register("ping", () => "pong"), {
      instanceName: "contract-server",
    });
    const client = await s.client();
    assertEquals(await client.call("ping"), "pong");
    for (const stream of [`prpc_${s.queue}`, `prpc_raw_${s.queue}`]) {
      const groups = await s.plain.redis.xinfo("GROUPS", stream) as unknown[][];
      assertEquals(groups.map((group) => group[1]), ["prpc_group_consumers"]);
    }
    const consumers = await s.plain.redis.xinfo(
      "CONSUMERS",
      `prpc_${s.queue}`,
      "prpc_group_consumers",
    ) as unknown[][];
    assertEquals(consumers.map((consumer) => consumer[1]), ["contract-server"]);
    await app.stop();
    const left = await s.plain.redis.xinfo(
      "CONSUMERS",
      `prpc_${s.queue}`,
      "prpc_group_consumers",
    ) as unknown[];
    assertEquals(left, [], "a server that stops cleanly leaves the group");
  },
);

redisTest(
  "results are stored under prpc_feedback_{queue}_{message_id} with their TTL; streams are trimmed",
  async (s) => {
    await s.server((app) => app.register("double", (n: number) => n * 2), {
      brokerSettings: { ...FAST, resultTtlSec: 120 },
    });
    const client = await s.client();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.call("double", [i])),
    );
    assertEquals(results, Array.from({ length: 200 }, (_, i) => i * 2));
    const keys = await s.plain.redis.keys(`prpc_feedback_${s.queue}_*`);
    assertEquals(keys.length, 200);
    const key = keys[0] ?? "";
    assert(
      /^prpc_feedback_broker_[0-9a-f]{8}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
        .test(key),
      key,
    );
    const stored = JSON.parse(await s.plain.redis.get(key) ?? "{}");
    assertEquals(key.endsWith(stored.message_id), true);
    const ttl = await s.plain.redis.pttl(key);
    assert(ttl > 110_000 && ttl <= 120_000, `TTL ${ttl} ms`);
    assertEquals(
      await s.plain.redis.xlen(`prpc_${s.queue}`),
      0,
      "acknowledged entries are deleted",
    );
    assertEquals((await s.plain.redis.xpending(`prpc_${s.queue}`, "prpc_group_consumers"))[0], 0);
  },
);

redisTest("a request is acknowledged only once its result is stored", async (s) => {
  const started = deferred();
  const release = deferred();
  await s.server((app) =>
    app.register("work", async () => {
      started.resolve();
      await release.promise;
      return callContext().attempt;
    })
  );
  const client = await s.client();
  const call = client.call("work", [], {}, { timeoutMs: 30_000 });
  await started.promise;
  // Redis refuses every write that needs memory from now on: storing the result fails.
  await s.plain.redis.config("SET", "maxmemory", "1");
  try {
    release.resolve();
    await waitFor(() => s.logger.at("error").length > 0, "the failed settlement");
    assertEquals(
      (await s.plain.redis.xpending(`prpc_${s.queue}`, "prpc_group_consumers"))[0],
      1,
      "still pending",
    );
    assertEquals(await s.plain.redis.keys(`prpc_feedback_${s.queue}_*`), [], "no result");
  } finally {
    await s.plain.redis.config("SET", "maxmemory", "0");
  }
  // Recovery delivers it again once it has been idle for the recover interval.
  assertEquals(await call, 2);
  assertEquals((await s.plain.redis.xpending(`prpc_${s.queue}`, "prpc_group_consumers"))[0], 0);
});

redisTest(
  "the heartbeat keeps a call that runs longer than the recover interval from being taken over",
  async (s) => {
    let runs = 0;
    const settings = { heartbeatIntervalMs: 100, recoverIntervalMs: 1_000 };
    const register = (app: AppServer) =>
      app.register("long", async () => {
        runs++;
        await new Promise((resolve) => setTimeout(resolve, 2.5 * settings.recoverIntervalMs));
        return callContext().attempt;
      });
    // With no free place the first server does not look for idle messages itself: only its
    // heartbeat keeps the second one from taking the call over.
    await s.server(register, { instanceName: "first", brokerSettings: settings, maxWorkers: 1 });
    const client = await s.client();
    const call = client.call("long");
    await waitFor(() => runs === 1, "the call to start");
    await s.server(register, { instanceName: "second", brokerSettings: settings });
    assertEquals(await call, 1, "delivered once");
    assertEquals(runs, 1, "ran once");
    assertEquals(s.logger.lines.filter((line) => line.message.includes("took over")), []);
  },
);

redisTest(
  "a redelivered request whose result is stored is answered from it, not run again",
  async (s) => {
    let runs = 0;
    await s.server((app) =>
      app.register("count", () => {
        runs++;
        return runs;
      })
    );
    const broker = await connectBroker("redis", { url: redis.url });
    try {
      const pushed = deferred<string>();
      const inbox = await broker.openInbox((body) => pushed.resolve(body));
      const id = crypto.randomUUID();
      const stored = JSON.stringify({
        func_name: "count",
        message_id: id,
        result: "stored before",
        exception_info: null,
        date_create_message: "2026-11-21T12:00:00.000+00:00",
        date_done_message: "2026-11-21T12:00:00.001+00:00",
        prpc: 1,
      });
      await s.plain.redis.set(`prpc_feedback_${s.queue}_${id}`, stored);
      // An entry handed back once before: this is its second delivery.
      await s.plain.redis.xadd(
        `prpc_${s.queue}`,
        "*",
        "message",
        JSON.stringify({ func_name: "count", message_id: id, reply_to: inbox.address }),
        "prpc_deliveries",
        "1",
      );
      assertEquals(await pushed.promise, stored);
      assertEquals(runs, 0);
      await inbox.close();
    } finally {
      await broker.close();
    }
  },
);

redisTest(
  "a request delivered more than PRPC_MAX_DELIVERIES (5) times is set aside with an error result",
  async (s) => {
    let runs = 0;
    await s.server((app) => app.register("work", () => runs++));
    const id = crypto.randomUUID();
    await s.plain.redis.xadd(
      `prpc_raw_${s.queue}`,
      "*",
      "message",
      JSON.stringify({ func_name: "work", message_id: id }),
      "prpc_deliveries",
      "5",
    );
    const result = JSON.parse(
      await waitFor(
        () => s.plain.redis.get(`prpc_feedback_raw_${s.queue}_${id}`),
        "the error result",
      ),
    );
    const reason = "delivered 6 times without completing (maxDeliveries 5)";
    assertEquals(result.exception_info, `ProtocolError: the message was set aside: ${reason}`);
    const [[, fields] = ["", []]] = await s.plain.redis.xrange(`prpc_dead_${s.queue}`, "-", "+");
    assertEquals(fields[fields.indexOf("reason") + 1], reason);
    assertEquals(runs, 0);
  },
);

redisTest("one read takes at most readCount requests, however many places are free", async (s) => {
  const client = await s.client();
  // Queued before any server runs: the first read could take them all.
  const calls = Array.from({ length: 20 }, (_, i) => client.call("count", [i]));
  await waitFor(async () => (await s.plain.redis.xlen(`prpc_${s.queue}`)) === 20, "20 requests");
  // The requests of one read start in one synchronous turn; a microtask ends the turn.
  const turns: number[] = [];
  let inTurn = 0;
  await s.server((app) =>
    app.register("count", (i: number) => {
      if (inTurn++ === 0) {
        queueMicrotask(() => {
          turns.push(inTurn);
          inTurn = 0;
        });
      }
      return i;
    }), { maxWorkers: 50, brokerSettings: { ...FAST, readCount: 6 } });
  assertEquals(await Promise.all(calls), Array.from({ length: 20 }, (_, i) => i));
  assertEquals(turns.reduce((sum, n) => sum + n, 0), 20);
  assertEquals(turns[0], 6, `turns: ${turns}`);
  assert(turns.every((n) => n <= 6), `turns: ${turns}`);
});

redisTest("the dead-letter stream keeps about deadLetterLimit entries", async (s) => {
  await s.server(() => {}, { brokerSettings: { ...FAST, deadLetterLimit: 10 } });
  const pipeline = s.plain.redis.pipeline();
  for (let i = 0; i < 250; i++) pipeline.xadd(`prpc_raw_${s.queue}`, "*", "message", `bad ${i}`);
  await pipeline.exec();
  await waitFor(async () => await s.plain.redis.xlen(`prpc_raw_${s.queue}`) === 0, "all set aside");
  const kept = await s.plain.redis.xlen(`prpc_dead_${s.queue}`);
  // MAXLEN ~ drops whole stream nodes (100 entries by default), never more than asked.
  assert(kept >= 10 && kept <= 110, `kept ${kept}`);
});

redisTest("settings are checked: recover interval, unknown keys, the size limit", async (s) => {
  await assertRejects(
    s.server(() => {}, {
      brokerSettings: { heartbeatIntervalMs: 1_000, recoverIntervalMs: 1_000 },
    }),
    ConfigError,
    "must be longer than the heartbeat interval",
  );
  await assertRejects(
    Client.connect({ broker: "redis", url: redis.url, brokerSettings: { heartbeat: 1 } }),
    ConfigError,
    'Redis broker setting "heartbeat"',
  );
  const broker = await connectBroker("redis", {
    url: redis.url,
    settings: { maxMessageBytes: 2048 },
  });
  try {
    assertEquals(broker.maxMessageBytes, 2048);
    const error = await assertRejects(
      broker.publish(s.queue, "raw", "x".repeat(3000)),
      PayloadTooLargeError,
    );
    assertEquals([error.size, error.limit], [3000, 2048]);
  } finally {
    await broker.close();
  }
});

redisTest(
  "a recover interval shorter than two heartbeats is allowed, with a warning",
  async (s) => {
    await s.server(() => {}, {
      brokerSettings: { heartbeatIntervalMs: 1_000, recoverIntervalMs: 1_500 },
    });
    const warned = s.logger.at("warn").map((line) => line.message);
    assert(warned.some((message) => message.includes("shorter than twice")), warned.join("\n"));
  },
);

redisTest("a request Redis refuses fails its call at once with a BrokerError", async (s) => {
  await s.server((app) => app.register("ping", () => "pong"));
  const client = await s.client();
  // The request stream is a string now: XADD fails, and certainly added nothing.
  await s.plain.redis.set(`prpc_${s.queue}`, "not a stream");
  try {
    await assertRejects(
      client.call("ping", [], {}, { timeoutMs: 30_000 }),
      BrokerError,
      "WRONGTYPE",
    );
  } finally {
    await s.plain.redis.del(`prpc_${s.queue}`);
  }
});

Deno.test({
  name: "redis: an unreachable Redis fails at connect with a BrokerError naming the URL",
  ignore: redis.ignore !== undefined,
  async fn() {
    const port = freePort();
    await assertRejects(
      Client.connect({
        broker: "redis",
        url: `redis://127.0.0.1:${port}/0`,
        logger: new RecordingLogger(),
      }),
      BrokerError,
      `Cannot connect to Redis at redis://127.0.0.1:${port}/0: connect ECONNREFUSED`,
    );
  },
});

Deno.test({
  name: "redis: URLs with a password, an ACL user and a db index",
  ignore: ownIgnore !== undefined,
  async fn() {
    const server = await RedisTestServer.start([
      "--requirepass",
      "s3cret",
      "--user",
      "alice",
      "on",
      ">wonder land",
      "~*",
      "&*",
      "+@all",
    ]);
    const base = `127.0.0.1:${server.port}`;
    try {
      const logger = new RecordingLogger();
      const error = await assertRejects(
        Client.connect({ broker: "redis", url: `redis://:wrong@${base}`, logger }),
        BrokerError,
        "Cannot connect to Redis at redis://:***@",
      );
      assert(!error.message.includes("wrong"), error.message);
      for (const url of [`redis://:s3cret@${base}/4`, `redis://alice:wonder%20land@${base}/4`]) {
        const queue = `auth_${crypto.randomUUID().slice(0, 8)}`;
        const app = new AppServer({ broker: "redis", url, queue, handleSignals: false, logger });
        app.register("ping", () => "pong");
        await app.start();
        const client = await Client.connect({ broker: "redis", url, queue, logger });
        try {
          assertEquals(await client.call("ping"), "pong");
        } finally {
          await client.close();
          await app.stop();
        }
        const plain = new PlainRedis(`redis://:s3cret@${base}/4`);
        try {
          assertEquals(await plain.redis.exists(`prpc_${queue}`), 1, "the stream is in db 4");
        } finally {
          await plain.close();
        }
      }
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "redis: rediss:// connects with TLS",
  ignore: ownIgnore !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "prpc_tls_" });
    let server: RedisTestServer | undefined;
    try {
      // A CA of the test's own, and a certificate for localhost signed by it.
      const openssl = async (...args: string[]) => {
        const output = await new Deno.Command("openssl", {
          args,
          cwd: dir,
          stdout: "null",
          stderr: "piped",
        }).output();
        assert(output.success, new TextDecoder().decode(output.stderr));
      };
      await openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=prpc test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
      );
      await openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
      );
      await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=DNS:localhost\n");
      await openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
      );
      const tlsPort = freePort();
      server = await RedisTestServer.start([
        "--tls-port",
        String(tlsPort),
        "--tls-cert-file",
        `${dir}/cert.pem`,
        "--tls-key-file",
        `${dir}/key.pem`,
        "--tls-ca-cert-file",
        `${dir}/cert.pem`,
        "--tls-auth-clients",
        "no",
      ]);
      const fixture = new URL("./fixtures/redis_call.ts", import.meta.url).pathname;
      const run = (url: string) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-all", "--cert", `${dir}/ca.pem`, fixture, url],
          env: { NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        }).output();
      const output = await run(`rediss://localhost:${tlsPort}/0`);
      const stderr = new TextDecoder().decode(output.stderr);
      assertEquals(output.code, 0, stderr);
      assertEquals(new TextDecoder().decode(output.stdout).trim(), "42");
      // Plain text to the TLS port is not taken for a working connection.
      const plain = await run(`redis://localhost:${tlsPort}/0`);
      assertEquals(plain.code, 1);
    } finally {
      await server?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
