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
 * CPU time of every thread of a process and of its child processes (a plugin
 * process, esbuild's service), in nanoseconds by `pid/tid`: what serving a
 * request costs when part of it runs in another process.
 */
export function treeCpuNs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    children = [];
  }
  for (const p of [String(pid), ...children]) {
    try {
      for (const [tid, ns] of threadCpuNs(Number(p))) out.set(`${p}/${tid}`, ns);
    } catch {
      // the child ended while it was read
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

/** CPU of the serving (main) thread and of the other threads of `pid` between two `threadCpuNs` readings. */
export function mainAndOtherNs(
  pid: number,
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): { main: number; other: number } {
  let main = 0;
  let other = 0;
  for (const [tid, ns] of after) {
    const d = ns - (before.get(tid) ?? 0);
    if (tid === String(pid)) main += d;
    else other += d;
  }
  return { main, other };
}

/** CPU time (user + system, milliseconds) of the child processes of `pid` (esbuild's service, for one), by child pid. */
export function childrenCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return out;
  }
  for (const c of children) {
    try {
      const fields = (readFileSync(`/proc/${c}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
      // utime and stime, in clock ticks of 10 ms
      out.set(c, (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // ended
    }
  }
  return out;
}
