/**
 * Moleculer server of the round-trip benchmark: a broker on the Redis (or
 * Kafka, see ./moleculer_transporter.mjs) transporter, namespace BENCH_QUEUE, with a service `bench` whose action `add`
 * returns a + b. See ./participant.mjs.
 *
 * @module
 */

import { ServiceBroker } from "moleculer";
import { transporter } from "./moleculer_transporter.mjs";
import { env, serveUntilTerminated } from "./participant.mjs";

const broker = new ServiceBroker({
  nodeID: `bench-server-${process.pid}`,
  namespace: env("BENCH_QUEUE"),
  transporter: transporter(),
  serializer: "JSON",
  logLevel: "warn",
  // SIGTERM is handled by serveUntilTerminated, as the contract says.
  skipProcessEventRegistration: true,
});
// No bulkhead (Moleculer's default): requests run as they come. The client
// never has more than BENCH_CONCURRENCY calls in flight, so a cap would not bind.
broker.createService({
  name: "bench",
  actions: { add: (ctx) => ctx.params.a + ctx.params.b },
});
await broker.start();
await serveUntilTerminated(() => broker.stop());
