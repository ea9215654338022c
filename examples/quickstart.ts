/**
 * Quickstart: a server and a client in one process over the embedded memory
 * broker. Run it with `deno task demo`.
 *
 * It registers a few functions in the three worker types (`async` on the
 * event loop, `thread` in a pool of Web Workers, `process` in a Deno
 * subprocess), calls them with positional and keyword arguments, through the
 * typed proxy, and shows a remote error and a timeout.
 *
 * The functions are exported and the server starts behind `import.meta.main`:
 * `thread` and `process` workers import this module and call its exports.
 */

import {
  AppServer,
  callContext,
  CallTimeoutError,
  Client,
  RemoteError,
  UnknownFunctionError,
} from "../mod.ts";

// Plain functions: they take and return JSON values.
export function summ(a: number, b: number, z = 0.5): number {
  return a + b + z;
}

export function greet(name: string, punctuation = "!"): string {
  return `Hello, ${name}${punctuation}`;
}

export async function slow(ms: number): Promise<string> {
  // The signal fires when the server's workerTimeoutMs elapses.
  const { signal } = callContext();
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  });
  return `slept ${ms} ms`;
}

export function divide(a: number, b: number): number {
  if (b === 0) throw new RangeError("division by zero");
  return a / b;
}

// CPU-bound: a Web Worker keeps the server's event loop free while it runs.
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

// Runs in a subprocess of its own, which can be killed if it runs away.
export function whereAmI(serverPid: number): string {
  return Deno.pid === serverPid ? "the server's process" : "a subprocess of its own";
}

if (import.meta.main) await main();

async function main(): Promise<void> {
  const app = new AppServer({ queue: "quickstart", maxWorkers: 4, workerTimeoutMs: 5_000 });
  app.register(summ)
    .register(greet, { worker: "async" })
    .register("hello_world", () => "hello_world")
    .register(slow)
    .register(divide)
    .register(fib, { worker: "thread" })
    .register(whereAmI, { worker: "process" });

  await app.start();
  const client = await Client.connect({ queue: "quickstart" });

  try {
    console.log("summ(1, 2)            =", await client.call("summ", [1, 2]));
    console.log("summ(1, 2, {z: 3})    =", await client.call("summ", [1, 2], { z: 3 }));
    console.log("hello_world()         =", await client.call("hello_world"));
    console.log("fib(25) in a thread   =", await client.call("fib", [25]));
    console.log("whereAmI() process    =", await client.call("whereAmI", [Deno.pid]));

    // A typed view: api.greet(...) is Promise<string>.
    const api = client.proxy<{ greet: typeof greet; summ: typeof summ }>();
    console.log('api.greet("prpc")     =', await api.greet("prpc"));

    // 300 calls in flight at once over one client.
    const sums = await Promise.all(Array.from({ length: 300 }, (_, i) => api.summ(i, i, 0)));
    console.log("300 parallel calls    =", sums.length, "results, last", sums.at(-1));

    try {
      await client.call("divide", [1, 0]);
    } catch (err) {
      if (!(err instanceof RemoteError)) throw err;
      console.log("remote error          =", `${err.remoteName}: ${err.remoteMessage}`);
    }

    try {
      await client.call("slow", [2_000], {}, { timeoutMs: 200 });
    } catch (err) {
      if (!(err instanceof CallTimeoutError)) throw err;
      console.log("timeout               =", err.message);
    }

    try {
      await client.call("no_such_function");
    } catch (err) {
      if (!(err instanceof UnknownFunctionError)) throw err;
      console.log("unknown function      =", err.message);
    }
  } finally {
    await client.close();
    await app.stop({ graceMs: 0 });
  }
}
