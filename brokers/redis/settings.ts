/**
 * Settings of the Redis broker: `brokerSettings` given in code, else PRPC's
 * `PRPC_REDIS_*` variables, else the defaults.
 *
 * @module
 */

import type { BrokerSettings } from "../types.ts";
import { intSetting } from "../../protocol/env.ts";
import { ConfigError } from "../../protocol/errors.ts";

/** The resolved settings, in milliseconds and counts. */
export interface RedisSettings {
  /** How long results are kept (`SET ... PX`). */
  resultTtlMs: number;
  /** How often a server re-claims the messages it holds (and looks for abandoned ones). */
  heartbeatIntervalMs: number;
  /** How long a message must be idle before another server takes it over. */
  recoverIntervalMs: number;
  /** Entries kept in `prpc_dead_{queue}` (approximately, `MAXLEN ~`). */
  deadLetterLimit: number;
  /** Largest message body in UTF-8 bytes. */
  maxMessageBytes: number;
  /** Most entries one read takes (`XREADGROUP ... COUNT`), however many places are free. */
  readCount: number;
}

/**
 * Most entries one read takes by default. Reading all free places at once (up
 * to `maxWorkers`) sends results back in large, late bursts: at 64 calls in
 * flight, reads of at most 24 to 48 entries made 10 to 25 % more calls per
 * second than reads of up to 256 (`bench/RESULTS.md`), and servers sharing a
 * queue share its entries more evenly.
 */
const DEFAULT_READ_COUNT = 32;

/** Redis refuses strings above 512 MiB (`proto-max-bulk-len`). */
const REDIS_MAX_BULK_BYTES = 512 * 1024 * 1024;

const KNOWN_SETTINGS = [
  "resultTtlSec",
  "heartbeatIntervalMs",
  "recoverIntervalMs",
  "deadLetterLimit",
  "maxMessageBytes",
  "readCount",
] as const;

type SettingName = typeof KNOWN_SETTINGS[number];

/**
 * Resolves the settings. Each key of `settings` wins over its variable:
 *
 * | Key                   | Variable                                 | Default          |
 * | --------------------- | ---------------------------------------- | ---------------- |
 * | `resultTtlSec`        | `PRPC_REDIS_EXPIRE_MESSAGE_FEEDBACK_SEC` | 21600 (6 h)      |
 * | `heartbeatIntervalMs` | `PRPC_REDIS_HEARTBEAT_INTERVAL_SEC`      | 15 s             |
 * | `recoverIntervalMs`   | `PRPC_REDIS_RECOVER_INTERVAL_SEC`        | 45 s             |
 * | `deadLetterLimit`     | —                                        | 10000            |
 * | `maxMessageBytes`     | —                                        | 16 MiB (≤ 512 MiB) |
 * | `readCount`           | —                                        | 32               |
 *
 * @param settings The `brokerSettings` given in code.
 * @returns The settings.
 * @throws {ConfigError} On an unknown key or a value that is not a whole number in range.
 */
export function readRedisSettings(settings: BrokerSettings | undefined): RedisSettings {
  const given = givenSettings(settings);
  const seconds = (name: SettingName, env: string, fallback: number) =>
    intSetting({ value: undefined, option: `brokerSettings.${name}`, env, fallback, min: 1 });
  return {
    resultTtlMs: 1000 *
      (given.resultTtlSec ??
        seconds("resultTtlSec", "PRPC_REDIS_EXPIRE_MESSAGE_FEEDBACK_SEC", 21_600)),
    heartbeatIntervalMs: given.heartbeatIntervalMs ??
      1000 * seconds("heartbeatIntervalMs", "PRPC_REDIS_HEARTBEAT_INTERVAL_SEC", 15),
    recoverIntervalMs: given.recoverIntervalMs ??
      1000 * seconds("recoverIntervalMs", "PRPC_REDIS_RECOVER_INTERVAL_SEC", 45),
    deadLetterLimit: given.deadLetterLimit ?? 10_000,
    maxMessageBytes: Math.min(given.maxMessageBytes ?? 16 * 1024 * 1024, REDIS_MAX_BULK_BYTES),
    readCount: given.readCount ?? DEFAULT_READ_COUNT,
  };
}

/**
 * Checks what a server needs: a message must be re-claimed (heartbeat) more
 * often than others may take it over (recovery).
 *
 * @param settings The resolved settings.
 * @throws {ConfigError} Unless the recover interval is longer than the heartbeat interval.
 */
export function checkRecoverAfterHeartbeat(settings: RedisSettings): void {
  if (settings.recoverIntervalMs > settings.heartbeatIntervalMs) return;
  throw new ConfigError(
    `Cannot serve with a Redis recover interval of ${settings.recoverIntervalMs} ms and a ` +
      `heartbeat interval of ${settings.heartbeatIntervalMs} ms: the recover interval ` +
      "(PRPC_REDIS_RECOVER_INTERVAL_SEC, brokerSettings.recoverIntervalMs) must be longer than " +
      "the heartbeat interval (PRPC_REDIS_HEARTBEAT_INTERVAL_SEC, " +
      "brokerSettings.heartbeatIntervalMs), or other servers take over running messages",
  );
}

/**
 * A warning for a recover interval shorter than two heartbeat intervals: then a
 * single late heartbeat (a busy event loop, a slow Redis) lets other servers
 * take over messages that are still running, and run them again.
 *
 * @param settings The resolved settings.
 * @returns The warning, or `undefined` when the recover interval is at least twice the heartbeat.
 */
export function recoverMarginWarning(settings: RedisSettings): string | undefined {
  if (settings.recoverIntervalMs >= 2 * settings.heartbeatIntervalMs) return undefined;
  return `the Redis recover interval (${settings.recoverIntervalMs} ms) is shorter than twice ` +
    `the heartbeat interval (${settings.heartbeatIntervalMs} ms): one late heartbeat lets other ` +
    "servers take over running messages; the defaults are 45 s and 15 s";
}

/** The settings given in code, checked: known keys, whole numbers at or above each minimum. */
function givenSettings(settings: BrokerSettings | undefined): Partial<Record<SettingName, number>> {
  const given: Partial<Record<SettingName, number>> = {};
  for (const [key, value] of Object.entries(settings ?? {})) {
    if (value === undefined) continue;
    if (!(KNOWN_SETTINGS as readonly string[]).includes(key)) {
      throw new ConfigError(
        `Cannot use Redis broker setting ${JSON.stringify(key)}: known settings are ${
          KNOWN_SETTINGS.join(", ")
        }`,
      );
    }
    const name = key as SettingName;
    const min = name === "maxMessageBytes" ? 1024 : 1;
    const number = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof number !== "number" || !Number.isSafeInteger(number) || number < min) {
      throw new ConfigError(
        `Cannot use Redis broker setting ${name} as a whole number >= ${min}: current value is ${
          JSON.stringify(value)
        }`,
      );
    }
    given[name] = number;
  }
  return given;
}
