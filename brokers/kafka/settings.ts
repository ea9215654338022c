/**
 * Settings of the Kafka broker module, read and validated in one place: the
 * broker URL, `BrokerConnectOptions.settings` and PRPC's `PRPC_KAFKA_*`
 * variables. A key given in `settings` wins over the same key in the URL's
 * query, which wins over the variable, which wins over the default.
 *
 * URL: `[kafka://][user:password@]host[:port][,host[:port]...][?key=value&...]`,
 * e.g. `localhost:9092` (PRPC's form) or
 * `kafka://alice:secret@k1:9093,k2:9093?ssl=true&saslMechanism=scram-sha-512`.
 * The port defaults to 9092; a user and password in the URL mean SASL (PLAIN
 * unless `saslMechanism` says otherwise).
 *
 * @module
 */

import { readEnv } from "../../protocol/env.ts";
import { ConfigError } from "../../protocol/errors.ts";
import type { BrokerSettings } from "../types.ts";

/** The broker list used when neither the option nor `PRPC_URL_BROKER` names one. */
export const DEFAULT_KAFKA_URL = "localhost:9092";

/** SASL mechanisms that need nothing but a user name and a password. */
export const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;

/** One of {@linkcode SASL_MECHANISMS}. */
export type SaslMechanism = typeof SASL_MECHANISMS[number];

/** Where TLS material comes from; the files are read when connecting. */
export interface TlsSettings {
  /** PEM file with the CA certificates to trust instead of the system's. */
  caFile: string | undefined;
  /** PEM file with the client certificate (mutual TLS). */
  certFile: string | undefined;
  /** PEM file with the client certificate's private key. */
  keyFile: string | undefined;
  /** Check the broker's certificate. */
  rejectUnauthorized: boolean;
}

/** Everything the module needs, resolved. */
export interface KafkaSettings {
  /** Bootstrap brokers as `host:port`. */
  brokers: string[];
  /** Client id the brokers see in their logs and quotas. */
  clientId: string;
  /** TLS, or `undefined` for plain TCP. */
  tls: TlsSettings | undefined;
  /** SASL credentials, or `undefined` for none. */
  sasl: { mechanism: SaslMechanism; username: string; password: string } | undefined;
  /** Time limit of a TCP (and TLS) connect. */
  connectionTimeoutMs: number;
  /** Time limit of one request. */
  requestTimeoutMs: number;
  /** How often kafkajs retries a failed request (with exponential back-off). */
  retries: number;
  /** Consumer group of the servers. */
  groupId: string;
  /** A server (or reader) that sends no heartbeat for this long leaves its group. */
  sessionTimeoutMs: number;
  /** How often group members send heartbeats (and notice rebalances). */
  heartbeatIntervalMs: number;
  /** How long a rebalance waits for members to rejoin. */
  rebalanceTimeoutMs: number;
  /**
   * How long a server's first join of its group may take (kafkajs retries
   * some failures, such as an unavailable coordinator, forever) before
   * starting fails.
   */
  joinTimeoutMs: number;
  /** Longest wait of one fetch when no message is there. */
  maxWaitMs: number;
  /**
   * How old kafkajs lets its cluster metadata get before reading it again on
   * the next request: how soon producers spread requests over partitions
   * another process added, and consumers see them.
   */
  metadataMaxAgeMs: number;
  /**
   * Longest ledger metadata string committed with an offset; Kafka refuses
   * longer ones than its `offset.metadata.max.bytes` (4096 by default).
   */
  offsetMetadataMaxChars: number;
  /** Partitions of `prpc_{queue}` and `prpc_raw_{queue}`; `undefined` = the server's `maxWorkers`. */
  queueTopicPartitions: number | undefined;
  /** Partitions of `prpc_feedback_{queue}` and `prpc_feedback_raw_{queue}`. */
  feedbackTopicPartitions: number;
  /** Replication factor of the topics this module creates. */
  replicationFactor: number;
  /**
   * The brokers' `message.max.bytes` (or the topics' `max.message.bytes`),
   * record framing included; `undefined` = read from the brokers at connect.
   */
  maxMessageBytes: number | undefined;
  /** How far back `readResult` looks, and how long it keeps a result it has read. */
  resultTtlMs: number;
}

type Kind = "string" | "bool" | "int";

interface Spec {
  kind: Kind;
  /** Smallest value of an int. */
  min?: number;
  /** The `PRPC_*` variable that sets it when neither `settings` nor the URL does. */
  env?: string;
}

const SPECS = {
  clientId: { kind: "string" },
  ssl: { kind: "bool" },
  sslCaFile: { kind: "string" },
  sslCertFile: { kind: "string" },
  sslKeyFile: { kind: "string" },
  sslRejectUnauthorized: { kind: "bool" },
  saslMechanism: { kind: "string" },
  saslUsername: { kind: "string" },
  saslPassword: { kind: "string" },
  connectionTimeoutMs: { kind: "int", min: 1 },
  requestTimeoutMs: { kind: "int", min: 1 },
  retries: { kind: "int", min: 0 },
  groupId: { kind: "string" },
  sessionTimeoutMs: { kind: "int", min: 1 },
  heartbeatIntervalMs: { kind: "int", min: 1 },
  rebalanceTimeoutMs: { kind: "int", min: 1 },
  joinTimeoutMs: { kind: "int", min: 1 },
  maxWaitMs: { kind: "int", min: 1 },
  metadataMaxAgeMs: { kind: "int", min: 1 },
  offsetMetadataMaxChars: { kind: "int", min: 100 },
  queueTopicPartitions: { kind: "int", min: 1, env: "PRPC_KAFKA_QUEUE_TOPIC_NUMBER_PARTITIONS" },
  feedbackTopicPartitions: {
    kind: "int",
    min: 1,
    env: "PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS",
  },
  replicationFactor: { kind: "int", min: 1, env: "PRPC_KAFKA_REPLICATION_FACTOR" },
  maxMessageBytes: { kind: "int", min: 2048 },
  resultTtlSec: { kind: "int", min: 1 },
} as const satisfies Record<string, Spec>;

/** A setting's name, as a `settings` key and a URL query parameter. */
export type KafkaSettingName = keyof typeof SPECS;

type Value = string | number | boolean;

/**
 * Resolves the settings from the URL, the `settings` given in code and the
 * environment.
 *
 * | Key                       | Variable                                      | Default                |
 * | ------------------------- | --------------------------------------------- | ---------------------- |
 * | `queueTopicPartitions`    | `PRPC_KAFKA_QUEUE_TOPIC_NUMBER_PARTITIONS`    | the server's `maxWorkers` |
 * | `feedbackTopicPartitions` | `PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS` | 4                      |
 * | `replicationFactor`       | `PRPC_KAFKA_REPLICATION_FACTOR`               | 1                      |
 *
 * and, without variables: `clientId` (`prpc`), `ssl` (`false`), `sslCaFile`,
 * `sslCertFile`, `sslKeyFile`, `sslRejectUnauthorized` (`true`),
 * `saslMechanism` (`plain`), `saslUsername`, `saslPassword`,
 * `connectionTimeoutMs` (3000), `requestTimeoutMs` (30000), `retries` (5),
 * `groupId` (`prpc_group_consumers`), `sessionTimeoutMs` (30000),
 * `heartbeatIntervalMs` (3000), `rebalanceTimeoutMs` (60000), `joinTimeoutMs`
 * (`rebalanceTimeoutMs` + `sessionTimeoutMs`), `maxWaitMs`
 * (500), `metadataMaxAgeMs` (10000), `offsetMetadataMaxChars` (3000), `maxMessageBytes` (the brokers' `message.max.bytes`, read at connect) and
 * `resultTtlSec` (600).
 *
 * @param url The broker URL; `undefined` for `localhost:9092`.
 * @param settings The `brokerSettings` given in code.
 * @returns The settings.
 * @throws {ConfigError} On a malformed URL, an unknown key or an invalid value.
 */
export function readKafkaSettings(
  url: string | undefined,
  settings: BrokerSettings | undefined,
): KafkaSettings {
  const parsed = parseKafkaUrl(url ?? DEFAULT_KAFKA_URL);
  const fromCode = checkedValues(settings ?? {}, "broker setting");
  const values = { ...parsed.query, ...fromCode };
  const str = (name: KafkaSettingName) => values[name] as string | undefined;
  const bool = (name: KafkaSettingName, fallback: boolean) =>
    (values[name] as boolean | undefined) ?? fallback;
  const int = (name: KafkaSettingName, fallback: number) =>
    (values[name] as number | undefined) ?? envInt(name) ?? fallback;

  const username = str("saslUsername") ?? parsed.username;
  const password = str("saslPassword") ?? parsed.password;
  const mechanism = str("saslMechanism");
  if (mechanism !== undefined && !(SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
    throw new ConfigError(
      `Cannot use Kafka setting saslMechanism: current value is ${
        JSON.stringify(mechanism)
      }; expected one of ${SASL_MECHANISMS.join(", ")}`,
    );
  }
  if ((username === undefined) !== (password === undefined) || mechanism && !username) {
    throw new ConfigError(
      "Cannot use Kafka SASL without both a user name and a password: give saslUsername and " +
        "saslPassword (or user:password@ in the URL)",
    );
  }
  const tlsWanted = bool("ssl", false);
  const sessionTimeoutMs = int("sessionTimeoutMs", 30_000);
  const rebalanceTimeoutMs = int("rebalanceTimeoutMs", 60_000);
  const resolved: KafkaSettings = {
    brokers: parsed.brokers,
    clientId: str("clientId") ?? "prpc",
    tls: tlsWanted
      ? {
        caFile: str("sslCaFile"),
        certFile: str("sslCertFile"),
        keyFile: str("sslKeyFile"),
        rejectUnauthorized: bool("sslRejectUnauthorized", true),
      }
      : undefined,
    sasl: username === undefined || password === undefined ? undefined : {
      mechanism: (mechanism ?? "plain") as SaslMechanism,
      username,
      password,
    },
    connectionTimeoutMs: int("connectionTimeoutMs", 3_000),
    requestTimeoutMs: int("requestTimeoutMs", 30_000),
    retries: int("retries", 5),
    groupId: str("groupId") ?? "prpc_group_consumers",
    sessionTimeoutMs,
    heartbeatIntervalMs: int("heartbeatIntervalMs", 3_000),
    rebalanceTimeoutMs,
    joinTimeoutMs: int("joinTimeoutMs", rebalanceTimeoutMs + sessionTimeoutMs),
    maxWaitMs: int("maxWaitMs", 500),
    metadataMaxAgeMs: int("metadataMaxAgeMs", 10_000),
    offsetMetadataMaxChars: int("offsetMetadataMaxChars", 3_000),
    queueTopicPartitions: (values.queueTopicPartitions as number | undefined) ??
      envInt("queueTopicPartitions"),
    feedbackTopicPartitions: int("feedbackTopicPartitions", 4),
    replicationFactor: int("replicationFactor", 1),
    maxMessageBytes: (values.maxMessageBytes as number | undefined) ?? envInt("maxMessageBytes"),
    resultTtlMs: 1000 * int("resultTtlSec", 600),
  };
  if (!tlsWanted && (str("sslCaFile") ?? str("sslCertFile") ?? str("sslKeyFile")) !== undefined) {
    throw new ConfigError(
      "Cannot use sslCaFile, sslCertFile or sslKeyFile without ssl=true",
    );
  }
  if (resolved.heartbeatIntervalMs >= resolved.sessionTimeoutMs) {
    throw new ConfigError(
      `Cannot use a Kafka heartbeatIntervalMs of ${resolved.heartbeatIntervalMs} ms with a ` +
        `sessionTimeoutMs of ${resolved.sessionTimeoutMs} ms: heartbeats must come more often ` +
        "than the session times out (a third of it is usual)",
    );
  }
  return resolved;
}

/** The parts of a Kafka URL. */
interface ParsedUrl {
  brokers: string[];
  username: string | undefined;
  password: string | undefined;
  query: Partial<Record<KafkaSettingName, Value>>;
}

function parseKafkaUrl(url: string): ParsedUrl {
  const bad = (why: string) =>
    new ConfigError(
      `Cannot use ${
        JSON.stringify(redactPassword(url))
      } as a Kafka URL: ${why}; expected [kafka://][user:password@]host:port[,host:port...][?key=value&...]`,
    );
  let rest = url.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  if (scheme) {
    if (scheme[1]?.toLowerCase() !== "kafka") throw bad("the scheme must be kafka://");
    rest = rest.slice(scheme[0].length);
  }
  let query = "";
  const queryAt = rest.indexOf("?");
  if (queryAt >= 0) {
    query = rest.slice(queryAt + 1);
    rest = rest.slice(0, queryAt);
  }
  rest = rest.replace(/\/$/, "");
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(":");
    if (colon < 0) throw bad("a user in the URL needs a password (user:password@)");
    try {
      username = decodeURIComponent(userinfo.slice(0, colon));
      password = decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      throw bad("the user or password is not properly percent-encoded");
    }
    if (username === "") throw bad("the user name is empty");
  }
  const brokers = rest.split(",").map((part) => part.trim());
  for (const [i, broker] of brokers.entries()) {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+)(?::(\d{1,5}))?$/.exec(broker);
    if (!match || Number(match[2] ?? 9092) > 65_535 || Number(match[2] ?? 9092) < 1) {
      throw bad(
        broker === "" ? "a broker address is empty" : `${JSON.stringify(broker)} is not host:port`,
      );
    }
    brokers[i] = `${match[1]}:${match[2] ?? 9092}`;
  }
  const raw: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(query)) raw[key] = value;
  return { brokers, username, password, query: checkedValues(raw, "URL parameter") };
}

/** The URL with its password replaced by `***`, for messages. */
export function redactPassword(url: string): string {
  return url.replace(/^((?:[A-Za-z][A-Za-z0-9+.-]*:\/\/)?[^@/?]*?:)[^@/?]*@/, "$1***@");
}

/** Checks names and converts values of settings (from code or from the URL's query). */
function checkedValues(
  given: Readonly<Record<string, Value | undefined>>,
  what: string,
): Partial<Record<KafkaSettingName, Value>> {
  const values: Partial<Record<KafkaSettingName, Value>> = {};
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined) continue;
    if (!Object.hasOwn(SPECS, key)) {
      throw new ConfigError(
        `Cannot use Kafka ${what} ${JSON.stringify(key)}: known settings are ${
          Object.keys(SPECS).join(", ")
        }`,
      );
    }
    const name = key as KafkaSettingName;
    values[name] = convert(name, SPECS[name], value, what);
  }
  return values;
}

function convert(name: KafkaSettingName, spec: Spec, value: Value, what: string): Value {
  const fail = (expected: string) =>
    new ConfigError(
      `Cannot use Kafka ${what} ${name} as ${expected}: current value is ${JSON.stringify(value)}`,
    );
  switch (spec.kind) {
    case "string":
      if (typeof value !== "string" || value === "") throw fail("a non-empty string");
      return value;
    case "bool":
      if (typeof value === "boolean") return value;
      if (value === "true" || value === "1") return true;
      if (value === "false" || value === "0") return false;
      throw fail("true or false");
    case "int": {
      const number = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
      const min = spec.min ?? 0;
      if (typeof number !== "number" || !Number.isSafeInteger(number) || number < min) {
        throw fail(`a whole number >= ${min}`);
      }
      return number;
    }
  }
}

/** Reads the `PRPC_*` variable of a setting, if it has one and it is set. */
function envInt(name: KafkaSettingName): number | undefined {
  const spec: Spec = SPECS[name];
  if (spec.env === undefined) return undefined;
  const raw = readEnv(spec.env);
  if (raw === undefined) return undefined;
  const min = spec.min ?? 0;
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) < min) {
    throw new ConfigError(
      `Cannot read ${spec.env} as a whole number >= ${min}: current value is ${
        JSON.stringify(raw)
      }`,
    );
  }
  return Number(raw);
}
