/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * CreateTopics v3, CreatePartitions v1 and DeleteTopics v1, with Kafka's checks
 * and error codes. Deleting a topic also drops its committed offsets.
 * Defaults are Kafka's: 1 partition and replication factor 1 when the request
 * says -1; a replication factor above 1 is INVALID_REPLICATION_FACTOR, as on any
 * single-broker cluster. Topic configs are accepted and ignored.
 *
 * @module
 */

import { type Reader, Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import { type BrokerState, NODE_ID } from "../broker.ts";
import type { ApiHandler } from "../server.ts";

const LEGAL_TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
/** Kafka's `num.partitions` and `default.replication.factor` defaults. */
const DEFAULT_PARTITIONS = 1;
const DEFAULT_REPLICATION_FACTOR = 1;

/** The outcome for one topic of the request. */
interface TopicResult {
  readonly name: string;
  readonly errorCode: ErrorCode;
  readonly errorMessage: string | null;
}

function failed(name: string, errorCode: ErrorCode, errorMessage: string): TopicResult {
  return { name, errorCode, errorMessage };
}

function writeResults(writer: Writer, results: readonly TopicResult[]): Writer {
  return writer.array(results, (writer, result) => {
    writer.string(result.name).int16(result.errorCode).string(result.errorMessage);
  });
}

/** Whether every replica list is exactly the double's node. */
function onThisNode(replicaLists: readonly (readonly number[] | null)[]): boolean {
  return replicaLists.every((replicas) => replicas?.length === 1 && replicas[0] === NODE_ID);
}

interface CreateTopicRequest {
  readonly name: string;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly assignments: readonly { partition: number; replicas: number[] }[];
}

function readCreateTopic(reader: Reader): CreateTopicRequest {
  const name = reader.string();
  const partitionCount = reader.int32();
  const replicationFactor = reader.int16();
  const assignments = reader.array((reader) => ({
    partition: reader.int32(),
    replicas: reader.array((reader) => reader.int32()),
  }));
  reader.array((reader) => [reader.string(), reader.nullableString()]); // configs: ignored
  return { name, partitionCount, replicationFactor, assignments };
}

/** The number of partitions to create, or why the topic cannot be created. */
function checkNewTopic(broker: BrokerState, topic: CreateTopicRequest): number | TopicResult {
  const { name, partitionCount, replicationFactor, assignments } = topic;
  if (!LEGAL_TOPIC_NAME.test(name) || name === "." || name === "..") {
    return failed(name, ErrorCode.INVALID_TOPIC_EXCEPTION, `Topic name "${name}" is illegal`);
  }
  if (broker.log.partitions(name)) {
    return failed(name, ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${name}' already exists.`);
  }
  if (assignments.length > 0) {
    if (partitionCount !== -1 || replicationFactor !== -1) {
      return failed(
        name,
        ErrorCode.INVALID_REQUEST,
        "Both numPartitions or replicationFactor and replicasAssignments were set.",
      );
    }
    const partitionsInOrder = assignments.every(({ partition }, index) => partition === index);
    if (!partitionsInOrder || !onThisNode(assignments.map(({ replicas }) => replicas))) {
      return failed(
        name,
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `Partitions must be 0..n-1, each on node ${NODE_ID} only`,
      );
    }
    return assignments.length;
  }
  const partitions = partitionCount === -1 ? DEFAULT_PARTITIONS : partitionCount;
  if (partitions < 1) {
    return failed(
      name,
      ErrorCode.INVALID_PARTITIONS,
      "Number of partitions must be larger than 0.",
    );
  }
  const replicas = replicationFactor === -1 ? DEFAULT_REPLICATION_FACTOR : replicationFactor;
  if (replicas < 1) {
    return failed(
      name,
      ErrorCode.INVALID_REPLICATION_FACTOR,
      "Replication factor must be larger than 0.",
    );
  }
  if (replicas > 1) {
    return failed(
      name,
      ErrorCode.INVALID_REPLICATION_FACTOR,
      `Replication factor: ${replicas} larger than available brokers: 1.`,
    );
  }
  return partitions;
}

/** CreateTopics v3. */
export function createTopicsApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 19,
    name: "CreateTopics",
    version: 3,
    handle: (body: Reader) => {
      const topics = body.array(readCreateTopic);
      body.int32(); // timeout: creation is immediate
      const validateOnly = body.boolean();
      const results = topics.map((topic): TopicResult => {
        if (topics.filter(({ name }) => name === topic.name).length > 1) {
          return failed(topic.name, ErrorCode.INVALID_REQUEST, "Topic is listed more than once.");
        }
        const checked = checkNewTopic(broker, topic);
        if (typeof checked !== "number") return checked;
        if (!validateOnly) {
          broker.log.createTopic(topic.name, checked);
          broker.createdAt.set(topic.name, performance.now());
        }
        return { name: topic.name, errorCode: ErrorCode.NONE, errorMessage: null };
      });
      return writeResults(new Writer().int32(0), results); // throttle time, then results
    },
  };
}

/** CreatePartitions v1: grows topics, never shrinks them. */
export function createPartitionsApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 37,
    name: "CreatePartitions",
    version: 1,
    handle: (body: Reader) => {
      const topics = body.array((reader) => ({
        name: reader.string(),
        count: reader.int32(),
        assignments: reader.nullableArray((reader) => reader.nullableArray((r) => r.int32())),
      }));
      body.int32(); // timeout: growth is immediate
      const validateOnly = body.boolean();
      const results = topics.map(({ name, count, assignments }): TopicResult => {
        const current = broker.log.partitions(name)?.length;
        if (current === undefined) {
          return failed(
            name,
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            `The topic '${name}' does not exist.`,
          );
        }
        if (count === current) {
          return failed(
            name,
            ErrorCode.INVALID_PARTITIONS,
            `Topic already has ${current} partitions.`,
          );
        }
        if (count < current) {
          return failed(
            name,
            ErrorCode.INVALID_PARTITIONS,
            `Topic currently has ${current} partitions, which is higher than the requested ${count}.`,
          );
        }
        if (assignments && (assignments.length !== count - current || !onThisNode(assignments))) {
          return failed(
            name,
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            `Give one assignment per new partition, each on node ${NODE_ID} only`,
          );
        }
        if (!validateOnly) broker.log.growTopic(name, count);
        return { name, errorCode: ErrorCode.NONE, errorMessage: null };
      });
      return writeResults(new Writer().int32(0), results); // throttle time, then results
    },
  };
}

/** DeleteTopics v1. */
export function deleteTopicsApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 20,
    name: "DeleteTopics",
    version: 1,
    handle: (body: Reader) => {
      const topics = body.array((reader) => reader.string());
      body.int32(); // timeout: deletion is immediate
      return new Writer()
        .int32(0) // throttle time
        .array(topics, (writer, topic) => {
          const deleted = broker.log.deleteTopic(topic);
          broker.createdAt.delete(topic);
          if (deleted) broker.groups.forgetTopic(topic);
          writer.string(topic).int16(
            deleted ? ErrorCode.NONE : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          );
        });
    },
  };
}
