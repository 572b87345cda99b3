import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time a process has used so far, in nanoseconds, summed over all its
 * threads (the main thread, worker threads, libuv's pool, V8's helpers): the
 * first field of each `/proc/<pid>/task/<tid>/schedstat`. Steadier than
 * requests per second on a shared machine, and fine-grained (not clock ticks).
 */
export function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile: its time is no longer counted (a worker restarted; never during a run here)
    }
  }
  return total;
}

/** Resident set size of a process in bytes (`VmRSS` of `/proc/<pid>/status`). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) * 1024;
}
