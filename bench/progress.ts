/**
 * Where a benchmark run is: which system, run and level it measures, and how
 * far along it is. On a terminal one line is redrawn in place; otherwise (a
 * pipe, a CI log) each step is a plain line of its own.
 *
 * @module
 */

/** What is being done at one step. */
export interface Step {
  /** The system, e.g. `prpc-async-redis`. */
  system: string;
  /** Its run, from 1. */
  run: number;
  /** Runs in all. */
  runs: number;
  /** Calls in flight at this level. */
  inFlight: number;
  /** Calls measured at this level. */
  calls: number;
  /** `warming up` or `measuring`. */
  phase: "warming up" | "measuring";
}

/** Writes progress to standard error. */
export class Progress {
  readonly #total: number;
  readonly #tty: boolean;
  readonly #started = Date.now();
  #done = 0;
  #open = false;

  /**
   * A progress display.
   *
   * @param total Steps in all (levels × runs × systems).
   * @param tty Whether standard error is a terminal (redraw) or not (plain lines).
   */
  constructor(total: number, tty: boolean = Deno.stderr.isTerminal()) {
    this.#total = total;
    this.#tty = tty;
  }

  /** The text of a step, e.g. `[3/27 7%, 0:41] prpc-async-redis run 1/3: 64 in flight, measuring 20,000 calls`. */
  describe(step: Step): string {
    const seconds = Math.round((Date.now() - this.#started) / 1000);
    const elapsed = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    const percent = Math.floor((this.#done / this.#total) * 100);
    return `[${
      this.#done + 1
    }/${this.#total} ${percent}%, ${elapsed}] ${step.system} run ${step.run}/${step.runs}: ${step.inFlight} in flight, ${step.phase} ${
      step.calls.toLocaleString("en-US")
    } calls`;
  }

  /**
   * Shows the step now under way.
   *
   * @param step The step.
   */
  show(step: Step): void {
    const text = this.describe(step);
    if (this.#tty) {
      this.#write(`\r\x1b[2K${text}`);
      this.#open = true;
    } else if (step.phase === "measuring") {
      this.#write(`${text}\n`);
    }
  }

  /** A step ended. */
  stepDone(): void {
    this.#done++;
  }

  /**
   * Writes a line of its own (a result, a failure), below the progress line.
   *
   * @param line The text.
   */
  log(line: string): void {
    this.#write(`${this.#open ? "\r\x1b[2K" : ""}${line}\n`);
    this.#open = false;
  }

  #write(text: string): void {
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  }
}
