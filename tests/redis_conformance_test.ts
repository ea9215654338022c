/** The broker conformance suite against a real Redis server. */
import { runConformance } from "./conformance.ts";
import { redisForTests } from "./support/redis_server.ts";

const redis = await redisForTests();

runConformance({
  name: "redis",
  broker: "redis",
  url: () => redis.url,
  // Short intervals, so that a test never waits for the production defaults.
  serverOptions: { brokerSettings: { heartbeatIntervalMs: 200, recoverIntervalMs: 1_000 } },
  ignore: redis.ignore,
});
