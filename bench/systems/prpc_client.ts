/**
 * prpc's client side in the round-trip benchmark: `client.call("add", [a, b])`
 * over the broker `BENCH_BROKER`. See {@link ../participant.ts} for the contract.
 *
 * @module
 */

import { type BrokerKind, Client, consoleLogger } from "../../mod.ts";
import { brokerUrl, env, runClient } from "../participant.ts";

const broker = env("BENCH_BROKER") as BrokerKind;
const client = await Client.connect({
  broker,
  url: brokerUrl(broker),
  queue: env("BENCH_QUEUE"),
  logger: consoleLogger("warn"),
});
await runClient((a, b) => client.call("add", [a, b]) as Promise<number>, () => client.close());
