/**
 * Per-call overhead of `thread` and `process` workers against `async`: the
 * same trivial function, called one at a time through the memory broker, the
 * server and the client, in each worker type. Run with `deno task bench:workers`.
 */

import { AppServer, Client } from "../mod.ts";
import { add } from "./add.ts";

const url = `memory://bench-workers-${crypto.randomUUID()}`;
const app = new AppServer({
  url,
  queue: "bench_workers",
  handleSignals: false,
  logger: { debug() {}, info() {}, warn() {}, error: console.error },
});
const module = new URL("./add.ts", import.meta.url);
app.register("async_add", add)
  .register("thread_add", add, { worker: "thread", module })
  .register("process_add", add, { worker: "process", module });
await app.start();
const client = await Client.connect({ url, queue: "bench_workers" });
// Start the workers before measuring: start-up is paid once per worker. The
// server and client live until deno bench ends the process.
for (const type of ["async", "thread", "process"]) await client.call(`${type}_add`, [1, 2]);

const types = ["async", "thread", "process"];
for (const type of types) {
  Deno.bench({
    name: `${type}: 200 calls, one at a time`,
    group: "per-call overhead",
    baseline: type === "async",
    async fn(b) {
      b.start();
      for (let i = 0; i < 200; i++) await client.call(`${type}_add`, [i, 1]);
      b.end();
    },
  });
}
