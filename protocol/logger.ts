/**
 * The small logging contract prpc writes to. Pass your own (e.g. a `@std/log`
 * logger or pino) as the `logger` option to route prpc's messages.
 *
 * @module
 */

/** Where prpc writes what happens. Each method takes a message and optional details. */
export interface Logger {
  /** Routine events: a redelivered result, a reply for a call nobody waits for. */
  debug(message: string, details?: Record<string, unknown>): void;
  /** Lifecycle: started, stopping, stopped. */
  info(message: string, details?: Record<string, unknown>): void;
  /** Input that was refused or set aside; the server keeps serving. */
  warn(message: string, details?: Record<string, unknown>): void;
  /** Failures of prpc itself or of the broker. */
  error(message: string, details?: Record<string, unknown>): void;
}

/** Severity names, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/**
 * A logger that writes `[prpc]`-prefixed lines to the console from a level up.
 *
 * @param level The lowest level written. Default `"info"`.
 * @returns The logger.
 */
export function consoleLogger(level: LogLevel = "info"): Logger {
  const enabled = (at: LogLevel) => ORDER[at] >= ORDER[level];
  const write =
    (at: Exclude<LogLevel, "silent">) => (message: string, details?: Record<string, unknown>) => {
      if (!enabled(at)) return;
      if (details === undefined) console[at](`[prpc] ${message}`);
      else console[at](`[prpc] ${message}`, details);
    };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
