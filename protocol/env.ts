/**
 * The `PRPC_*` environment variables, read and validated in one place so that a
 * bad value fails at start with a message naming the variable and the value.
 *
 * @module
 */

import { DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT } from "./depth.ts";
import { ConfigError } from "./errors.ts";

/** Broker kinds prpc can talk to. */
export type BrokerKind = "memory" | "redis" | "kafka" | "amqp";

/** Every broker kind, in the order the docs list them. */
export const BROKER_KINDS: readonly BrokerKind[] = ["memory", "redis", "kafka", "amqp"];

/**
 * Reads an environment variable. Returns `undefined` when it is unset, empty,
 * or when the process has no permission to read it (a library must not prompt).
 *
 * @param name The variable, e.g. `"PRPC_QUEUE_NAME"`.
 * @returns Its value, or `undefined`.
 */
export function readEnv(name: string): string | undefined {
  try {
    const state = Deno.permissions.querySync({ name: "env", variable: name }).state;
    if (state !== "granted") return undefined;
    const value = Deno.env.get(name);
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  } catch {
    return undefined;
  }
}

/** Where a whole-number setting comes from and what it may be. */
export interface IntSettingSpec {
  /** The value given in code; it wins over the environment. */
  value: number | undefined;
  /** Name of the code option, for messages. */
  option: string;
  /** The variable read when `value` is undefined. */
  env: string;
  /** The default when neither is set. */
  fallback: number;
  /** The smallest allowed value. */
  min: number;
  /** The largest allowed value. Default: no limit but `Number.MAX_SAFE_INTEGER`. */
  max?: number;
}

/**
 * Reads a whole number from a code option or, when that is undefined, from a variable.
 *
 * @param spec The option, the variable, the default and the minimum.
 * @returns The number.
 * @throws {ConfigError} When the value is not a whole number `>= spec.min`.
 */
export function intSetting(spec: IntSettingSpec): number {
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  const range = spec.max === undefined ? `>= ${spec.min}` : `from ${spec.min} to ${spec.max}`;
  if (spec.value !== undefined) {
    if (!Number.isSafeInteger(spec.value) || spec.value < spec.min || spec.value > max) {
      throw new ConfigError(
        `Cannot use option ${spec.option} as a whole number ${range}: current value is ${spec.value}`,
      );
    }
    return spec.value;
  }
  const raw = readEnv(spec.env);
  if (raw === undefined) return spec.fallback;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value) || value < spec.min || value > max) {
    throw new ConfigError(
      `Cannot read ${spec.env} as a whole number ${range}: current value is ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/**
 * Reads a yes/no setting from an option or a variable (`true`/`false`, `1`/`0`, `yes`/`no`).
 *
 * @param option The value given in code, which wins over the environment.
 * @param name The variable to read otherwise.
 * @param fallback The default when neither is set.
 * @returns The flag.
 * @throws {ConfigError} When the variable holds anything else.
 */
export function boolSetting(option: boolean | undefined, name: string, fallback: boolean): boolean {
  if (option !== undefined) return option;
  const raw = readEnv(name);
  if (raw === undefined) return fallback;
  const lower = raw.toLowerCase();
  if (["1", "true", "yes", "on"].includes(lower)) return true;
  if (["0", "false", "no", "off"].includes(lower)) return false;
  throw new ConfigError(
    `Cannot read ${name} as true or false: current value is ${JSON.stringify(raw)}`,
  );
}

/**
 * Resolves the broker kind from an option, else `PRPC_TYPE_BROKER`, else `"memory"`.
 *
 * @param option The value given in code.
 * @returns The broker kind.
 * @throws {ConfigError} When the value names no known broker.
 */
export function brokerKindSetting(option: string | undefined): BrokerKind {
  const fromEnv = option === undefined;
  const raw = option ?? readEnv("PRPC_TYPE_BROKER") ?? "memory";
  const kind = raw.toLowerCase();
  if ((BROKER_KINDS as readonly string[]).includes(kind)) return kind as BrokerKind;
  const where = fromEnv ? "PRPC_TYPE_BROKER" : "option broker";
  throw new ConfigError(
    `Cannot use ${where} as a broker: current value is ${JSON.stringify(raw)}; expected one of ${
      BROKER_KINDS.join(", ")
    }`,
  );
}

const QUEUE_NAME_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;

/**
 * Resolves the queue name from an option, else `PRPC_QUEUE_NAME`, else `"task_prpc"`.
 * Names are limited to letters, digits, `.`, `_` and `-` (at most 200), which every
 * broker accepts as part of a queue, stream, key or topic name.
 *
 * @param option The value given in code.
 * @returns The queue name.
 * @throws {ConfigError} When the name has other characters.
 */
export function queueNameSetting(option: string | undefined): string {
  const fromEnv = option === undefined;
  const name = option ?? readEnv("PRPC_QUEUE_NAME") ?? "task_prpc";
  if (!QUEUE_NAME_PATTERN.test(name)) {
    const where = fromEnv ? "PRPC_QUEUE_NAME" : "option queue";
    throw new ConfigError(
      `Cannot use ${where} as a queue name: current value is ${
        JSON.stringify(name)
      }; use 1 to 200 letters, digits, ".", "_" or "-"`,
    );
  }
  return name;
}

/**
 * Resolves the broker URL from an option, else `PRPC_URL_BROKER`.
 *
 * @param option The value given in code.
 * @returns The URL, or `undefined` for the broker's default.
 */
export function brokerUrlSetting(option: string | undefined): string | undefined {
  return option ?? readEnv("PRPC_URL_BROKER");
}

/**
 * Resolves the largest message size from the option `maxMessageBytes`, else
 * `PRPC_MAX_MESSAGE_BYTES`, capped at the broker's own limit.
 *
 * @param option The value given in code.
 * @returns A function that takes the broker's limit and returns the limit to use.
 * @throws {ConfigError} When the value is not a whole number >= 1024.
 */
export function maxMessageBytesSetting(
  option: number | undefined,
): (brokerLimit: number) => number {
  const configured = option === undefined && readEnv("PRPC_MAX_MESSAGE_BYTES") === undefined
    ? undefined
    : intSetting({
      value: option,
      option: "maxMessageBytes",
      env: "PRPC_MAX_MESSAGE_BYTES",
      fallback: 0,
      min: 1024,
    });
  return (brokerLimit) => Math.min(configured ?? brokerLimit, brokerLimit);
}

/**
 * Resolves how deeply arguments and results may nest, from the option
 * `maxDepth`, else `PRPC_MAX_DEPTH`, else {@linkcode DEFAULT_MAX_DEPTH}.
 *
 * @param option The value given in code.
 * @returns The limit, from 1 to {@linkcode MAX_DEPTH_LIMIT}.
 * @throws {ConfigError} When the value is out of that range.
 */
export function maxDepthSetting(option: number | undefined): number {
  return intSetting({
    value: option,
    option: "maxDepth",
    env: "PRPC_MAX_DEPTH",
    fallback: DEFAULT_MAX_DEPTH,
    min: 1,
    max: MAX_DEPTH_LIMIT,
  });
}
