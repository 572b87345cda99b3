/**
 * In-flight accounting every `LoadedVersion` implementation shares: the
 * dispatcher adds one per request and calls `release` when it finishes; a
 * replaced version waits in `drain` until its last request is answered.
 */
export abstract class InflightVersion {
  inflight = 0;
  /** Responses this version gave, and how many of them were 5xx (a canary node compares versions by them). */
  answered = 0;
  serverErrors = 0;
  private drainWaiters: Array<() => void> = [];

  /** Bound once and reused per request: the dispatcher calls it from the response's 'close' event. */
  readonly release = (): void => {
    this.inflight--;
    if (this.inflight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  };

  /** Resolves when no request is in flight, or after `timeoutMs`. Returns true if drained. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      t.unref();
      this.drainWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
}
