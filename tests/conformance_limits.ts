/**
 * The limits part of the conformance suite: values nested too deeply, values
 * whose encoding throws, and failures in the middle of handling a message. On
 * every broker, every delivery must end settled exactly once, and the server
 * must keep every worker slot.
 */

import { ProtocolError, RemoteError, SerializationError } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { gateFunction, waitFor } from "./support/async.ts";
import type { ConformanceTest, Harness } from "./support/harness.ts";
import { RecordingLogger } from "./support/logger.ts";
import * as funcs from "./fixtures/worker_funcs.ts";

const FUNCS = new URL("./fixtures/worker_funcs.ts", import.meta.url);

/** JSON text of an array nested `depth` levels deep. */
function nestedText(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

/**
 * Proves that a server with `maxWorkers` slots still has all of them: that
 * many calls to `gate` must be running at once before any returns.
 */
async function assertFullCapacity(h: Harness, maxWorkers: number): Promise<void> {
  const client = await h.client({ timeoutMs: 10_000 });
  const calls = Array.from({ length: maxWorkers }, () => client.call("gate", [maxWorkers]));
  assertEquals(await Promise.all(calls), Array(maxWorkers).fill(maxWorkers));
}

/** A logger that throws on `warn`, as a user's logger might. */
class ThrowingLogger extends RecordingLogger {
  override warn(message: string, details?: Record<string, unknown>): void {
    super.warn(message, details);
    throw new Error("the logger broke");
  }
}

/**
 * Declares the tests of limits and failures.
 *
 * @param test Declares one test with a harness.
 */
export function limitsConformance(test: ConformanceTest): void {
  test("requests nested deeper than maxDepth are refused cheaply and give their slot back", async (h) => {
    await h.server((app) => {
      app.register("echo", (value: unknown) => value);
      app.register("gate", gateFunction());
    }, { maxWorkers: 2 });
    const broker = await h.broker();
    const deep = nestedText(7_000);
    const ids = Array.from({ length: 6 }, () => crypto.randomUUID());
    // Three times the slots, each of which used to strand its slot for good.
    for (const [i, id] of ids.entries()) {
      const args = i % 2 === 0 ? `[${deep}]` : "[]";
      const kwargs = i % 2 === 0 ? "{}" : `{"value":${deep}}`;
      await broker.publish(
        h.queue,
        "raw",
        `{"func_name":"echo","message_id":"${id}","func_args":${args},"func_kwargs":${kwargs}}`,
      );
    }
    await broker.publish(h.queue, "raw", `{"func_name":"echo","func_args":[${deep}]}`);
    await broker.publish(h.queue, "native", `{"func_name":"echo","func_args":[${deep}]}`);
    for (const id of ids) {
      const body = await waitFor(() => broker.readResult(h.queue, "raw", id), `result ${id}`);
      const result = JSON.parse(body);
      assertEquals(result.result, null);
      assertEquals(
        result.exception_info,
        "ProtocolError: message nests arrays and objects deeper than 1000 levels (maxDepth)",
      );
      // PRPC's shape keeps the fields, but the deep arguments are not echoed.
      assertEquals([result.func_args, result.func_kwargs], [[], {}]);
    }
    const dead = await waitFor(async () => {
      const entries = await broker.readDeadLetters(h.queue, 10);
      return entries.length >= 2 && entries;
    }, "two dead letters");
    assertEquals(dead.length, 2);
    for (const entry of dead) assert(entry.reason.includes("deeper than 1000 levels"));

    await assertFullCapacity(h, 2);
    const client = await h.client();
    assertEquals(funcs.depthOf(await client.call("echo", [funcs.nested(1_000)])), 1_000);
    await assertRejects(
      client.call("echo", [funcs.nested(1_001)]),
      SerializationError,
      "nests deeper than 1000 levels",
    );
    assertEquals(h.logger.at("error"), []);
  });

  test("results nested deeper than maxDepth, or whose encoding throws, fail with SerializationError", async (h) => {
    await h.server((app) => {
      app.register("deep", funcs.nested);
      app.register(funcs.returnsThrowingGetter);
      app.register(funcs.throwsOddError);
      app.register("gate", gateFunction());
    }, { maxWorkers: 2, maxDepth: 50 });
    const client = await h.client({ maxDepth: 50 });
    assertEquals(funcs.depthOf(await client.call("deep", [50])), 50);
    for (const depth of [51, 7_000, 100_000]) {
      await assertRejects(
        client.call("deep", [depth]),
        SerializationError,
        "deep() returned a value that cannot be sent: Cannot encode the result",
      );
    }
    await assertRejects(
      client.call("returnsThrowingGetter"),
      SerializationError,
      "returned a value that cannot be sent: Error: the getter broke",
    );
    const odd = await assertRejects(client.call("throwsOddError"), RemoteError);
    assertEquals(odd.remoteName, "Error");
    await assertFullCapacity(h, 2);
    assertEquals(h.logger.at("error"), []);
  });

  test("a client refuses a result nested deeper than its maxDepth, failing only that call", async (h) => {
    await h.server((app) => app.register("deep", funcs.nested));
    const client = await h.client({ maxDepth: 20 });
    await assertRejects(
      client.call("deep", [21]),
      ProtocolError,
      "the result nests arrays and objects deeper than 20 levels",
    );
    assertEquals(funcs.depthOf(await client.call("deep", [20])), 20);
  });

  test("a raw client takes a result that echoes an argument maxDepth deep", async (h) => {
    await h.server((app) => app.register("depth", funcs.depthOf), { maxDepth: 20 });
    const client = await h.client({ maxDepth: 20, protocol: "raw" });
    // The raw result repeats the argument under func_args: two levels below the result object.
    assertEquals(await client.call("depth", [funcs.nested(20)]), 20);
    assertEquals(await client.call("depth", [], { value: funcs.nested(20) }), 20);
  });

  for (const worker of ["thread", "process"] as const) {
    test(`${worker} workers take arguments maxDepth deep and refuse deeper results with SerializationError`, async (h) => {
      await h.server((app) => {
        app.register(funcs.nested, { worker, module: FUNCS });
        app.register(funcs.depthOf, { worker, module: FUNCS });
        app.register(funcs.returnsThrowingGetter, { worker, module: FUNCS });
        app.register(funcs.throwsOddError, { worker, module: FUNCS });
      }, { maxWorkers: 1, maxDepth: 2_000 });
      const client = await h.client({ maxDepth: 2_000 });
      assertEquals(await client.call("depthOf", [funcs.nested(2_000)]), 2_000);
      assertEquals(funcs.depthOf(await client.call("nested", [2_000])), 2_000);
      for (const depth of [2_001, 100_000]) {
        await assertRejects(
          client.call("nested", [depth]),
          SerializationError,
          "nested() returned a value that cannot be sent",
        );
      }
      await assertRejects(
        client.call("returnsThrowingGetter"),
        SerializationError,
        "the getter broke",
      );
      const odd = await assertRejects(client.call("throwsOddError"), RemoteError);
      assertEquals(odd.remoteName, "Error");
      assertEquals(await client.call("depthOf", [[[1]]]), 2, "the worker still serves");
    });
  }

  test("a failure in the middle of handling still settles every message exactly once", async (h) => {
    // The server's logger throws on warn, as a user's might: refusing a malformed
    // message then throws before the message is settled.
    const logger = new ThrowingLogger();
    await h.server((app) => {
      app.register("gate", gateFunction());
    }, { maxWorkers: 2, logger });
    const broker = await h.broker();
    const ids = Array.from({ length: 4 }, () => crypto.randomUUID());
    for (const id of ids) {
      await broker.publish(h.queue, "raw", JSON.stringify({ func_name: 42, message_id: id }));
    }
    const withoutIds = ["not json", "[1]", '{"func_name":"gate"}'];
    for (const body of withoutIds) await broker.publish(h.queue, "raw", body);
    for (const id of ids) {
      const body = await waitFor(() => broker.readResult(h.queue, "raw", id), `result ${id}`);
      assert(
        JSON.parse(body).exception_info.startsWith(
          "ProtocolError: the server could not handle this message: Error: the logger broke",
        ),
        body,
      );
    }
    const dead = await waitFor(async () => {
      const entries = await broker.readDeadLetters(h.queue, 10);
      return entries.length >= withoutIds.length && entries;
    }, "dead letters");
    assertEquals(dead.map((entry) => entry.body).sort(), [...withoutIds].sort());
    for (const entry of dead) assert(entry.reason.includes("the logger broke"), entry.reason);
    await assertFullCapacity(h, 2);
    // Each failure is reported once, truthfully, as what it is: a server-side failure.
    const errors = logger.at("error").map((line) => line.message);
    assertEquals(errors.length, ids.length + withoutIds.length);
    for (const message of errors) assert(message.startsWith("a message could not be handled"));
  });
}
