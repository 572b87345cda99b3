/**
 * Runs one autocannon load in its own process (never the server's) and prints
 * one JSON line with the result. Argument: a JSON `LoadSpec`.
 */
import autocannon from 'autocannon';

interface LoadSpec {
  url: string;
  connections: number;
  durationSec: number;
  /** When set, send exactly this many requests instead of loading for `durationSec`. */
  amount?: number;
  pipelining?: number;
}

function steadyRate(samples: number[], fallback: number): number {
  const full = samples.slice(1, spec.durationSec);
  return full.length === 0 ? fallback : full.reduce((a, b) => a + b, 0) / full.length;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const perSecond: number[] = [];
const instance = autocannon(
  {
    url: spec.url,
    connections: spec.connections,
    pipelining: spec.pipelining ?? 1,
    ...(spec.amount === undefined ? { duration: spec.durationSec } : { amount: spec.amount }),
  },
  (err, r) => {
    if (err) {
      console.log(JSON.stringify({ error: String(err) }));
      process.exit(1);
    }
    console.log(
      JSON.stringify({
        // the first second includes connection set-up and warm-up: the rate is taken over the following full seconds
        rps: steadyRate(perSecond, r.requests.average),
        total: r.requests.total,
        p50: r.latency.p50,
        p99: r.latency.p99,
        max: r.latency.max,
        errors: r.errors,
        timeouts: r.timeouts,
        non2xx: r.non2xx,
        resets: (r as unknown as { resets?: number }).resets ?? 0,
        perSecond,
      }),
    );
  },
);
// autocannon passes the second's counters to 'tick'; its type declarations omit them
(instance as unknown as { on(e: 'tick', f: (c: { counter: number }) => void): void }).on('tick', (c) => perSecond.push(c.counter));
