/**
 * The `thread` and `process` part of the conformance suite: functions in Web
 * Workers and subprocesses, called through the broker under test.
 */

import { RemoteError, SerializationError, WorkerCrashedError, WorkerTimeoutError } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { waitFor } from "./support/async.ts";
import type { ConformanceTest } from "./support/harness.ts";
import * as funcs from "./fixtures/worker_funcs.ts";
import { unloadable } from "./fixtures/worker_load_failure.ts";

const FUNCS = new URL("./fixtures/worker_funcs.ts", import.meta.url);
const LOAD_FAILURE = new URL("./fixtures/worker_load_failure.ts", import.meta.url);
const POOLED = ["thread", "process"] as const;

function overlap(a: { start: number; end: number }, b: { start: number; end: number }): boolean {
  return a.start < b.end && b.start < a.end;
}

function processGone(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return false;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return true;
    throw err;
  }
}

/**
 * Declares the worker tests.
 *
 * @param test Declares one test with a harness.
 */
export function workerConformance(test: ConformanceTest): void {
  for (const worker of POOLED) {
    test(`${worker} workers return results, bind kwargs and re-throw errors with stack, code and data`, async (h) => {
      await h.server((app) => {
        app.register(funcs.add, { worker, module: FUNCS });
        app.register("alias_of_fail", funcs.fail, { worker, module: FUNCS });
        app.register(funcs.whoAmI, { worker, module: FUNCS });
      });
      const client = await h.client();
      assertEquals(await client.call("add", [1, 2]), 3);
      assertEquals(await client.call("add", [1]), 11, "the default applies");
      assertEquals(await client.call("add", [], { b: 5, a: 2 }), 7);
      const error = await assertRejects(client.call("alias_of_fail", ["too far"]), RemoteError);
      assertEquals(error.remoteName, "RangeError");
      assertEquals(error.remoteMessage, "too far");
      assertEquals(error.code, "E_RANGE");
      assertEquals(error.data, { limit: 3 });
      assert(error.remoteStack?.includes("worker_funcs.ts"), `stack: ${error.remoteStack}`);
      const context = await client.call("whoAmI") as { attempt: number; hasDeadline: boolean };
      assertEquals([context.attempt, context.hasDeadline], [1, true], "callContext() works there");
    });

    test(`two CPU-bound ${worker} calls run in parallel`, async (h) => {
      await h.server((app) => app.register(funcs.spin, { worker, module: FUNCS }), {
        maxWorkers: 2,
      });
      const client = await h.client();
      // Start both workers first, so that start-up is not part of what is compared.
      await Promise.all([client.call("spin", [0]), client.call("spin", [0])]);
      const [a, b] = await Promise.all([
        client.call("spin", [700]) as Promise<{ start: number; end: number }>,
        client.call("spin", [700]) as Promise<{ start: number; end: number }>,
      ]);
      assert(overlap(a!, b!), `the calls ran one after the other: ${JSON.stringify([a, b])}`);
    });

    test(`${worker} workers refuse results without a JSON form, and survive a late uncaught error`, async (h) => {
      await h.server((app) => {
        app.register(funcs.returnsMap, { worker, module: FUNCS });
        app.register(funcs.returnsFunction, { worker, module: FUNCS });
        app.register(funcs.throwLater, { worker, module: FUNCS });
        app.register(funcs.add, { worker, module: FUNCS });
      }, { maxWorkers: 1 });
      const client = await h.client();
      await assertRejects(client.call("returnsMap"), SerializationError, "returnsMap()");
      await assertRejects(client.call("returnsFunction"), SerializationError, "returnsFunction()");
      assertEquals(await client.call("throwLater"), "returned");
      // The worker dies after answering: the pool notices and takes it out.
      await waitFor(
        () =>
          h.logger.at("warn").some((line) =>
            line.message === `a ${worker} worker ended between calls`
          ),
        "the pool to notice",
      );
      assertEquals(await client.call("add", [3, 4]), 7, "the next call gets a new worker");
    });

    test(`Deno.exit() in a ${worker} worker ends the call with WorkerCrashedError`, async (h) => {
      await h.server((app) => {
        app.register(funcs.exitWorker, { worker, module: FUNCS });
        app.register(funcs.add, { worker, module: FUNCS });
      }, { maxWorkers: 1 });
      const client = await h.client();
      await assertRejects(client.call("exitWorker", [3]), WorkerCrashedError, "3");
      assertEquals(await client.call("add", [2, 3]), 5);
    });
  }

  test("a thread worker over workerTimeoutMs is terminated: its function stops, the pool keeps serving", async (h) => {
    await h.server((app) => {
      app.register(funcs.spinYielding, { worker: "thread", module: FUNCS });
      app.register(funcs.add, { worker: "thread", module: FUNCS });
    }, { workerTimeoutMs: 1_500, maxWorkers: 1 });
    const client = await h.client();
    const channel = `beats-${crypto.randomUUID()}`;
    const beats = new BroadcastChannel(channel);
    let lastBeat = 0;
    beats.onmessage = () => lastBeat = Date.now();
    try {
      await assertRejects(
        client.call("spinYielding", [channel]),
        WorkerTimeoutError,
        "its thread worker was ended",
      );
      assert(lastBeat > 0, "the function ran");
      // A terminated worker beats no more; a live one beats every few milliseconds.
      await waitFor(() => Date.now() - lastBeat > 300, "the function to stop beating");
    } finally {
      beats.close();
    }
    assertEquals(await client.call("add", [2, 2]), 4, "a new worker takes the next call");
  });

  test("a process worker in an endless loop is killed at workerTimeoutMs; the pool keeps serving", async (h) => {
    await h.server((app) => {
      app.register(funcs.pid, { worker: "process", module: FUNCS });
      app.register(funcs.loopForever, { worker: "process", module: FUNCS });
      app.register(funcs.add, { worker: "process", module: FUNCS });
    }, { workerTimeoutMs: 1_500, maxWorkers: 1 });
    const client = await h.client();
    const pid = await client.call("pid") as number;
    await assertRejects(
      client.call("loopForever"),
      WorkerTimeoutError,
      "its process worker was ended",
    );
    await waitFor(() => processGone(pid), `subprocess ${pid} to be gone`);
    assertEquals(await client.call("add", [2, 2]), 4, "a new worker takes the next call");
  });

  test("a process worker that runs out of memory or fails to load its module gives WorkerCrashedError", async (h) => {
    const small = {
      worker: "process",
      module: FUNCS,
      v8Flags: ["--max-old-space-size=24"],
    } as const;
    await h.server((app) => {
      app.register(funcs.exhaustMemory, small);
      app.register("add_in_small_heap", funcs.add, small);
      app.register(unloadable, { worker: "process", module: LOAD_FAILURE });
      app.register(funcs.add, { worker: "process", module: FUNCS });
    });
    const client = await h.client();
    assertEquals(
      await client.call("add_in_small_heap", [1, 1]),
      2,
      "the small heap is enough to start",
    );
    await assertRejects(client.call("exhaustMemory"), WorkerCrashedError, "out of memory");
    await assertRejects(
      client.call("unloadable"),
      WorkerCrashedError,
      "this module refuses to load in a process worker",
    );
    assertEquals(await client.call("add", [4, 4]), 8, "the server keeps serving");
  });

  test("a process worker denied a permission surfaces the denial as RemoteError", async (h) => {
    await h.server((app) =>
      app.register(funcs.readFile, {
        worker: "process",
        module: FUNCS,
        permissions: { read: false },
      })
    );
    const client = await h.client();
    const error = await assertRejects(client.call("readFile", ["deno.json"]), RemoteError);
    assertEquals(error.remoteName, "NotCapable");
    assert(error.remoteMessage.includes("read access"), error.remoteMessage);
  });

  test("stop() ends every process worker: no subprocess is left", async (h) => {
    const app = await h.server((app) =>
      app.register(funcs.pid, { worker: "process", module: FUNCS })
    );
    const client = await h.client();
    const pids = await Promise.all([client.call("pid"), client.call("pid")]) as number[];
    assertEquals(new Set(pids).size, 2, "two calls at once ran in two subprocesses");
    assert(pids.every((pid) => !processGone(pid)));
    await app.stop();
    assert(pids.every(processGone), `left running: ${pids.filter((pid) => !processGone(pid))}`);
  });
}
