/**
 * The delay before retry number `attempt` (0: the first retry): `firstMs`, doubled with every attempt, never
 * more than `maxMs`. With `jitter`, spread over ±25% so that nodes losing one database together do not all
 * come back in the same instant. The one back-off rule of the host (connecting, re-listening, re-running).
 */
export function backoffMs(attempt: number, o: { firstMs: number; maxMs: number; jitter?: boolean }): number {
  // the exponent is bounded so a long outage never overflows to Infinity before the cap applies
  const delay = Math.min(o.maxMs, o.firstMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return o.jitter === true ? delay * (0.75 + Math.random() * 0.5) : delay;
}
