/** A continuous HTTP load against one URL, counting every answer by status. */

/** Result of a load run: every request answered, counted by status, plus bodies seen. */
export interface LoadStats {
  requests: number;
  byStatus: Record<number, number>;
  errors: string[];
  /** Values of `field` in JSON bodies, counted. */
  seen: Record<string, number>;
  non2xx: number;
}

/**
 * Continuous load with Node's fetch (undici) from `concurrency` workers against
 * one URL, until `stop()` or `maxMs`. Only 127.0.0.1 targets; bounded.
 */
export function startLoad(url: string, opts: { concurrency?: number; maxMs?: number; field?: string } = {}) {
  if (!url.startsWith('http://127.0.0.1:')) throw new Error(`load only against 127.0.0.1, not ${url}`);
  const stats: LoadStats = { requests: 0, byStatus: {}, errors: [], seen: {}, non2xx: 0 };
  const deadline = Date.now() + (opts.maxMs ?? 60_000);
  let stopped = false;
  const worker = async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        stats.requests++;
        stats.byStatus[res.status] = (stats.byStatus[res.status] ?? 0) + 1;
        if (res.status < 200 || res.status > 299) {
          stats.non2xx++;
          if (stats.errors.length < 20) stats.errors.push(`${res.status}: ${text.slice(0, 200)}`);
        } else if (opts.field !== undefined) {
          const v = String((JSON.parse(text) as Record<string, unknown>)[opts.field]);
          stats.seen[v] = (stats.seen[v] ?? 0) + 1;
        }
      } catch (err) {
        stats.requests++;
        if (stats.errors.length < 20) stats.errors.push(String((err as Error).cause ?? err));
        stats.byStatus[0] = (stats.byStatus[0] ?? 0) + 1;
      }
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 8 }, worker);
  const done = Promise.all(workers).then(() => stats);
  return {
    stats,
    /** Requests so far (to wait until the load has really started). */
    get count() {
      return stats.requests;
    },
    async stop(): Promise<LoadStats> {
      stopped = true;
      return done;
    },
  };
}
