import { HostError } from '../../errors/index.js';
import { backoffMs } from '../../model/index.js';

export interface CrashLimits {
  /** This many deaths within `crashWindowMs` stop the restarts. */
  crashLimit: number;
  crashWindowMs: number;
}

/**
 * When a supervised version is restarted after a death, and when it is not:
 * backoff doubling from 100 ms to 5 s, and a crash loop (`crashLimit` deaths
 * within `crashWindowMs`) that stops the restarts for good.
 */
export class CrashPolicy {
  private readonly deaths: number[] = [];
  /** Deaths over the version's whole life (the API shows them as restarts). */
  total = 0;

  constructor(private readonly limits: CrashLimits) {}

  /** Records a death: the delay before the next start, or the coded failure that ends the restarts. */
  death(name: string, reason: string, detail: string, now = Date.now()): { retryInMs: number } | { failure: HostError } {
    this.total++;
    this.deaths.push(now);
    while (this.deaths.length > 0 && now - (this.deaths[0] as number) > this.limits.crashWindowMs) this.deaths.shift();
    if (this.deaths.length >= this.limits.crashLimit) {
      return {
        failure: new HostError(
          'PH_ERR_PLUGIN_CRASHED',
          `${name}: its worker ended ${this.deaths.length} times within ${this.limits.crashWindowMs} ms (last: ${detail}); not restarted`,
          { details: { reason, deaths: this.deaths.length } },
        ),
      };
    }
    return { retryInMs: backoffMs(this.deaths.length - 1, { firstMs: 100, maxMs: 5000 }) };
  }
}
