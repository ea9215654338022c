/**
 * Turns the readings of the round-trip benchmark into Markdown: one table per
 * level with medians and ratios, the targets, the memory run and the
 * Redis commands per call.
 *
 * @module
 */

import type { FlatRun } from "./flat.ts";
import type { LevelReading } from "./run_system.ts";
import { BASELINE, type System } from "./systems.ts";

/** Where and how the benchmark ran. */
export interface Environment {
  /** The command line. */
  command: string;
  /** When (ISO 8601). */
  date: string;
  /** Logical CPUs. */
  cpus: number;
  /** Memory in GiB. */
  memoryGiB: number;
  /** Versions. */
  deno: string;
  /** Node.js version (the peers' runtime). */
  node: string;
  /** Redis version. */
  redis: string;
  /** Repetitions per system. */
  reps: number;
  /** Warm-up calls per level. */
  warmup: number;
}

/** All runs of one system. */
export interface SystemRuns {
  /** The system. */
  system: System;
  /** One list of level readings per repetition. */
  runs: LevelReading[][];
  /** Why it did not run (or failed), if so. */
  skipped: string | undefined;
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Medians of one system at one level. */
type Summary =
  & Pick<
    LevelReading,
    | "p50Ms"
    | "p99Ms"
    | "commandsPerCall"
    | "commands"
    | "serverPeak"
    | "clientPeak"
    | "serverCpuUs"
    | "clientCpuUs"
    | "redisCpuUs"
  >
  & { callsPerSecond: number };

function summarize(runs: LevelReading[][], level: number): Summary | undefined {
  const readings = runs.map((run) => run[level]).filter((r): r is LevelReading => r !== undefined);
  if (readings.length === 0) return undefined;
  const med = (pick: (r: LevelReading) => number | null) => {
    const values = readings.map(pick).filter((v): v is number => v !== null);
    return values.length === 0 ? null : median(values);
  };
  const names = new Set(readings.flatMap((r) => Object.keys(r.commands)));
  return {
    callsPerSecond: med((r) => r.calls / r.seconds)!,
    p50Ms: med((r) => r.p50Ms)!,
    p99Ms: med((r) => r.p99Ms)!,
    commandsPerCall: med((r) => r.commandsPerCall),
    commands: Object.fromEntries([...names].map((n) => [n, med((r) => r.commands[n] ?? 0)!])),
    serverPeak: med((r) => r.serverPeak),
    clientPeak: med((r) => r.clientPeak),
    serverCpuUs: med((r) => r.serverCpuUs),
    clientCpuUs: med((r) => r.clientCpuUs),
    redisCpuUs: med((r) => r.redisCpuUs),
  };
}

const mb = (bytes: number | null) => bytes === null ? "–" : (bytes / 2 ** 20).toFixed(0);
const fixed = (value: number, digits: number) => value.toFixed(digits);
const thousands = (value: number) => Math.round(value).toLocaleString("en-US");

function row(cells: string[]): string {
  return `| ${cells.join(" | ")} |`;
}

function levelTable(all: SystemRuns[], level: number): string[] {
  const base = all.find((s) => s.system.name === BASELINE);
  const baseSummary = base && summarize(base.runs, level);
  const lines = [
    row([
      "System",
      "Delivery",
      "Calls/s",
      `× ${BASELINE}`,
      "p50 ms",
      "p99 ms",
      "Redis cmds/call",
      "CPU µs/call (server / client / Redis)",
      "Peak RSS MB (server / client)",
    ]),
    row(["---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
  ];
  for (const { system, runs, skipped } of all) {
    const summary = summarize(runs, level);
    if (summary === undefined) {
      lines.push(row([system.name, system.delivery, "not run", "", "", "", "", "", skipped ?? ""]));
      continue;
    }
    lines.push(row([
      system.name,
      system.delivery,
      thousands(summary.callsPerSecond),
      baseSummary ? fixed(summary.callsPerSecond / baseSummary.callsPerSecond, 2) : "–",
      fixed(summary.p50Ms, 3),
      fixed(summary.p99Ms, 3),
      summary.commandsPerCall === null ? "–" : fixed(summary.commandsPerCall, 2),
      [summary.serverCpuUs, summary.clientCpuUs, summary.redisCpuUs]
        .map((us) => us === null ? "–" : fixed(us, 0)).join(" / "),
      system.server === undefined
        ? `${mb(summary.clientPeak)} (one process)`
        : `${mb(summary.serverPeak)} / ${mb(summary.clientPeak)}`,
    ]));
  }
  return lines;
}

/** One of the targets, checked against the medians. */
interface Target {
  text: string;
  measured: string;
  met: boolean | undefined;
}

function targets(
  all: SystemRuns[],
  levels: { inFlight: number }[],
  flat: FlatRun[] | undefined,
): Target[] {
  const at = (name: string, inFlight: number) => {
    const level = levels.findIndex((l) => l.inFlight === inFlight);
    const entry = all.find((s) => s.system.name === name);
    return level < 0 || entry === undefined ? undefined : summarize(entry.runs, level);
  };
  const list: Target[] = [];
  const prpc64 = at(BASELINE, 64);
  for (const [peer, factor] of [["bullmq", 5], ["moleculer", 1]] as const) {
    const other = at(peer, 64);
    const ratio = prpc64 && other ? prpc64.callsPerSecond / other.callsPerSecond : undefined;
    list.push({
      text: `${BASELINE} ≥ ${factor}× ${peer} in calls/s at 64 in flight`,
      measured: ratio === undefined ? "not measured" : `${fixed(ratio, 2)}×`,
      met: ratio === undefined ? undefined : ratio >= factor,
    });
  }
  const prpc256 = at(BASELINE, 256);
  list.push({
    text: `${BASELINE} ≥ 15,000 calls/s at 256 in flight`,
    measured: prpc256 ? `${thousands(prpc256.callsPerSecond)} calls/s` : "not measured",
    met: prpc256 ? prpc256.callsPerSecond >= 15_000 : undefined,
  });
  const prpc1 = at(BASELINE, 1);
  list.push({
    text: `${BASELINE} p50 ≤ 0.4 ms at 1 in flight`,
    measured: prpc1 ? `${fixed(prpc1.p50Ms, 3)} ms` : "not measured",
    met: prpc1 ? prpc1.p50Ms <= 0.4 : undefined,
  });
  const thread1 = at("prpc-thread-redis", 1);
  const added = prpc1 && thread1 ? thread1.p50Ms - prpc1.p50Ms : undefined;
  list.push({
    text: "`thread` adds ≤ 0.1 ms per call over `async` (p50 at 1 in flight)",
    measured: added === undefined ? "not measured" : `${fixed(added, 3)} ms`,
    met: added === undefined ? undefined : added <= 0.1,
  });
  const prpcFlat = flat?.find((f) => f.system.name === BASELINE);
  const growth = prpcFlat && typeof prpcFlat.readings !== "string"
    ? flatGrowth(prpcFlat.readings)
    : undefined;
  list.push({
    text:
      "resident memory flat with 10,000 calls in flight (grows ≤ 10 % over the second half of the rounds)",
    measured: growth === undefined
      ? "not measured"
      : `server ${fixed(growth.server, 2)}×, client ${fixed(growth.client, 2)}×`,
    met: growth === undefined ? undefined : growth.server <= 1.1 && growth.client <= 1.1,
  });
  return list;
}

/** Growth of resident memory over the second half of the rounds (a leak grows it, a plateau does not). */
function flatGrowth(readings: LevelReading[]): { server: number; client: number } {
  const middle = readings[Math.floor((readings.length - 1) / 2)]!;
  const last = readings[readings.length - 1]!;
  return {
    server: (last.serverRss ?? 0) / (middle.serverRss || 1),
    client: (last.clientRss ?? 0) / (middle.clientRss || 1),
  };
}

/** The rounds shown: the first, each quarter, and the last. */
function shownRounds(count: number): number[] {
  const picks = [0, ...[1, 2, 3, 4].map((q) => Math.round((count * q) / 4) - 1)];
  return [...new Set(picks.filter((i) => i >= 0 && i < count))];
}

function flatTable(flat: FlatRun[]): string[] {
  const count = Math.max(0, ...flat.map((f) => Array.isArray(f.readings) ? f.readings.length : 0));
  const rounds = shownRounds(count);
  const lines = [
    row([
      "System",
      "Side",
      ...rounds.map((i) => `after round ${i + 1}`),
      "Peak",
      "Growth over the second half",
      "Calls/s",
    ]),
    row(["---", "---", ...rounds.map(() => "---:"), "---:", "---:", "---:"]),
  ];
  for (const { system, readings } of flat) {
    if (typeof readings === "string") {
      lines.push(row([system.name, "failed", readings]));
      continue;
    }
    const rate = median(readings.map((r) => r.calls / r.seconds));
    const growth = flatGrowth(readings);
    for (const side of ["server", "client"] as const) {
      const rss = readings.map((r) => side === "server" ? r.serverRss : r.clientRss);
      const peaks = readings.map((r) => (side === "server" ? r.serverPeak : r.clientPeak) ?? 0);
      lines.push(row([
        system.name,
        `${side} RSS MB`,
        ...rounds.map((i) => mb(rss[i] ?? null)),
        mb(Math.max(...peaks)),
        `${fixed((growth[side] - 1) * 100, 1)} %`,
        side === "server" ? thousands(rate) : "",
      ]));
    }
  }
  return lines;
}

function commandsTable(all: SystemRuns[], levels: { inFlight: number }[]): string[] {
  const level = Math.max(0, levels.findIndex((l) => l.inFlight === 64));
  const lines = [
    row([
      "System",
      `Redis commands per call at ${
        levels[level]?.inFlight
      } in flight (scripts' own commands included)`,
    ]),
    row(["---", "---"]),
  ];
  for (const { system, runs } of all) {
    if (system.transport !== "redis") continue;
    const summary = summarize(runs, level);
    if (summary === undefined) continue;
    const parts = Object.entries(summary.commands)
      .filter(([, n]) => n >= 0.005)
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${fixed(n, 2)}`);
    lines.push(row([system.name, parts.join(", ")]));
  }
  return lines;
}

/**
 * Renders the report.
 *
 * @param environment Where and how it ran.
 * @param levels The levels measured.
 * @param all Every system's runs.
 * @param flat The memory run, when made.
 * @returns Markdown.
 */
export function renderReport(
  environment: Environment,
  levels: { inFlight: number; calls: number }[],
  all: SystemRuns[],
  flat: FlatRun[] | undefined,
): string {
  const e = environment;
  const out = [
    `Command: \`${e.command}\`, ${
      e.date.slice(0, 16).replace("T", " ")
    } UTC. Machine: ${e.cpus} CPUs, ${e.memoryGiB} GiB, shared; Deno ${e.deno}, Node.js ${e.node} (peers), Redis ${e.redis} (started by the benchmark, no persistence). Each system ran ${e.reps} times in turns; every figure is the median of the runs. ${e.warmup} warm-up calls precede each level. Server and client are separate processes (except the memory broker), all on the same 2 cores as Redis.`,
    "",
  ];
  for (const [index, level] of levels.entries()) {
    out.push(`### ${level.inFlight} in flight (${thousands(level.calls)} calls)`, "");
    out.push(...levelTable(all, index), "");
  }
  out.push("### Targets", "", row(["Target", "Measured", "Met"]), row(["---", "---", "---"]));
  for (const target of targets(all, levels, flat)) {
    const met = target.met === undefined ? "–" : target.met ? "yes" : "**no**";
    out.push(row([target.text, target.measured, met]));
  }
  out.push("");
  if (flat !== undefined && flat.length > 0) {
    out.push("### Memory with 10,000 calls in flight", "");
    out.push(
      "Rounds in a row of 10,000 calls all in flight at once; resident memory of each side after some of the rounds, the peak, and the growth from the middle round to the last (a leak keeps growing; V8 sizing its heap levels off).",
      "",
    );
    out.push(...flatTable(flat), "");
  }
  out.push("### Redis commands per call", "", ...commandsTable(all, levels), "");
  out.push("### Systems", "");
  for (const { system, skipped, runs } of all) {
    const note = runs.length === 0 && skipped ? ` Not run: ${skipped}.` : "";
    out.push(`- \`${system.name}\` (${system.delivery}): ${system.description}.${note}`);
  }
  return out.join("\n");
}

const START = "<!-- bench:start (written by deno task bench) -->";
const END = "<!-- bench:end -->";

/**
 * Writes the report into a file between its markers, keeping the rest.
 *
 * @param path The Markdown file.
 * @param report The report.
 */
export async function writeReport(path: string, report: string): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    text = `# Round-trip benchmark\n\n${START}\n${END}\n`;
  }
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) text = `${text.trimEnd()}\n\n${START}\n${END}\n`;
  const from = text.indexOf(START) + START.length;
  const to = text.indexOf(END);
  await Deno.writeTextFile(path, `${text.slice(0, from)}\n${report}\n${text.slice(to)}`);
  // The repository's formatter owns the layout of its Markdown (its gates check it).
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
}
