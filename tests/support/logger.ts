/** A logger that records what prpc writes, so tests can assert on it and stay quiet. */

import type { Logger } from "../../mod.ts";

/** One recorded line. */
export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  details: Record<string, unknown> | undefined;
}

/** A {@linkcode Logger} that keeps every line in `lines`. */
export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = [];

  debug(message: string, details?: Record<string, unknown>): void {
    this.lines.push({ level: "debug", message, details });
  }
  info(message: string, details?: Record<string, unknown>): void {
    this.lines.push({ level: "info", message, details });
  }
  warn(message: string, details?: Record<string, unknown>): void {
    this.lines.push({ level: "warn", message, details });
  }
  error(message: string, details?: Record<string, unknown>): void {
    this.lines.push({ level: "error", message, details });
  }

  /** Lines of one level. */
  at(level: LogLine["level"]): LogLine[] {
    return this.lines.filter((line) => line.level === level);
  }
}
