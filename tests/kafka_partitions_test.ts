/**
 * The partition variables of the Kafka broker, each for its own topics, with
 * topics created when missing and grown, never shrunk. Servers run in child
 * processes, so each gets exactly the variables of its case.
 */
import { deadLetterQueueName, feedbackName, requestQueueName } from "../brokers/types.ts";
import { assertEquals } from "./support/assert.ts";
import { type KafkaSetup, kafkaTest } from "./support/kafka_setup.ts";

const fixture = new URL("./fixtures/kafka_topics.ts", import.meta.url).pathname;

/** Runs a server for `queue` with these variables, until it has started and stopped. */
async function serveOnce(k: KafkaSetup, queue: string, env: Record<string, string>) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", "--allow-net", "--allow-read", fixture],
    env: {
      NO_COLOR: "1",
      PRPC_TYPE_BROKER: "kafka",
      PRPC_URL_BROKER: k.url,
      PRPC_QUEUE_NAME: queue,
      PRPC_MAX_WORKERS: "3",
      ...env,
    },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(output.code, 0, new TextDecoder().decode(output.stderr));
}

/** Partition counts of the queue's topics: [request, raw request, feedback, raw feedback, dead]. */
async function partitionCounts(k: KafkaSetup, queue: string): Promise<number[]> {
  const topics = [
    requestQueueName(queue, "native"),
    requestQueueName(queue, "raw"),
    feedbackName(queue, "native"),
    feedbackName(queue, "raw"),
    deadLetterQueueName(queue),
  ];
  const { topics: metadata } = await (await k.admin()).fetchTopicMetadata({ topics });
  return topics.map((topic) => metadata.find((t) => t.name === topic)?.partitions.length ?? 0);
}

kafkaTest(
  "without variables, request topics get maxWorkers partitions and feedback topics 4",
  async (k) => {
    await serveOnce(k, k.queue, {});
    assertEquals(await partitionCounts(k, k.queue), [3, 3, 4, 4, 1]);
  },
);

kafkaTest(
  "each partition variable governs its own topics; topics grow and never shrink",
  async (k) => {
    await serveOnce(k, k.queue, {
      PRPC_KAFKA_QUEUE_TOPIC_NUMBER_PARTITIONS: "5",
      PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS: "2",
    });
    assertEquals(await partitionCounts(k, k.queue), [5, 5, 2, 2, 1]);
    await serveOnce(k, k.queue, {
      PRPC_KAFKA_QUEUE_TOPIC_NUMBER_PARTITIONS: "7",
      PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS: "3",
    });
    assertEquals(await partitionCounts(k, k.queue), [7, 7, 3, 3, 1], "grown");
    await serveOnce(k, k.queue, {
      PRPC_KAFKA_QUEUE_TOPIC_NUMBER_PARTITIONS: "1",
      PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS: "1",
    });
    assertEquals(await partitionCounts(k, k.queue), [7, 7, 3, 3, 1], "not shrunk");
  },
);
