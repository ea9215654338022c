/**
 * Settings of the RabbitMQ broker module, read and validated in one place: the
 * broker URL, `BrokerConnectOptions.settings` and the `PRPC_AMQP_*` variables.
 * A setting given in `settings` wins over the URL's query, which wins over the
 * variable, which wins over the default.
 *
 * @module
 */

import type { Options } from "amqplib";
import { intSetting, readEnv } from "../../protocol/env.ts";
import { ConfigError } from "../../protocol/errors.ts";
import type { BrokerSettings } from "../types.ts";

/** The URL used when neither the option nor `PRPC_URL_BROKER` names one. */
export const DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672";

/** RabbitMQ's default `max_message_size` (128 MiB); 512 MiB is its hard ceiling. */
const RABBITMQ_MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
const RABBITMQ_MESSAGE_SIZE_CEILING = 512 * 1024 * 1024;

/** Everything the module needs to connect and to shape its queues. */
export interface AmqpSettings {
  /** Where and how to connect, in amqplib's form. */
  connect: Options.Connect;
  /** The URL with its password replaced by `***`, for messages and logs. */
  displayUrl: string;
  /** Name shown by `rabbitmqctl list_connections` and the management UI. */
  connectionName: string;
  /** Time limit of the TCP connect and the AMQP handshake. */
  connectTimeoutMs: number;
  /** First reconnect delay; it doubles per failed attempt, with jitter. */
  reconnectMinMs: number;
  /** Longest reconnect delay. */
  reconnectMaxMs: number;
  /** How long a publish or a consume waits for a lost connection to come back and for RabbitMQ's confirm. */
  operationTimeoutMs: number;
  /** How long a raw result without `reply_to` stays on `prpc_feedback_raw_{queue}` (message TTL). */
  resultTtlMs: number;
  /** `x-expires` of every prpc queue: RabbitMQ deletes a queue unused for this long. Off by default. */
  queueExpiresMs: number | undefined;
  /** `x-expires` of a client's reply queue: how long it outlives a lost connection. */
  replyQueueExpiresMs: number;
  /** Largest message body in bytes; keep it at or below RabbitMQ's `max_message_size`. */
  maxMessageBytes: number;
}

/** A whole-number setting: its key in `settings`, its variable, default and bounds. */
interface IntSpec {
  env: string;
  fallback: number;
  min: number;
  max?: number;
  /** The URL query parameter that may also set it. */
  query?: string;
}

const INT_SPECS = {
  heartbeatSec: { env: "PRPC_AMQP_HEARTBEAT_SEC", fallback: 30, min: 0, query: "heartbeat" },
  connectTimeoutMs: {
    env: "PRPC_AMQP_CONNECT_TIMEOUT_MS",
    fallback: 10_000,
    min: 1,
    query: "connection_timeout",
  },
  reconnectMinMs: { env: "PRPC_AMQP_RECONNECT_MIN_MS", fallback: 100, min: 1 },
  reconnectMaxMs: { env: "PRPC_AMQP_RECONNECT_MAX_MS", fallback: 30_000, min: 1 },
  operationTimeoutMs: { env: "PRPC_AMQP_OPERATION_TIMEOUT_MS", fallback: 30_000, min: 1 },
  resultTtlMs: { env: "PRPC_AMQP_RESULT_TTL_MS", fallback: 600_000, min: 1 },
  queueExpiresMs: { env: "PRPC_AMQP_QUEUE_EXPIRES_MS", fallback: 0, min: 1 },
  replyQueueExpiresMs: { env: "PRPC_AMQP_REPLY_QUEUE_EXPIRES_MS", fallback: 60_000, min: 1_000 },
  maxMessageBytes: {
    env: "PRPC_AMQP_MAX_MESSAGE_BYTES",
    fallback: RABBITMQ_MAX_MESSAGE_BYTES,
    min: 1024,
    max: RABBITMQ_MESSAGE_SIZE_CEILING,
  },
} satisfies Record<string, IntSpec>;

type IntKey = keyof typeof INT_SPECS;

const STRING_KEYS = ["connectionName"] as const;
const KNOWN_KEYS: readonly string[] = [...Object.keys(INT_SPECS), ...STRING_KEYS];

/** Query parameters of the URL, by the names of the AMQP URI spec (and amqplib's). */
const QUERY_PARAMS = [
  "heartbeat",
  "connection_timeout",
  "frame_max",
  "frameMax",
  "channel_max",
  "channelMax",
];

/**
 * Reads the settings of one connection.
 *
 * @param url The broker URL; `undefined` for {@linkcode DEFAULT_AMQP_URL}.
 * @param settings `BrokerConnectOptions.settings`; they override the variables.
 * @param instanceName The server instance's name, used in the default connection name.
 * @returns The validated settings.
 * @throws {ConfigError} When the URL, a setting or a `PRPC_AMQP_*` variable is invalid.
 */
export function readAmqpSettings(
  url: string | undefined,
  settings: BrokerSettings = {},
  instanceName?: string,
): AmqpSettings {
  for (const key of Object.keys(settings)) {
    if (!KNOWN_KEYS.includes(key)) {
      throw new ConfigError(
        `Cannot use brokerSettings.${key} with the AMQP broker: known settings are ${
          KNOWN_KEYS.join(", ")
        }`,
      );
    }
  }
  const { connect, displayUrl, query } = parseAmqpUrl(url ?? DEFAULT_AMQP_URL);
  const read = (key: IntKey): number => intFrom(key, settings[key], query, displayUrl);
  const reconnectMinMs = read("reconnectMinMs");
  const reconnectMaxMs = read("reconnectMaxMs");
  if (reconnectMaxMs < reconnectMinMs) {
    throw new ConfigError(
      `Cannot use reconnectMaxMs ${reconnectMaxMs} below reconnectMinMs ${reconnectMinMs}`,
    );
  }
  const queueExpiresMs = read("queueExpiresMs");
  connect.heartbeat = read("heartbeatSec");
  return {
    connect,
    displayUrl,
    connectionName:
      stringFrom("connectionName", settings.connectionName, "PRPC_AMQP_CONNECTION_NAME") ??
        `prpc ${instanceName ?? crypto.randomUUID()}`,
    connectTimeoutMs: read("connectTimeoutMs"),
    reconnectMinMs,
    reconnectMaxMs,
    operationTimeoutMs: read("operationTimeoutMs"),
    resultTtlMs: read("resultTtlMs"),
    queueExpiresMs: queueExpiresMs === 0 ? undefined : queueExpiresMs,
    replyQueueExpiresMs: read("replyQueueExpiresMs"),
    maxMessageBytes: read("maxMessageBytes"),
  };
}

/** A whole number from `settings`, else the URL query, else the variable, else the default. */
function intFrom(
  key: IntKey,
  given: string | number | boolean | undefined,
  query: URLSearchParams,
  displayUrl: string,
): number {
  const spec: IntSpec = INT_SPECS[key];
  let value: number | undefined;
  let option = `brokerSettings.${key}`;
  if (given !== undefined) {
    value = wholeNumber(given, option);
  } else if (spec.query !== undefined && query.has(spec.query)) {
    option = `${spec.query} in ${displayUrl}`;
    value = wholeNumber(query.get(spec.query) ?? "", option);
  }
  const number = intSetting({
    value,
    option,
    env: spec.env,
    fallback: spec.fallback,
    min: spec.min,
  });
  if (spec.max !== undefined && number > spec.max) {
    throw new ConfigError(
      `Cannot use ${
        value === undefined ? spec.env : option
      } above ${spec.max}: current value is ${number}`,
    );
  }
  return number;
}

/** A setting's value as a number; numbers may come as digit strings. */
function wholeNumber(value: string | number | boolean, option: string): number {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^\d+$/.test(value)) return Number(value);
  throw new ConfigError(
    `Cannot use ${option} as a whole number: current value is ${JSON.stringify(value)}`,
  );
}

function stringFrom(
  key: string,
  given: string | number | boolean | undefined,
  env: string,
): string | undefined {
  if (given === undefined) return readEnv(env);
  if (typeof given !== "string" || given.trim() === "") {
    throw new ConfigError(
      `Cannot use brokerSettings.${key} as a name: current value is ${JSON.stringify(given)}`,
    );
  }
  return given;
}

/**
 * Splits an `amqp://` or `amqps://` URL into amqplib's connect options.
 * An empty path (or `/`) selects the default vhost `/`; `%2F` spells a `/`
 * inside a vhost name.
 */
function parseAmqpUrl(
  url: string,
): { connect: Options.Connect; displayUrl: string; query: URLSearchParams } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `Cannot use ${
        JSON.stringify(redactPassword(url))
      } as an AMQP broker URL: expected amqp://user:password@host:port/vhost`,
    );
  }
  const displayUrl = redactPassword(url);
  if (parsed.protocol !== "amqp:" && parsed.protocol !== "amqps:") {
    throw new ConfigError(
      `Cannot use ${
        JSON.stringify(displayUrl)
      } as an AMQP broker URL: the scheme must be amqp: or amqps:`,
    );
  }
  const hostname = parsed.hostname.replace(/^\[|\]$/g, "");
  if (hostname === "") {
    throw new ConfigError(
      `Cannot use ${JSON.stringify(displayUrl)} as an AMQP broker URL: it names no host`,
    );
  }
  for (const name of parsed.searchParams.keys()) {
    if (!QUERY_PARAMS.includes(name)) {
      throw new ConfigError(
        `Cannot use URL parameter ${name} of ${displayUrl}: known parameters are ${
          QUERY_PARAMS.join(", ")
        }`,
      );
    }
  }
  const query = parsed.searchParams;
  const optionalInt = (names: string[]): number | undefined => {
    const name = names.find((candidate) => query.has(candidate));
    if (name === undefined) return undefined;
    return wholeNumber(query.get(name) ?? "", `${name} in ${displayUrl}`);
  };
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new ConfigError(
        `Cannot use ${
          JSON.stringify(displayUrl)
        } as an AMQP broker URL: its ${what} has a malformed %-escape`,
      );
    }
  };
  const connect: Options.Connect = {
    protocol: parsed.protocol.slice(0, -1),
    hostname,
    port: parsed.port === "" ? (parsed.protocol === "amqps:" ? 5671 : 5672) : Number(parsed.port),
    username: decode(parsed.username, "user name") || "guest",
    password: decode(parsed.password, "password") || (parsed.username === "" ? "guest" : ""),
    vhost: parsed.pathname === "" || parsed.pathname === "/"
      ? "/"
      : decode(parsed.pathname.slice(1), "vhost"),
  };
  const frameMax = optionalInt(["frame_max", "frameMax"]);
  if (frameMax !== undefined) connect.frameMax = frameMax;
  const channelMax = optionalInt(["channel_max", "channelMax"]);
  if (channelMax !== undefined) connect.channelMax = channelMax;
  return { connect, displayUrl, query };
}

/** The URL with its password replaced by `***`, safe to show in messages and logs. */
function redactPassword(url: string): string {
  return url.replace(/^(amqps?:\/\/[^:@/]*:)[^@/]*@/i, "$1***@");
}
