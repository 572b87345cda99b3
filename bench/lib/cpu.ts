import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of every thread of a process, in nanoseconds by thread id: the
 * first field of each `/proc/<pid>/task/<tid>/schedstat`. Steadier than
 * requests per second on a shared machine, and fine-grained (not clock ticks).
 */
export function threadCpuNs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended while the directory was read
    }
  }
  return out;
}

/**
 * CPU the process spent between two `threadCpuNs` readings: per thread, so a
 * thread that ended meanwhile (a type-check worker ending when idle) does not
 * take its whole past time off the sum; only its time inside the window is lost.
 */
export function cpuBetweenNs(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const [tid, ns] of after) total += ns - (before.get(tid) ?? 0);
  return total;
}

/** Resident set size of a process in bytes (`VmRSS` of `/proc/<pid>/status`). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) * 1024;
}
