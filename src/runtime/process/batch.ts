/**
 * Messages posted within one turn of the event loop leave as one IPC message
 * (an array): under load one serialization and one write carry a burst of
 * requests or answers instead of one each. A message waits at most until the
 * end of the current turn (`setImmediate`).
 */
export class Batcher<T> {
  private queue: T[] = [];
  private scheduled = false;

  constructor(private readonly send: (batch: T[]) => void) {}

  push(m: T): void {
    this.queue.push(m);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Sends what is queued now (before an exit, say). */
  readonly flush = (): void => {
    this.scheduled = false;
    const q = this.queue;
    if (q.length === 0) return;
    this.queue = [];
    this.send(q);
  };
}

/** The messages of one IPC message: a batch, or (the boot message) a single one. */
export function unbatch<T>(m: T | T[]): T[] {
  return Array.isArray(m) ? m : [m];
}
