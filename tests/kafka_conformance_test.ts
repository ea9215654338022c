/** The broker conformance suite against Kafka (the test double, or `PRPC_TEST_KAFKA_URL`). */
import { runConformance } from "./conformance.ts";
import { kafkaUrl, testUrl } from "./support/kafka_target.ts";

const url = await kafkaUrl();

runConformance({
  name: "kafka",
  broker: "kafka",
  // Short group timings; a group of its own per test, so that no test waits for the
  // rebalances of another; two partitions per request topic, so that two servers
  // with maxWorkers 1 both get one.
  url: () =>
    testUrl(url, { groupId: `prpc_group_${crypto.randomUUID()}`, queueTopicPartitions: 2 }),
});
