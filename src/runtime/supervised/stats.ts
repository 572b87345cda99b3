/** Buckets (ms) of the forwarded-request latency histogram. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];

export interface Forwarded {
  count: number;
  sumMs: number;
  /** Counts per bucket of `LATENCY_BUCKETS_MS` (not cumulative), then one for longer. */
  buckets: number[];
}

/**
 * What the worker runtime counts per plugin, across versions and restarts:
 * worker deaths by reason, and forwarded requests with their latency. Read
 * by the metrics when scraped; the request path only adds to numbers.
 */
export class WorkerStats {
  readonly restarts = new Map<string, Map<string, number>>();
  readonly forwarded = new Map<string, Forwarded>();

  death(plugin: string, reason: string): void {
    let m = this.restarts.get(plugin);
    if (m === undefined) {
      m = new Map();
      this.restarts.set(plugin, m);
    }
    m.set(reason, (m.get(reason) ?? 0) + 1);
  }

  /** The plugin's counters (one object per plugin: a version keeps it and adds to it per request). */
  forwardedOf(plugin: string): Forwarded {
    let f = this.forwarded.get(plugin);
    if (f === undefined) {
      f = { count: 0, sumMs: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) };
      this.forwarded.set(plugin, f);
    }
    return f;
  }
}

export function observe(f: Forwarded, ms: number): void {
  f.count++;
  f.sumMs += ms;
  let i = 0;
  while (i < LATENCY_BUCKETS_MS.length && ms > (LATENCY_BUCKETS_MS[i] as number)) i++;
  f.buckets[i] = (f.buckets[i] ?? 0) + 1;
}
