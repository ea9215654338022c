/**
 * Resident memory of a process and its descendants, read from Linux's /proc.
 * Elsewhere every reading is `null`.
 *
 * @module
 */

/** Memory of a process tree in bytes. */
export interface TreeMemory {
  /** Resident now, summed over the tree. */
  rss: number;
  /** Peak resident since start or the last {@linkcode resetPeaks}, summed over the tree. */
  peak: number;
}

/**
 * The pids of a process and all its descendants.
 *
 * @param pid The root.
 * @returns The root first, then its descendants.
 */
export function processTree(pid: number): number[] {
  const found = [pid];
  for (let i = 0; i < found.length; i++) {
    let tasks: string[];
    try {
      tasks = [...Deno.readDirSync(`/proc/${found[i]}/task`)].map((entry) => entry.name);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const children = Deno.readTextFileSync(`/proc/${found[i]}/task/${task}/children`);
        for (const child of children.split(" ")) if (child.trim() !== "") found.push(Number(child));
      } catch {
        // The thread ended while we looked.
      }
    }
  }
  return found;
}

function statusKb(pid: number, field: string): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Reads the memory of a process tree.
 *
 * @param pid The root process.
 * @returns Current and peak resident bytes, or `null` without /proc.
 */
export function treeMemory(pid: number): TreeMemory | null {
  if (Deno.build.os !== "linux") return null;
  let rss = 0;
  let peak = 0;
  for (const member of processTree(pid)) {
    rss += statusKb(member, "VmRSS") * 1024;
    peak += statusKb(member, "VmHWM") * 1024;
  }
  return { rss, peak };
}

/**
 * Starts a new peak-resident measurement for every process of a tree (Linux's
 * `clear_refs` value 5). Where that is refused, peaks count from process start.
 *
 * @param pid The root process.
 */
export function resetPeaks(pid: number): void {
  if (Deno.build.os !== "linux") return;
  for (const member of processTree(pid)) {
    try {
      Deno.writeTextFileSync(`/proc/${member}/clear_refs`, "5");
    } catch {
      // Not ours to reset: the peak then counts from the start.
    }
  }
}

/**
 * CPU time used so far by a process tree (user and system, Linux's clock ticks
 * taken as 100 per second), or `null` without /proc.
 *
 * @param pid The root process.
 * @returns Seconds.
 */
export function treeCpuSeconds(pid: number): number | null {
  if (Deno.build.os !== "linux") return null;
  let ticks = 0;
  for (const member of processTree(pid)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${member}/stat`);
      // The command name (field 2) may hold spaces; the fields after it are plain.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // It ended while we looked.
    }
  }
  return ticks / 100;
}
