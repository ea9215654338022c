/**
 * Moleculer client of the round-trip benchmark: a broker on the Redis (or
 * Kafka, see ./moleculer_transporter.mjs) transporter, namespace BENCH_QUEUE, calling `bench.add` on the server's
 * broker. See ./participant.mjs.
 *
 * @module
 */

import { ServiceBroker } from "moleculer";
import { transporter } from "./moleculer_transporter.mjs";
import { env, runClient } from "./participant.mjs";

const broker = new ServiceBroker({
  nodeID: `bench-client-${process.pid}`,
  namespace: env("BENCH_QUEUE"),
  transporter: transporter(),
  serializer: "JSON",
  logLevel: "warn",
  requestTimeout: 0, // no timeout (Moleculer's default, stated)
  skipProcessEventRegistration: true,
});
await broker.start();
await broker.waitForServices("bench");

/** One round trip: the action `bench.add` on the server's node. */
const add = (a, b) => broker.call("bench.add", { a, b });

await runClient(add, () => broker.stop());
