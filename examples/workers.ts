/**
 * `thread` and `process` workers, with the permissions each needs, in one
 * process over the memory broker: `deno task example:workers`.
 *
 * A `thread` runs CPU-bound work in a pool of Web Workers; a `process` runs
 * code that must be isolated (it may crash or loop) in a Deno subprocess with
 * the permissions given here, never more than the server's own.
 */
import { AppServer, Client, consoleLogger, WorkerTimeoutError } from "@prpc/prpc";

export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/** Reads a file: the process may read this directory, and nothing else. */
export async function firstLine(path: string): Promise<string> {
  return (await Deno.readTextFile(path)).split("\n")[0] ?? "";
}

/** Never returns: the server ends the process at workerTimeoutMs. */
export function spin(): never {
  while (true) { /* a bug */ }
}

// Workers import this module (Deno.mainModule) and call its exports by name:
// keep start() and the calls behind import.meta.main.
if (import.meta.main) {
  const app = new AppServer({
    queue: "workers_example",
    maxWorkers: 4,
    workerTimeoutMs: 2_000,
    logger: consoleLogger("warn"), // only what goes wrong, not "serving", "stopped"
  });
  app.register(fib, { worker: "thread" });
  app.register(firstLine, {
    worker: "process",
    permissions: { read: [new URL(".", import.meta.url).pathname], net: false, env: false },
  });
  app.register(spin, { worker: "process" });
  await app.start();
  const client = await Client.connect({ queue: "workers_example" });
  try {
    console.log(await Promise.all([30, 31, 32].map((n) => client.call("fib", [n])))); // [ 832040, 1346269, 2178309 ]
    console.log(
      await client.call("firstLine", [new URL("./workers.ts", import.meta.url).pathname]),
    ); // /**
    try {
      await client.call("firstLine", ["/etc/hostname"]);
    } catch (error) {
      console.log((error as Error).name, "outside the allowed directory"); // RemoteError ...
    }
    try {
      await client.call("spin");
    } catch (error) {
      console.log(error instanceof WorkerTimeoutError); // true: the process was ended and replaced
    }
  } finally {
    await client.close();
    await app.stop();
  }
}
