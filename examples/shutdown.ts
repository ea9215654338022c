/**
 * Graceful shutdown, over the memory broker: `deno task example:shutdown`.
 * `stop()` takes no new calls, waits up to `graceMs` for the running ones,
 * then hands the others back to the broker, where another server takes them:
 * nothing is lost. (A server started with `handleSignals` on, the default,
 * does this on Ctrl+C or SIGTERM.)
 */
import { AppServer, Client, consoleLogger } from "@prpc/prpc";

function server(name: string): AppServer {
  const logger = consoleLogger("warn");
  return new AppServer({ queue: "shutdown_example", handleSignals: false, logger }).register(
    "work",
    (ms: number) => new Promise((resolve) => setTimeout(resolve, ms, `${ms} ms on ${name}`)),
  );
}

const first = server("first");
await first.start();
const client = await Client.connect({ queue: "shutdown_example" });
const quick = client.call("work", [200]);
const long = client.call("work", [3_000]);
await new Promise((resolve) => setTimeout(resolve, 50)); // both are running on "first"

await first.stop({ graceMs: 1_000 }); // the quick call ends in time; the long one is handed back
console.log(await quick); // 200 ms on first

const second = server("second");
await second.start(); // takes the handed-back call and runs it again
console.log(await long); // 3000 ms on second

await client.close();
await second.stop();
