/**
 * prpc over the embedded memory broker: server and client share this one
 * process, since the memory broker does not leave it. The client side follows
 * the contract of {@link ../participant.ts}; there is no server program.
 *
 * @module
 */

import { AppServer, Client, consoleLogger } from "../../mod.ts";
import { add } from "../add.ts";
import { env, runClient } from "../participant.ts";

const url = `memory://${env("BENCH_QUEUE")}`;
const queue = env("BENCH_QUEUE");
const app = new AppServer({
  url,
  queue,
  maxWorkers: Number(env("BENCH_CONCURRENCY")),
  handleSignals: false,
  logger: consoleLogger("warn"),
});
app.register("add", add);
await app.start();
const client = await Client.connect({ url, queue, logger: consoleLogger("warn") });
await runClient((a, b) => client.call("add", [a, b]) as Promise<number>, async () => {
  await client.close();
  await app.stop();
});
