/**
 * Round trips through the embedded memory broker, server and client in one
 * process: the cost of prpc itself (envelope, validation, binding, dispatch)
 * with no network in between. Not the side-by-side benchmark with peers.
 *
 * Run: deno run -A bench/memory_roundtrip.ts [calls per level]
 */
import { AppServer, Client, consoleLogger } from "../mod.ts";

const calls = Number(Deno.args[0] ?? 50_000);
const url = `memory://bench-${crypto.randomUUID()}`;
const app = new AppServer({
  url,
  queue: "bench",
  maxWorkers: 256,
  handleSignals: false,
  logger: consoleLogger("warn"),
});
app.register("add", (a: number, b: number) => a + b);
await app.start();
const client = await Client.connect({ url, queue: "bench" });

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

console.log("| in flight | calls/s | p50 ms | p99 ms |");
console.log("| --------: | ------: | -----: | -----: |");
for (const inFlight of [1, 64, 256]) {
  let started = 0;
  const latencies: number[] = [];
  const begin = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started++ < calls) {
        const t = performance.now();
        await client.call("add", [1, 2]);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - begin) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(
    `| ${inFlight} | ${Math.round(calls / seconds)} | ${percentile(latencies, 0.5).toFixed(3)} | ${
      percentile(latencies, 0.99).toFixed(3)
    } |`,
  );
}
await client.close();
await app.stop();
