/**
 * The shared buffer between the server and a `thread` worker, its spin
 * policy and the JSON check it relies on, without a server: both ends in one
 * thread where the steps can be taken one at a time, and across a real Web
 * Worker where one end sleeps.
 */

import type { CallOutcome, CallRequest } from "../workers/messages.ts";
import { jsonText } from "../workers/json_text.ts";
import { SpinPolicy } from "../workers/spin_policy.ts";
import { ServerEnd, WorkerEnd } from "../workers/thread_buffer.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { deferred } from "./support/async.ts";

const DATA_BYTES = 1024;

function call(id: number, args: unknown[] = [id]): CallRequest {
  return {
    id,
    exportName: "f",
    funcName: "f",
    args,
    messageId: `m${id}`,
    attempt: 1,
    deadline: null,
  };
}

function ok(id: number, value: unknown): CallOutcome {
  return { id, ok: true, value };
}

/** Both ends of one buffer in this thread, and the outcomes the worker posted. */
function ends(hotMs = 60_000) {
  const spin = SpinPolicy.forProcess();
  const server = new ServerEnd(spin, DATA_BYTES);
  const worker = new WorkerEnd(server.buffer, spin.buffer, hotMs);
  const posted: CallOutcome[] = [];
  const post = (outcome: CallOutcome) => posted.push(outcome);
  return { server, worker, posted, post };
}

/** Runs the first call, which always goes by message, so that the worker listens. */
function warm({ server, worker, posted, post }: ReturnType<typeof ends>): void {
  assertEquals(server.offer(call(1)), false, "a new worker is in its event loop");
  worker.tookPosted();
  worker.answer(ok(1, "first"), post);
  assertEquals(posted, [ok(1, "first")], "the server waits for a posted outcome");
  posted.length = 0;
}

Deno.test("a call and its outcome cross through the buffer once the worker listens", () => {
  const both = ends();
  warm(both);
  const { server, worker, posted, post } = both;
  for (let id = 2; id < 5; id++) {
    assert(server.offer(call(id)), "the call is in the buffer");
    assertEquals(worker.listen(), call(id));
    worker.answer(ok(id, { sum: id * 2, list: ["a", null, true] }), post);
    assertEquals(server.awaitOutcome(0.1), ok(id, { sum: id * 2, list: ["a", null, true] }));
  }
  assertEquals(posted, [], "nothing was posted");
});

Deno.test("a call too large for the buffer is posted, and a listening worker goes back for it", () => {
  const both = ends();
  warm(both);
  const { server, worker, posted, post } = both;
  const big = call(2, ["x".repeat(DATA_BYTES)]);
  assertEquals(server.offer(big), false, "the call must be posted");
  assertEquals(worker.listen(), undefined, "the worker leaves the buffer for its event loop");
  worker.tookPosted();
  worker.answer(ok(2, DATA_BYTES), post);
  assertEquals(posted, [ok(2, DATA_BYTES)], "the outcome of a posted call is posted");
  // The next call fits again.
  assert(server.offer(call(3)));
  assertEquals(worker.listen(), call(3));
});

Deno.test("an outcome too large for the buffer, or without exact JSON text, is posted", () => {
  const both = ends();
  warm(both);
  const { server, worker, posted, post } = both;
  const outcomes = [ok(2, "y".repeat(DATA_BYTES)), ok(3, new Map([["a", 1]])), ok(4, NaN)];
  for (const outcome of outcomes) {
    assert(server.offer(call(outcome.id)));
    assertEquals(worker.listen(), call(outcome.id));
    worker.answer(outcome, post);
    assertEquals(server.awaitOutcome(0.1), undefined, "the outcome comes by message");
  }
  assertEquals(posted, outcomes);
});

Deno.test("arguments that JSON would change are posted: undefined stays undefined", () => {
  const both = ends();
  warm(both);
  const { server, worker } = both;
  assertEquals(server.offer(call(2, [undefined, 5])), false);
  assertEquals(worker.listen(), undefined);
});

Deno.test("an outcome the server stopped waiting for in the buffer is posted", () => {
  const both = ends();
  warm(both);
  const { server, worker, posted, post } = both;
  assert(server.offer(call(2)));
  assertEquals(server.awaitOutcome(0.01), undefined, "nothing yet: the server stops spinning");
  assertEquals(worker.listen(), call(2));
  worker.answer(ok(2, "late"), post);
  assertEquals(posted, [ok(2, "late")]);
});

Deno.test("a worker past its hot time goes back to its event loop: the next call is posted", () => {
  const both = ends(0);
  warm(both);
  const { server, worker } = both;
  assertEquals(worker.listen(), undefined, "no waiting on the buffer");
  assertEquals(server.offer(call(2)), false);
});

Deno.test("close() makes a worker stop listening at once", () => {
  const both = ends();
  warm(both);
  both.server.close();
  assertEquals(both.worker.listen(), undefined);
  assertEquals(both.server.offer(call(2)), false);
});

Deno.test("close() wakes a worker that sleeps on the buffer", async () => {
  const spin = SpinPolicy.forProcess();
  const server = new ServerEnd(spin, DATA_BYTES);
  const worker = new Worker(new URL("./fixtures/buffer_listener.ts", import.meta.url), {
    type: "module",
  });
  const report = deferred<{ next: unknown; waitedMs: number }>();
  worker.onmessage = (event) => {
    if ("waitedMs" in event.data) report.resolve(event.data);
  };
  try {
    // 20 s on the buffer unless close() wakes it (Worker.terminate() alone would not).
    worker.postMessage({ buffer: server.buffer, spin: spin.buffer, hotMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.close();
    const { next, waitedMs } = await report.promise;
    assertEquals(next, null);
    assert(waitedMs < 10_000, `it waited ${waitedMs} ms`);
  } finally {
    worker.terminate();
  }
});

Deno.test("the spin policy spins for one call in flight, not for two", () => {
  const spin = SpinPolicy.forProcess();
  spin.callStarted();
  try {
    assert(spin.serverMaySpin());
    assert(spin.workerMaySpin());
    spin.callStarted();
    assert(!spin.serverMaySpin());
    assert(!spin.workerMaySpin());
    spin.callEnded();
  } finally {
    spin.callEnded();
  }
});

Deno.test("the spin policy pauses spinning after several failed spins, then tries again", async () => {
  const spin = new SpinPolicy(new SharedArrayBuffer(8));
  spin.callStarted();
  assert(spin.serverMaySpin(), "spinning starts allowed");
  for (let i = 0; i < 31; i++) spin.spun(i % 8 !== 0);
  assert(spin.serverMaySpin(), "four failures in a run of 32 are allowed");
  for (let i = 0; i < 5; i++) spin.spun(false);
  assert(!spin.serverMaySpin(), "the server pauses");
  assert(!spin.workerMaySpin(), "and so do the workers");
  spin.callEnded();
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert(!spin.workerMaySpin(), "until the next call");
  spin.callStarted();
  assert(spin.serverMaySpin(), "which ends the pause");
  assert(spin.workerMaySpin());
  spin.callEnded();
});

Deno.test("jsonText gives text only for values that JSON carries as structured clone would", () => {
  const strict = { maxLength: 1000, loose: false };
  const loose = { maxLength: 1000, loose: true };
  const plain = { a: [1, "two", null, true, { b: [] }], c: "é\u{1F600}", [Symbol("s")]: 1 };
  assertEquals(jsonText(plain, strict), JSON.stringify(plain));
  assertEquals(jsonText(Object.assign(Object.create(null), { a: 1 }), strict), '{"a":1}');
  const unlike: unknown[] = [
    new Map(),
    new Set(),
    new Date(0),
    new Uint8Array(2),
    new (class Point {
      x = 1;
    })(),
    new Proxy({}, {}),
    [NaN],
    { a: Infinity },
    () => 1,
    { f() {} },
    Symbol("s"),
    1n,
    new Number(1),
    new Error("e"),
  ];
  unlike.forEach((value, i) => assertEquals(jsonText(value, loose), undefined, `value #${i}`));
  assertEquals(jsonText([undefined, -0], strict), undefined, "arguments must arrive exactly");
  assertEquals(jsonText({ a: undefined, b: -0 }, strict), undefined);
  assertEquals(jsonText([undefined, -0], loose), "[null,0]", "an outcome becomes JSON anyway");
  assertEquals(jsonText({ a: undefined, b: -0 }, loose), '{"b":0}');
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assertEquals(jsonText(cycle, loose), undefined);
  let deep: unknown = 1;
  for (let i = 0; i < 200; i++) deep = [deep];
  assertEquals(jsonText(deep, loose), undefined, "deep nesting is left to structured clone");
  assertEquals(jsonText("x".repeat(999), strict), undefined, "too long with its quotes");
  assertEquals(jsonText("x".repeat(998), strict), `"${"x".repeat(998)}"`);
  const throwing = {
    get boom(): never {
      throw new Error("getter");
    },
  };
  assertEquals(jsonText(throwing, loose), undefined, "structured clone meets the error itself");
});
