/**
 * Redis broker: the raw protocol with nothing but plain Redis commands (XADD,
 * GET, XREADGROUP, SET), as a client or server in another language uses it.
 */
import { AppServer, Client, RemoteError, UnknownFunctionError } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import {
  ownServerIgnore,
  PlainRedis,
  redisForTests,
  RedisTestServer,
} from "./support/redis_server.ts";

const redis = await redisForTests();
const ownIgnore = await ownServerIgnore();

/** A queue of the test's own, a plain connection, a server on it, all closed at the end. */
async function withServer(
  body: (setup: { queue: string; plain: PlainRedis; logger: RecordingLogger }) => Promise<void>,
  options: { startServer?: boolean; before?: (plain: PlainRedis, queue: string) => Promise<void> } =
    {},
): Promise<void> {
  const queue = `raw_${crypto.randomUUID().slice(0, 8)}`;
  const plain = new PlainRedis(redis.url ?? "");
  const logger = new RecordingLogger();
  const app = new AppServer({
    broker: "redis",
    url: redis.url,
    queue,
    handleSignals: false,
    logger,
  });
  app.register(function summ(a: number, b: number, z = 0.5) {
    return a + b + z;
  });
  try {
    await options.before?.(plain, queue);
    await app.start();
    await body({ queue, plain, logger });
  } finally {
    await app.stop({ graceMs: 0 });
    await plain.close();
  }
}

const resultOf = (plain: PlainRedis, queue: string, id: string) =>
  waitFor(() => plain.redis.get(`prpc_feedback_raw_${queue}_${id}`), `the result of ${id}`)
    .then((text) => JSON.parse(text));

Deno.test({
  name: "redis raw: XADD a request, GET its result, with either form of message_id",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withServer(async ({ queue, plain }) => {
      const id = crypto.randomUUID();
      await plain.redis.xadd(
        `prpc_raw_${queue}`,
        "*",
        "message",
        JSON.stringify({
          func_name: "summ",
          func_args: [1, 2],
          func_kwargs: { z: 1 },
          message_id: id,
          date_create_message: "2026-11-21T15:00:00.000000+03:00",
        }),
      );
      const result = await resultOf(plain, queue, id);
      assertEquals(result.result, 4);
      assertEquals(result.exception_info, null);
      assertEquals(result.message_id, id);
      assertEquals(result.date_create_message, "2026-11-21T15:00:00.000000+03:00");
      assertEquals([result.func_args, result.func_kwargs], [[1, 2], { z: 1 }]);
      const ttl = await plain.redis.ttl(`prpc_feedback_raw_${queue}_${id}`);
      assert(ttl > 21_000 && ttl <= 21_600, `PRPC's default TTL, got ${ttl}`);

      const hexId = crypto.randomUUID();
      await plain.redis.xadd(
        `prpc_raw_${queue}`,
        "*",
        "message",
        JSON.stringify({
          func_name: "summ",
          func_args: [2, 2],
          message_id: { hex: hexId.replaceAll("-", "").toUpperCase() },
        }),
      );
      assertEquals((await resultOf(plain, queue, hexId)).result, 4.5);
    }),
});

Deno.test({
  name: "redis raw: requests added before any server ever started are served",
  ignore: redis.ignore !== undefined,
  fn: () => {
    const early = crypto.randomUUID();
    return withServer(async ({ queue, plain }) => {
      assertEquals((await resultOf(plain, queue, early)).result, 7.5);
      const groups = await plain.redis.xinfo("GROUPS", `prpc_raw_${queue}`) as unknown[][];
      assertEquals(groups.map((group) => group[1]), ["prpc_group_consumers"]);
    }, {
      // The stream exists, without any consumer group, before the server starts.
      before: async (plain, queue) => {
        await plain.redis.xadd(
          `prpc_raw_${queue}`,
          "*",
          "message",
          JSON.stringify({
            func_name: "summ",
            func_args: [3, 4],
            message_id: early,
          }),
        );
      },
    });
  },
});

Deno.test({
  name:
    "redis raw: malformed entries get an error result or go to prpc_dead_{queue}; none stays pending",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withServer(async ({ queue, plain, logger }) => {
      const raw = `prpc_raw_${queue}`;
      const native = `prpc_${queue}`;
      // Nobody to answer: set aside.
      await plain.redis.xadd(raw, "*", "message", "{not json");
      await plain.redis.xadd(raw, "*", "message", JSON.stringify({ func_name: "summ" }));
      await plain.redis.xadd(raw, "*", "msg", JSON.stringify({ func_name: "summ" }));
      await plain.redis.xadd(native, "*", "body", "no message field", "other", "x");
      // A readable message_id: an error result.
      const wrongTypes = crypto.randomUUID();
      await plain.redis.xadd(
        raw,
        "*",
        "message",
        JSON.stringify({
          func_name: "summ",
          func_args: { a: 1 },
          message_id: wrongTypes,
        }),
      );
      const missingName = crypto.randomUUID();
      await plain.redis.xadd(raw, "*", "message", JSON.stringify({ message_id: missingName }));

      const wrong = await resultOf(plain, queue, wrongTypes);
      assertEquals(
        wrong.exception_info,
        "ProtocolError: field func_args must be an array, got an object",
      );
      const missing = await resultOf(plain, queue, missingName);
      assertEquals(missing.exception_info, "ProtocolError: field func_name is missing");

      const dead = await waitFor(async () => {
        const entries = await plain.redis.xrange(`prpc_dead_${queue}`, "-", "+");
        return entries.length >= 4 && entries.map(([, fields]) => fieldsOf(fields));
      }, "four dead letters");
      const reasons = dead.map((entry) => `${entry.kind}: ${entry.reason}`).sort();
      assert(
        reasons[0]?.startsWith("native: stream entry ") &&
          reasons[0].endsWith('has no field "message"'),
        reasons[0],
      );
      assert(reasons[1]?.startsWith("raw: field message_id is missing"), reasons[1]);
      assert(reasons[2]?.startsWith("raw: message is not JSON"), reasons[2]);
      assert(
        reasons[3]?.startsWith("raw: stream entry ") &&
          reasons[3].endsWith('has no field "message"'),
        reasons[3],
      );
      const noField = dead.find((entry) => entry.kind === "native");
      assertEquals(JSON.parse(noField?.body ?? "null"), { body: "no message field", other: "x" });
      assert(dead.every((entry) => /^\d{4}-\d\d-\d\dT.*\+00:00$/.test(entry.date ?? "")));

      for (const stream of [raw, native]) {
        await waitFor(
          async () => (await plain.redis.xpending(stream, "prpc_group_consumers"))[0] === 0,
          `nothing pending on ${stream}`,
        );
        assertEquals(await plain.redis.xlen(stream), 0, `${stream} is empty`);
      }
      const id = crypto.randomUUID();
      await plain.redis.xadd(
        raw,
        "*",
        "message",
        JSON.stringify({ func_name: "summ", func_args: [1, 1], message_id: id }),
      );
      assertEquals((await resultOf(plain, queue, id)).result, 2.5, "the server keeps serving");
      assertEquals(logger.at("error"), []);
    }),
});

function fieldsOf(fields: string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i] ?? ""] = fields[i + 1] ?? "";
  return record;
}

Deno.test({
  name: "redis raw: Client protocol raw calls a prpc server through the raw queue and result keys",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withServer(async ({ queue }) => {
      const client = await Client.connect({
        broker: "redis",
        url: redis.url,
        queue,
        protocol: "raw",
      });
      try {
        assertEquals(await client.call("summ", [1, 2], { z: 3 }), 6);
        await assertRejects(client.call("nope"), UnknownFunctionError, '"nope"');
        const many = await Promise.all(
          Array.from({ length: 50 }, (_, i) => client.call("summ", [i, 0], { z: 0 })),
        );
        assertEquals(many, Array.from({ length: 50 }, (_, i) => i));
      } finally {
        await client.close();
      }
    }),
});

/**
 * A server as PRPC (Python) runs it, with plain commands: reads `prpc_raw_{queue}`
 * in the consumer group, stores results with `message_id` as `{"hex": ...}` and
 * errors only as `exception_info`.
 */
async function fakePrpcServer(url: string, queue: string, seen: unknown[]) {
  const reader = new PlainRedis(url);
  const stream = `prpc_raw_${queue}`;
  await reader.redis.xgroup("CREATE", stream, "prpc_group_consumers", "$", "MKSTREAM");
  let running = true;
  const serving = (async () => {
    while (running) {
      const reply = await reader.redis.call(
        "XREADGROUP",
        "GROUP",
        "prpc_group_consumers",
        "python",
        "COUNT",
        10,
        "BLOCK",
        50,
        "STREAMS",
        stream,
        ">",
      ) as [string, [string, string[]][]][] | null;
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        const request = JSON.parse(fieldsOf(fields).message ?? "{}");
        seen.push(request);
        const [a, b] = request.func_args as number[];
        const failed = b === 0;
        const result = {
          func_name: request.func_name,
          func_args: request.func_args,
          func_kwargs: request.func_kwargs,
          message_id: { hex: (request.message_id as string).replaceAll("-", "") },
          result: failed ? null : (a ?? 0) / (b ?? 1),
          exception_info: failed ? "division by zero" : null, // str(e), as PRPC writes it
          date_create_message: request.date_create_message,
          date_done_message: "2026-11-21T12:00:00.000000+03:00",
        };
        await reader.redis.set(
          `prpc_feedback_raw_${queue}_${request.message_id}`,
          JSON.stringify(result),
          "EX",
          60,
        );
        await reader.redis.xack(stream, "prpc_group_consumers", id);
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await serving;
      await reader.close();
    },
  };
}

Deno.test({
  name:
    'redis raw: Client protocol raw calls a PRPC server, reading {"hex"} message ids and exception_info',
  ignore: redis.ignore !== undefined,
  async fn() {
    const queue = `prpc_${crypto.randomUUID().slice(0, 8)}`;
    const seen: unknown[] = [];
    const server = await fakePrpcServer(redis.url ?? "", queue, seen);
    const client = await Client.connect({
      broker: "redis",
      url: redis.url,
      queue,
      protocol: "raw",
    });
    try {
      assertEquals(await client.call("divide", [6, 3]), 2);
      const error = await assertRejects(
        client.call("divide", [1, 0]),
        RemoteError,
        "division by zero",
      );
      assertEquals([error.remoteName, error.remoteMessage], ["Error", "division by zero"]);
      const request = seen[0] as Record<string, unknown>;
      assertEquals(Object.keys(request).sort(), [
        "date_create_message",
        "func_args",
        "func_kwargs",
        "func_name",
        "message_id",
      ]);
    } finally {
      await client.close();
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "redis raw: a raw client reads the results of all its waiting calls with one MGET at a time",
  ignore: ownIgnore !== undefined,
  async fn() {
    // A server of the test's own: Redis's command counts are those of this test alone.
    const server = await RedisTestServer.start();
    const queue = `raw_mget_${crypto.randomUUID().slice(0, 8)}`;
    const logger = new RecordingLogger();
    const app = new AppServer({
      broker: "redis",
      url: server.url,
      queue,
      handleSignals: false,
      logger,
      maxWorkers: 100,
    });
    app.register("slow", async (n: number) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return n;
    });
    const plain = new PlainRedis(server.url);
    let client: Client | undefined;
    try {
      await app.start();
      client = await Client.connect({ broker: "redis", url: server.url, queue, protocol: "raw" });
      const caller = client;
      await plain.redis.config("RESETSTAT");
      const calls = Array.from({ length: 100 }, (_, i) => i);
      assertEquals(await Promise.all(calls.map((n) => caller.call("slow", [n]))), calls);
      const stats = await plain.commandCalls();
      const count = (name: string) => stats[name] ?? 0;
      assertEquals(count("get"), 0, "no GET per call");
      // Reads at 0, 1, 2, 4, ... 64 ms and then every 100 ms while any call waits: far fewer
      // reads than calls (one GET per call and read was about 3.5 GETs per call).
      assert(count("mget") > 0 && count("mget") < calls.length, `${count("mget")} MGETs`);
    } finally {
      await client?.close();
      await app.stop({ graceMs: 0 });
      await plain.close();
      await server.stop();
    }
  },
});
