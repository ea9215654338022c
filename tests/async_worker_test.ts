/** The `async` worker on its own: values, thenables and the time limit. */
import { runAsync } from "../workers/async.ts";
import { WorkerTimeoutError } from "../protocol/errors.ts";
import { callContext } from "../protocol/call_context.ts";
import { assertEquals, assertRejects } from "./support/assert.ts";

function task(fn: (...args: unknown[]) => unknown, timeoutMs: number | null = 50) {
  return {
    fn,
    args: [2, 3],
    funcName: "f",
    messageId: "00000000-0000-4000-8000-000000000000",
    attempt: 1,
    deadline: null,
    controller: new AbortController(),
    timeoutMs,
  };
}

Deno.test("runAsync returns what a plain function returns, with its call context", async () => {
  const seen: string[] = [];
  const value = await runAsync(task((a, b) => {
    seen.push(callContext().funcName);
    return (a as number) + (b as number);
  }));
  assertEquals(value, 5);
  assertEquals(seen, ["f"]);
});

Deno.test("runAsync waits for a thenable that is not a Promise", async () => {
  const thenable = { then: (resolve: (value: number) => void) => setTimeout(() => resolve(7), 5) };
  assertEquals(await runAsync(task(() => thenable)), 7);
});

Deno.test("runAsync rejects an async function over its time limit and aborts its signal", async () => {
  let signal: AbortSignal | undefined;
  const running = task(async () => {
    signal = callContext().signal;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }, 20);
  await assertRejects(() => runAsync(running), WorkerTimeoutError);
  assertEquals(signal?.aborted, true);
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the function end
});
