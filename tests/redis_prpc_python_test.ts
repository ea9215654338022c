/**
 * PRPC's own Python client against a prpc server on Redis: the requests of the
 * capture (`tests/fixtures/prpc-python/`) replayed with plain Redis commands,
 * answered in kind; the built-ins `ping` and `get_function_server`; hostile
 * jsonpickle refused without running anything.
 */
import { AppServer, Client, SerializationError } from "../mod.ts";
import { pickledUtcDatetime } from "../protocol/jsonpickle.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { capturedCalls, registerCapturedFunctions } from "./support/prpc_python.ts";
import { PlainRedis, redisForTests } from "./support/redis_server.ts";

const redis = await redisForTests();

interface Setup {
  queue: string;
  plain: PlainRedis;
  logger: RecordingLogger;
  /** Arguments `echo` was called with. */
  calls: string[];
  /** Adds a request to `prpc_{queue}` as PRPC's client does. */
  send(message: string): Promise<void>;
  /** Waits for the result PRPC's client would read, then deletes it as that client does. */
  result(messageId: string): Promise<string>;
}

async function withServer(body: (setup: Setup) => Promise<void>): Promise<void> {
  const queue = `pypr_${crypto.randomUUID().slice(0, 8)}`;
  const plain = new PlainRedis(redis.url ?? "");
  const logger = new RecordingLogger();
  const calls: string[] = [];
  const app = new AppServer({
    broker: "redis",
    url: redis.url,
    queue,
    handleSignals: false,
    logger,
  });
  registerCapturedFunctions(app, calls);
  try {
    await app.start();
    await body({
      queue,
      plain,
      logger,
      calls,
      send: async (message) => {
        await plain.redis.xadd(`prpc_${queue}`, "*", "message", message);
      },
      result: async (messageId) => {
        const key = `prpc_feedback_${queue}_${messageId}`;
        const text = await waitFor(() => plain.redis.get(key), `the result at ${key}`);
        await plain.redis.del(key);
        return text;
      },
    });
  } finally {
    await app.stop({ graceMs: 0 });
    await plain.close();
  }
}

const DONE = /, "date_done_message": (\{.*\})\}$/;

/** The result without its `date_done_message`, and that field read back as epoch ms. */
function splitDone(text: string): { head: string; doneMs: number } {
  const match = DONE.exec(text);
  assert(match !== null, text);
  const state = /"__reduce__": \[\{"py\/type": "datetime\.datetime"\}, \["([^"]+)"/.exec(match[1]!);
  assert(state !== null, match[1]);
  const b = Uint8Array.from(atob(state[1]!), (c) => c.charCodeAt(0));
  const doneMs = Date.UTC(
    (b[0]! << 8) | b[1]!,
    b[2]! - 1,
    b[3]!,
    b[4]!,
    b[5]!,
    b[6]!,
    Math.floor(((b[7]! << 16) | (b[8]! << 8) | b[9]!) / 1000),
  );
  return { head: text.slice(0, match.index), doneMs };
}

Deno.test({
  name:
    "prpc-python: each captured request is answered as PRPC's server answered it, byte for byte but for the time it ended",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withServer(async ({ send, result, logger }) => {
      const captured = (await capturedCalls()).filter((c) => c.funcName !== "get_function_server");
      assertEquals(captured.map((c) => c.funcName), [
        "ping",
        "hello_world",
        "summ",
        "summ",
        "fail",
      ]);
      for (const call of captured) {
        const before = Date.now();
        await send(call.request);
        const ours = splitDone(await result(call.messageId));
        const theirs = splitDone(call.result);
        assertEquals(ours.head, theirs.head, call.funcName);
        assert(ours.doneMs >= before - 1 && ours.doneMs <= Date.now(), `${ours.doneMs}`);
      }
      assertEquals(logger.at("error"), []);
    }),
});

Deno.test({
  name:
    "prpc-python: get_function_server lists the functions in PRPC's shape, with defaults a Python signature can take",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withServer(async ({ send, result }) => {
      const call = (await capturedCalls()).find((c) => c.funcName === "get_function_server")!;
      await send(call.request);
      const ours = JSON.parse(await result(call.messageId));
      const theirs = JSON.parse(call.result);
      assertEquals(ours["py/object"], "prpc.prpcmessage.PRPCMessage");
      assertEquals(ours.exception_info, null);
      const byName = (list: { func_name: string }[]) =>
        new Map(list.map((entry) => [entry.func_name, entry]));
      const listed = byName(ours.result);
      // The functions both servers have are listed alike, but that strings are quoted and a
      // single parameter without default is listed as a keyword, so that stubs work (builtins.ts).
      for (const name of ["ping", "summ", "hello_world", "nothing"]) {
        assertEquals(listed.get(name), byName(theirs.result).get(name), name);
      }
      assertEquals(byName(theirs.result).get("fail"), {
        func_name: "fail",
        func_args: [{ name: "msg" }],
        func_kwargs: [],
      });
      assertEquals(listed.get("fail"), {
        func_name: "fail",
        func_args: [],
        func_kwargs: [{ name: "msg" }],
      });
      assertEquals(listed.get("greet"), {
        func_name: "greet",
        func_args: [],
        func_kwargs: [
          { name: "name" },
          { name: "greeting", default: '"Hello"' },
          { name: "punct", default: '"!"' },
        ],
      });
      assertEquals(listed.has("get_function_server"), false);
    }),
});

Deno.test({
  name: "prpc-python: hostile jsonpickle gets an error result in kind, and nothing runs",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withServer(async ({ send, result, calls }) => {
      const template = JSON.parse((await capturedCalls())[0]!.request);
      const hostile: [string, unknown][] = [
        ["py/reduce", {
          "py/tuple": [{ "py/reduce": [{ "py/function": "os.system" }, { "py/tuple": ["id"] }] }],
        }],
        ["py/function", { "py/tuple": [{ "py/function": "os.system" }] }],
        ["py/repr", { "py/tuple": [{ "py/repr": "os/os.system('id')" }] }],
        ["py/object", [{ "py/object": "subprocess.Popen", "args": "id" }]],
        ["deeper than", { "py/tuple": [JSON.parse("[".repeat(5000) + "]".repeat(5000))] }],
      ];
      for (const [why, funcArgs] of hostile) {
        const messageId = crypto.randomUUID();
        await send(JSON.stringify({
          ...template,
          func_name: "echo",
          func_args: funcArgs,
          message_id: { "py/object": "uuid.UUID", hex: messageId.replaceAll("-", "") },
        }));
        const answer = JSON.parse(await result(messageId));
        assertEquals(answer["py/object"], "prpc.prpcmessage.PRPCMessage", why);
        assert(String(answer.exception_info).includes(why), answer.exception_info);
        assertEquals(answer.func_args, { "py/tuple": [] }, "nothing it sent is repeated");
        // Named in exception_info (a string), nowhere else.
        const rest = JSON.stringify({ ...answer, exception_info: null });
        for (const tag of ["os.system", "py/function", "py/repr", "subprocess"]) {
          assert(!rest.includes(tag), `${why}: the result repeats ${tag}`);
        }
      }
      // A top-level object of another class is refused too.
      const other = crypto.randomUUID();
      await send(JSON.stringify({
        ...template,
        "py/object": "builtins.eval",
        message_id: { "py/object": "uuid.UUID", hex: other.replaceAll("-", "") },
      }));
      assert(JSON.parse(await result(other)).exception_info.includes("PRPCMessage"));
      assertEquals(calls, []);
    }),
});

Deno.test({
  name:
    "prpc-python: a result holding a py/ key is refused for a PRPC client, and sent as is to a prpc client",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withServer(async ({ queue, send, result }) => {
      const template = JSON.parse((await capturedCalls())[0]!.request);
      const messageId = crypto.randomUUID();
      await send(JSON.stringify({
        ...template,
        func_name: "tagged",
        message_id: { "py/object": "uuid.UUID", hex: messageId.replaceAll("-", "") },
      }));
      const text = await result(messageId);
      const answer = JSON.parse(text);
      assertEquals(answer.result, null);
      assert(/cannot be sent.*py\/reduce/.test(answer.exception_info), answer.exception_info);
      assert(!text.includes("os.system"));
      const client = await Client.connect({ broker: "redis", url: redis.url, queue });
      try {
        const value = await client.call("tagged") as { nested: unknown[] };
        assertEquals(Object.keys(value.nested[0] as object), ["py/reduce"]);
        // The other way round: a PRPC server on the queue would restore such an argument.
        await assertRejects(
          client.call("echo", [{ list: [{ "py/reduce": [] }] }]),
          SerializationError,
          'argument args[0].list[0]["py/reduce"] has a key that starts with "py/"',
        );
        assertEquals(await client.call("echo", [{ text: '"py/ in a string is fine' }]), {
          text: '"py/ in a string is fine',
        });
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name:
    "prpc-python: ping and get_function_server answer on both queues, and a registered function of the same name wins",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withServer(async ({ queue, plain }) => {
      const native = await Client.connect({ broker: "redis", url: redis.url, queue });
      const raw = await Client.connect({ broker: "redis", url: redis.url, queue, protocol: "raw" });
      try {
        assertEquals(await native.call("ping"), "pong");
        assertEquals(await raw.call("ping"), "pong");
        const listed = await raw.call("get_function_server") as { func_name: string }[];
        assertEquals(listed.map((f) => f.func_name), [
          "ping",
          "summ",
          "hello_world",
          "greet",
          "fail",
          "nothing",
          "echo",
          "tagged",
        ]);
        await native.call("ping", [1]).then(
          () => assert(false, "ping(1) answered"),
          (error) => assert(/takes no arguments/.test(String(error)), String(error)),
        );
      } finally {
        await native.close();
        await raw.close();
      }
      // Its own ping on a server of its own.
      const own = `pyown_${crypto.randomUUID().slice(0, 8)}`;
      const app = new AppServer({
        broker: "redis",
        url: redis.url,
        queue: own,
        handleSignals: false,
      })
        .register(function ping() {
          return "mine";
        });
      await app.start();
      const client = await Client.connect({ broker: "redis", url: redis.url, queue: own });
      try {
        assertEquals(await client.call("ping"), "mine");
        const listed = await client.call("get_function_server") as { func_name: string }[];
        assertEquals(listed.map((f) => f.func_name), ["ping"]);
      } finally {
        await client.close();
        await app.stop({ graceMs: 0 });
      }
      void plain;
    }),
});

Deno.test("pickledUtcDatetime() writes the ten bytes of Python's datetime state", () => {
  // The capture's first date: 2026-12-05 11:38:36.961162 UTC, written to the millisecond.
  const text = pickledUtcDatetime(Date.UTC(2026, 11, 5, 11, 38, 36, 961));
  assert(
    text.includes('["B+oMBQsmJA6p6A==", {"py/reduce": [{"py/type": "datetime.timezone"}'),
    text,
  );
});
