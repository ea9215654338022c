/**
 * The systems the round-trip benchmark compares, each a server program and a
 * client program that follow {@link ./participant.ts}.
 *
 * @module
 */

/** Where a system's messages travel. */
export type Transport = "redis" | "amqp" | "kafka" | "memory";

/** One benchmarked system. */
export interface System {
  /** Short name used in the report, e.g. `prpc-async-redis`. */
  name: string;
  /** What it is, for the report. */
  description: string;
  /** Delivery guarantee, for the report. */
  delivery: "at-least-once" | "at-most-once";
  /** The broker it needs. */
  transport: Transport;
  /** The server program's command line; `undefined` when the client also serves. */
  server: string[] | undefined;
  /** The client program's command line. */
  client: string[];
  /** Environment both get on top of the conductor's. */
  env: Record<string, string>;
}

/** The name of the system every ratio is taken against. */
export const BASELINE = "prpc-async-redis";

const DENO = [Deno.execPath(), "run", "--allow-all", "--quiet"];
const prpcServer = [...DENO, "bench/systems/prpc_server.ts"];
const prpcClient = [...DENO, "bench/systems/prpc_client.ts"];

/**
 * `maxWorkers` of the `thread` and `process` servers. Their pools hold one
 * worker (an isolate, a subprocess) per call running, and hundreds of them on
 * two cores is no configuration anyone runs: calls beyond these wait their turn.
 */
export const POOLED_MAX_WORKERS = 8;

function prpc(worker: string, transport: "redis" | "amqp" | "kafka", label: string): System {
  const pooled = worker !== "async";
  return {
    name: `prpc-${worker}-${transport}`,
    description: `prpc over ${label}, \`${worker}\` worker${
      pooled
        ? ` (maxWorkers ${POOLED_MAX_WORKERS}, so at most that many ${
          worker === "thread" ? "Web Workers" : "subprocesses"
        })`
        : ""
    }`,
    delivery: "at-least-once",
    transport,
    server: prpcServer,
    client: prpcClient,
    env: {
      BENCH_BROKER: transport,
      BENCH_WORKER: worker,
      ...(pooled ? { BENCH_MAX_WORKERS: String(POOLED_MAX_WORKERS) } : {}),
    },
  };
}

/**
 * A peer on Node.js: `bench/peers/{name}_server.mjs` and `..._client.mjs`
 * (a `-kafka` or `-amqp` name runs the same programs on Kafka or RabbitMQ).
 */
function peer(
  node: string,
  name: string,
  description: string,
  delivery: System["delivery"],
  transport: "redis" | "kafka" | "amqp" = "redis",
): System {
  const program = name.replace(/-(kafka|amqp)$/, "");
  return {
    name,
    description,
    delivery,
    transport,
    server: [node, `bench/peers/${program}_server.mjs`],
    client: [node, `bench/peers/${program}_client.mjs`],
    env: transport === "redis" ? {} : { BENCH_TRANSPORTER: transport },
  };
}

/**
 * Every system the benchmark knows, in report order.
 *
 * @param node The Node.js executable for the peers.
 * @returns The systems.
 */
export function allSystems(node: string): System[] {
  return [
    prpc("async", "redis", "Redis Streams"),
    prpc("thread", "redis", "Redis Streams"),
    prpc("process", "redis", "Redis Streams"),
    {
      name: "prpc-async-memory",
      description: "prpc over the embedded memory broker (server and client in one process)",
      delivery: "at-least-once",
      transport: "memory",
      server: undefined,
      client: [...DENO, "bench/systems/prpc_memory.ts"],
      env: {},
    },
    prpc("async", "amqp", "RabbitMQ"),
    prpc("async", "kafka", "Kafka"),
    {
      name: "floor-ioredis",
      description:
        "the same round trip written directly with ioredis: XADD, XREADGROUP, one script per batch",
      delivery: "at-least-once",
      transport: "redis",
      server: [...DENO, "bench/systems/floor_server.ts"],
      client: [...DENO, "bench/systems/floor_client.ts"],
      env: {},
    },
    {
      name: "floor-amqplib",
      description:
        "the same round trip written directly with amqplib: durable queues, persistent " +
        "messages, publisher confirms, the request acknowledged after its result is confirmed",
      delivery: "at-least-once",
      transport: "amqp",
      server: [...DENO, "bench/systems/floor_amqp_server.ts"],
      client: [...DENO, "bench/systems/floor_amqp_client.ts"],
      env: {},
    },
    {
      name: "floor-kafkajs",
      description: "the same round trip written directly with kafkajs: acks -1 both ways, " +
        "results of a batch in one send, offsets committed after the results",
      delivery: "at-least-once",
      transport: "kafka",
      server: [...DENO, "bench/systems/floor_kafka_server.ts"],
      client: [...DENO, "bench/systems/floor_kafka_client.ts"],
      env: {},
    },
    peer(
      node,
      "bullmq",
      "BullMQ on Node.js: `queue.add` + `job.waitUntilFinished`",
      "at-least-once",
    ),
    peer(
      node,
      "moleculer",
      "Moleculer on Node.js with its Redis transporter (pub/sub)",
      "at-most-once",
    ),
    peer(
      node,
      "moleculer-amqp",
      "Moleculer on Node.js with its AMQP transporter (`amqplib`)",
      "at-most-once",
      "amqp",
    ),
    peer(
      node,
      "moleculer-kafka",
      "Moleculer on Node.js with its Kafka transporter (`@platformatic/kafka`)",
      "at-most-once",
      "kafka",
    ),
  ];
}
