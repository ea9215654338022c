/**
 * The broker conformance suite: everything a broker must do for prpc, checked
 * through the public API (AppServer, Client) and the broker interface (as a
 * foreign raw client would use it). Every broker runs it unchanged:
 *
 * ```ts ignore
 * runConformance({ name: "memory", broker: "memory", url: () => `memory://${crypto.randomUUID()}` });
 * ```
 */

import {
  type AppServer,
  ArgumentError,
  BrokerError,
  callContext,
  CallTimeoutError,
  PayloadTooLargeError,
  ProtocolError,
  RemoteError,
  SerializationError,
  UnknownFunctionError,
  WorkerTimeoutError,
} from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { type ConformanceTarget, type ConformanceTest, Harness } from "./support/harness.ts";
import { workerConformance } from "./conformance_workers.ts";
import { limitsConformance } from "./conformance_limits.ts";
import { fuzzConformance } from "./conformance_fuzz.ts";

export type { ConformanceTarget };

/** Runs the whole suite against one broker. */
export function runConformance(target: ConformanceTarget): void {
  const test: ConformanceTest = (name, body) => {
    Deno.test({
      name: `${target.name}: ${name}`,
      ignore: target.ignore !== undefined,
      async fn() {
        const harness = new Harness(target);
        try {
          await body(harness);
        } finally {
          await harness.close();
        }
      },
    });
  };

  function summ(a: number, b: number, z = 0.5): number {
    return a + b + z;
  }

  test("a call returns the function's result, with args, kwargs and defaults", async (h) => {
    await h.server((app) => {
      app.register(summ);
      app.register("echo", (value: unknown, extra: unknown = "default") => ({ value, extra }));
      app.register("nothing", () => {});
    });
    const client = await h.client();
    assertEquals(await client.call("summ", [1, 2]), 3.5);
    assertEquals(await client.call("summ", [1, 2], { z: 3 }), 6);
    assertEquals(await client.call("summ", [], { b: 2, a: 1, z: 0 }), 3);
    const when = new Date("2026-01-02T03:04:05.678Z");
    assertEquals(await client.call("echo", [{ when, list: [1, "a", null, true] }]), {
      value: { when: "2026-01-02T03:04:05.678Z", list: [1, "a", null, true] },
      extra: "default",
    });
    assertEquals(await client.call("nothing"), null, "a function that returns nothing gives null");
    const api = client.proxy<{ summ: typeof summ }>();
    const typed: number = await api.summ(10, 20);
    assertEquals(typed, 30.5);
  });

  test("ping and get_function_server are built in on both queues, and a registered function of the same name wins", async (h) => {
    let pings = 0;
    await h.server((app) => app.register(summ));
    const client = await h.client();
    assertEquals(await client.call("ping"), "pong");
    assertEquals(await client.call("get_function_server"), [
      { func_name: "ping", func_args: [], func_kwargs: [] },
      {
        func_name: "summ",
        func_args: [{ name: "a" }, { name: "b" }],
        func_kwargs: [{ name: "z", default: 0.5 }],
      },
    ]);
    await assertRejects(client.call("ping", [1]), ArgumentError, "takes no arguments");
    const broker = await h.broker();
    const messageId = crypto.randomUUID();
    await broker.publish(
      h.queue,
      "raw",
      JSON.stringify({ func_name: "ping", func_args: [], func_kwargs: {}, message_id: messageId }),
    );
    const raw = JSON.parse(
      await waitFor(() => broker.readResult(h.queue, "raw", messageId), "the raw ping result"),
    );
    assertEquals([raw.result, raw.exception_info], ["pong", null]);
    await h.server((app) =>
      app.register(function ping() {
        pings++;
        return "mine";
      }), { queue: `${h.queue}_own` });
    const own = await h.client({ queue: `${h.queue}_own` });
    assertEquals(await own.call("ping"), "mine");
    assertEquals(pings, 1);
  });

  test("a function that throws is re-thrown as RemoteError with name, message, stack, code and data", async (h) => {
    await h.server((app) => {
      app.register("fail", function failingFunction() {
        const error = new TypeError("bad thing") as TypeError & { code: string; data: unknown };
        error.code = "E_BAD";
        error.data = { field: "x" };
        throw error;
      });
      app.register("reject", () => Promise.reject("plain string"));
    });
    const client = await h.client();
    const error = await assertRejects(client.call("fail"), RemoteError, "bad thing");
    assertEquals(error.remoteName, "TypeError");
    assertEquals(error.remoteMessage, "bad thing");
    assertEquals(error.code, "E_BAD");
    assertEquals(error.data, { field: "x" });
    assertEquals(error.funcName, "fail");
    assert(error.remoteStack?.includes("failingFunction"), `stack: ${error.remoteStack}`);
    const plain = await assertRejects(client.call("reject"), RemoteError, "plain string");
    assertEquals(plain.remoteName, "Error");
  });

  test("stacks are not sent when exposeStacks is false", async (h) => {
    await h.server((app) =>
      app.register("fail", () => {
        throw new Error("secret path");
      }), { exposeStacks: false });
    const client = await h.client();
    const error = await assertRejects(client.call("fail"), RemoteError, "secret path");
    assertEquals(error.remoteStack, undefined);
  });

  test("the client timeout rejects with CallTimeoutError, and an aborted signal too", async (h) => {
    const latch = h.latch();
    await h.server((app) => app.register("hold", () => latch.promise));
    const client = await h.client();
    const error = await assertRejects(
      client.call("hold", [], {}, { timeoutMs: 50 }),
      CallTimeoutError,
      "within 50 ms",
    );
    assertEquals(error.timeoutMs, 50);
    const controller = new AbortController();
    const aborted = client.call("hold", [], {}, { signal: controller.signal });
    controller.abort(new Error("user gave up"));
    const abortError = await assertRejects(aborted, CallTimeoutError, "aborted");
    assertEquals((abortError.cause as Error).message, "user gave up");
    assertEquals(client.pendingCalls, 0);
  });

  test("workerTimeoutMs ends a call with WorkerTimeoutError and fires the function's signal", async (h) => {
    const aborted = deferred<unknown>();
    await h.server((app) => {
      app.register("sleepy", () => {
        const { signal } = callContext();
        signal.addEventListener("abort", () => aborted.resolve(signal.reason), { once: true });
        return new Promise(() => {});
      });
      app.register(summ);
    }, { workerTimeoutMs: 100 });
    const client = await h.client();
    await assertRejects(client.call("sleepy"), WorkerTimeoutError, "workerTimeoutMs (100 ms)");
    assert((await aborted.promise) instanceof WorkerTimeoutError);
    assertEquals(await client.call("summ", [1, 1]), 2.5, "the server keeps serving");
  });

  test("300 parallel calls from one client all get their own result", async (h) => {
    await h.server((app) =>
      app.register("double", async (n: number) => {
        await Promise.resolve();
        return n * 2;
      }), { maxWorkers: 16 });
    const client = await h.client();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => client.call("double", [i])),
    );
    assertEquals(results, Array.from({ length: 300 }, (_, i) => i * 2));
  });

  test("two servers on one queue share the work", async (h) => {
    const started = [deferred(), deferred()];
    let running = 0;
    const release = h.latch();
    const register = (app: AppServer) =>
      app.register("whoami", async () => {
        started[running++]?.resolve();
        await release.promise;
        return app.instanceName;
      });
    const first = await h.server(register, { maxWorkers: 1, instanceName: "first" });
    const second = await h.server(register, { maxWorkers: 1, instanceName: "second" });
    const client = await h.client();
    const calls = [client.call("whoami"), client.call("whoami")];
    // Each server runs one call at a time, so both calls run only if both servers took one.
    await Promise.all(started.map((s) => s.promise));
    release.resolve();
    const names = (await Promise.all(calls)).sort();
    assertEquals(names, [first.instanceName, second.instanceName].sort());
  });

  test("a message handed back by a stopping server is redelivered to another server", async (h) => {
    const startedOnFirst = deferred();
    const neverReleased = h.latch();
    const first = await h.server((app) =>
      app.register("work", () => {
        startedOnFirst.resolve();
        return neverReleased.promise.then(() => "first");
      }), { maxWorkers: 1 });
    const client = await h.client();
    const call = client.call("work", [], {}, { timeoutMs: 30_000 });
    await startedOnFirst.promise;
    let attempts: number[] = [];
    await h.server((app) =>
      app.register("work", () => {
        attempts = [...attempts, callContext().attempt];
        return "second";
      })
    );
    await first.stop({ graceMs: 0 });
    assertEquals(await call, "second");
    assertEquals(attempts, [2], "ran once more, as the second delivery");
  });

  test("a message delivered more than maxDeliveries times goes to the dead-letter queue", async (h) => {
    const startedOnFirst = deferred();
    const first = await h.server((app) =>
      app.register("work", () => {
        startedOnFirst.resolve();
        return new Promise(() => {});
      }), { maxWorkers: 1, maxDeliveries: 1 });
    const client = await h.client();
    const call = client.call("work", [], {}, { timeoutMs: 30_000 });
    await startedOnFirst.promise;
    let ranAgain = false;
    await h.server((app) =>
      app.register("work", () => {
        ranAgain = true;
      }), { maxDeliveries: 1 });
    // The call may fail while the first server is still stopping: listen before that.
    const rejected = assertRejects(call, ProtocolError, "set aside");
    await first.stop({ graceMs: 0 });
    await rejected;
    assertEquals(ranAgain, false);
    const broker = await h.broker();
    const dead = await broker.readDeadLetters(h.queue, 10);
    assertEquals(dead.length, 1);
    assert(dead[0]?.reason.includes("delivered 2 times"), dead[0]?.reason);
    assertEquals(JSON.parse(dead[0]?.body ?? "null").func_name, "work");
  });

  test("the raw queue takes plain JSON and stores a PRPC-shaped result", async (h) => {
    await h.server((app) => app.register(summ));
    const broker = await h.broker();
    const messageId = crypto.randomUUID();
    await broker.publish(
      h.queue,
      "raw",
      JSON.stringify({
        func_name: "summ",
        func_args: [1, 2],
        func_kwargs: { z: 1 },
        message_id: messageId,
      }),
    );
    const body = await waitFor(
      () => broker.readResult(h.queue, "raw", messageId),
      "the raw result",
    );
    const result = JSON.parse(body);
    assertEquals(result.message_id, messageId);
    assertEquals(result.func_name, "summ");
    assertEquals(result.func_args, [1, 2]);
    assertEquals(result.func_kwargs, { z: 1 });
    assertEquals(result.result, 4);
    assertEquals(result.exception_info, null);
    const isoWithOffset = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$/;
    assert(isoWithOffset.test(result.date_create_message), result.date_create_message);
    assert(isoWithOffset.test(result.date_done_message), result.date_done_message);

    const failingId = crypto.randomUUID();
    await broker.publish(
      h.queue,
      "raw",
      JSON.stringify({ func_name: "nope", func_args: [], func_kwargs: {}, message_id: failingId }),
    );
    const failed = JSON.parse(
      await waitFor(() => broker.readResult(h.queue, "raw", failingId), "the raw error result"),
    );
    assertEquals(failed.result, null);
    assert(failed.exception_info.startsWith("UnknownFunctionError: "), failed.exception_info);
  });

  test("bad raw messages are answered or set aside, never lost, and the server keeps serving", async (h) => {
    await h.server((app) => app.register(summ));
    const broker = await h.broker();
    const send = (body: string) => broker.publish(h.queue, "raw", body);
    const resultOf = async (id: string) =>
      JSON.parse(await waitFor(() => broker.readResult(h.queue, "raw", id), `result ${id}`));

    // Without a readable message_id there is nobody to answer: dead-letter queue.
    await send("this is not json");
    await send("[1, 2, 3]");
    await send(JSON.stringify({ func_name: "summ", func_args: [1, 2], message_id: "not-a-uuid" }));
    await send(JSON.stringify({ func_name: "summ", func_args: [1, 2] }));
    const dead = await waitFor(async () => {
      const entries = await broker.readDeadLetters(h.queue, 100);
      return entries.length >= 4 && entries;
    }, "four dead letters");
    // Brokers with several partitions need not keep the order: match entries by body.
    const reasonOf = (body: string) => dead.find((entry) => entry.body === body)?.reason ?? "";
    const expectations: [string, string][] = [
      ["this is not json", "not JSON"],
      ["[1, 2, 3]", "JSON object"],
      [
        JSON.stringify({ func_name: "summ", func_args: [1, 2], message_id: "not-a-uuid" }),
        "message_id must be a UUID",
      ],
      [JSON.stringify({ func_name: "summ", func_args: [1, 2] }), "message_id is missing"],
    ];
    for (const [body, reason] of expectations) {
      assert(reasonOf(body).includes(reason), `${body}: ${reasonOf(body)}`);
    }

    // With a readable message_id the caller gets an error result.
    const cases: [Record<string, unknown>, string][] = [
      [{ func_args: [1] }, "ProtocolError: field func_name is missing"],
      [{ func_name: 42 }, "ProtocolError: field func_name must be a non-empty string"],
      [{ func_name: "summ", func_args: "1, 2" }, "ProtocolError: field func_args must be an array"],
      [
        { func_name: "summ", func_args: [1, 2], func_kwargs: [3] },
        "ProtocolError: field func_kwargs must be an object",
      ],
      [
        { func_name: "summ", func_args: [1, 2], func_kwargs: JSON.parse('{"__proto__": 1}') },
        'ArgumentError: summ() keyword argument "__proto__" is not allowed',
      ],
      [
        { func_name: "summ", func_args: [1, 2], func_kwargs: { constructor: 1 } },
        'ArgumentError: summ() keyword argument "constructor" is not allowed',
      ],
      [
        { func_name: "summ", func_args: [1, 2], func_kwargs: { w: 1 } },
        'ArgumentError: summ() got an unexpected keyword argument "w"',
      ],
      [
        { func_name: "summ", func_args: [1, 2, 3, 4] },
        "ArgumentError: summ() takes at most 3 positional arguments but 4 were given",
      ],
      [
        { func_name: "summ", func_args: [1] },
        'ArgumentError: summ() missing required argument "b"',
      ],
      [
        { func_name: "summ", func_args: [1, 2], func_kwargs: { a: 1 } },
        'ArgumentError: summ() got multiple values for argument "a"',
      ],
      [{ func_name: "missing", func_args: [] }, "UnknownFunctionError"],
    ];
    const ids = cases.map(() => crypto.randomUUID());
    for (const [i, [fields]] of cases.entries()) {
      await send(JSON.stringify({ ...fields, message_id: ids[i] }));
    }
    for (const [i, [, expected]] of cases.entries()) {
      const result = await resultOf(ids[i] ?? "");
      assertEquals(result.result, null);
      assert(
        typeof result.exception_info === "string" && result.exception_info.startsWith(expected),
        `case ${i}: expected ${expected}, got ${result.exception_info}`,
      );
    }
    // Upper-case ids and PRPC's {"hex": ...} form are read as the canonical id.
    const upper = crypto.randomUUID();
    await send(
      JSON.stringify({ func_name: "summ", func_args: [1, 2], message_id: upper.toUpperCase() }),
    );
    assertEquals((await resultOf(upper)).result, 3.5);
    const hexId = crypto.randomUUID();
    await send(
      JSON.stringify({
        func_name: "summ",
        func_args: [2, 2],
        message_id: { hex: hexId.replaceAll("-", "") },
      }),
    );
    assertEquals((await resultOf(hexId)).result, 4.5);

    const client = await h.client();
    assertEquals(await client.call("summ", [1, 1]), 2.5, "the server keeps serving");
    assertEquals(
      (await broker.readDeadLetters(h.queue, 100)).length,
      4,
      "nothing else was set aside",
    );
    assertEquals(h.logger.at("error"), [], "no internal errors");
  });

  test("unknown functions and bad arguments are rejected with their own error classes", async (h) => {
    await h.server((app) => app.register(summ));
    const client = await h.client();
    await assertRejects(client.call("nope"), UnknownFunctionError, '"nope"');
    await assertRejects(client.call("summ", [1, 2], { q: 1 }), ArgumentError, "unexpected keyword");
    await assertRejects(client.call("summ", [1]), ArgumentError, "missing required argument");
    await assertRejects(
      client.call("summ", [1, 2], JSON.parse('{"__proto__": {"polluted": true}}')),
      ArgumentError,
      "__proto__",
    );
    assertEquals(({} as Record<string, unknown>).polluted, undefined);
  });

  test("values without a JSON form fail with SerializationError on either side", async (h) => {
    let ran = 0;
    await h.server((app) => {
      app.register("echo", (value: unknown) => {
        ran++;
        return value;
      });
      app.register("big", () => 10n);
      app.register("nan", () => 0 / 0);
    });
    const client = await h.client();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await assertRejects(client.call("echo", [() => 1]), SerializationError, "args[0]");
    await assertRejects(client.call("echo", [cyclic]), SerializationError, "cycle");
    await assertRejects(client.call("echo", [1n]), SerializationError, "bigint");
    await assertRejects(
      client.call("echo", [], { value: new Map() }),
      SerializationError,
      "kwargs.value",
    );
    assertEquals(ran, 0, "nothing was sent");
    await assertRejects(client.call("big"), SerializationError, "bigint");
    await assertRejects(client.call("nan"), SerializationError, "NaN");
  });

  test("oversize requests and results fail with PayloadTooLargeError", async (h) => {
    const limit = 64 * 1024;
    await h.server((app) => app.register("blob", (size: number) => "x".repeat(size)), {
      maxMessageBytes: limit,
    });
    const client = await h.client({ maxMessageBytes: limit });
    const error = await assertRejects(
      client.call("blob", ["y".repeat(limit)]),
      PayloadTooLargeError,
      "over the limit",
    );
    assertEquals(error.limit, limit);
    await assertRejects(client.call("blob", [limit * 2]), PayloadTooLargeError, "returned");
    assertEquals((await client.call<string>("blob", [1000])).length, 1000);

    // A foreign client that ignores the limit gets an error result, not silence.
    const broker = await h.broker();
    const messageId = crypto.randomUUID();
    await broker.publish(
      h.queue,
      "raw",
      JSON.stringify({ func_name: "blob", func_args: ["z".repeat(limit)], message_id: messageId }),
    );
    const result = JSON.parse(
      await waitFor(() => broker.readResult(h.queue, "raw", messageId), "the oversize result"),
    );
    assert(
      result.exception_info.startsWith("PayloadTooLargeError: request of"),
      result.exception_info,
    );
  });

  test("an error too large to send is shortened, not lost", async (h) => {
    const limit = 16 * 1024;
    await h.server((app) =>
      app.register("shout", () => {
        throw new Error("!".repeat(limit * 2));
      }), { maxMessageBytes: limit });
    const client = await h.client();
    const error = await assertRejects(client.call("shout"), RemoteError, "shortened to fit");
    assert(error.remoteMessage.length < 2000, `length ${error.remoteMessage.length}`);
  });

  test("a request whose deadline passed while queued is not run", async (h) => {
    let ran = false;
    await h.server((app) =>
      app.register("work", () => {
        ran = true;
      })
    );
    const broker = await h.broker();
    const inboxReplies: string[] = [];
    const got = deferred();
    const inbox = await broker.openInbox((body) => {
      inboxReplies.push(body);
      got.resolve();
    });
    const messageId = crypto.randomUUID();
    await broker.publish(
      h.queue,
      "native",
      JSON.stringify({
        func_name: "work",
        func_args: [],
        func_kwargs: {},
        message_id: messageId,
        reply_to: inbox.address,
        deadline_ms: Date.now() - 1,
      }),
    );
    await got.promise;
    await inbox.close();
    const result = JSON.parse(inboxReplies[0] ?? "{}");
    assert(result.exception_info.startsWith("CallTimeoutError"), result.exception_info);
    assertEquals(ran, false);
  });

  test("callContext() tells the function its message id and attempt", async (h) => {
    await h.server((app) =>
      app.register("whoami", () => {
        const context = callContext();
        return { id: context.messageId, attempt: context.attempt, name: context.funcName };
      })
    );
    const client = await h.client();
    const seen = await client.call<{ id: string; attempt: number; name: string }>("whoami");
    assert(/^[0-9a-f-]{36}$/.test(seen.id));
    assertEquals(seen.attempt, 1);
    assertEquals(seen.name, "whoami");
  });

  test("closing a client rejects its waiting calls with BrokerError", async (h) => {
    const latch = h.latch();
    const started = deferred();
    await h.server((app) =>
      app.register("hold", () => {
        started.resolve();
        return latch.promise;
      })
    );
    const client = await h.client();
    const call = client.call("hold");
    await started.promise;
    await client.close();
    await assertRejects(call, BrokerError, "closed");
    await assertRejects(client.call("hold"), BrokerError, "closed client");
  });

  test("stop() lets running calls finish within the grace period", async (h) => {
    const release = h.latch();
    const started = deferred();
    const app = await h.server((app) =>
      app.register("hold", async () => {
        started.resolve();
        await release.promise;
        return "finished";
      })
    );
    const client = await h.client();
    const call = client.call("hold");
    await started.promise;
    const stopped = app.stop({ graceMs: 30_000 });
    assertEquals(app.serving, false);
    release.resolve();
    assertEquals(await call, "finished");
    await stopped;
  });

  workerConformance(test);
  limitsConformance(test);
  fuzzConformance(test);
}
