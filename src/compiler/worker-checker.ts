import { Worker } from 'node:worker_threads';
import type { Diagnostic } from './typecheck.js';
import { TypeChecker } from './typecheck.js';
import type { CheckRequest, CheckResponse } from './worker-protocol.js';

const ENTRY = new URL('./typecheck-worker-entry.mjs', import.meta.url);

/**
 * Checks a worker answers before it is replaced by a fresh one. The checker's
 * caches and V8's code for every program it built only grow; a worker's
 * memory is returned whole when it exits. The next check after a recycle pays
 * the cold start (about a second, on the worker's thread, never the serving one).
 */
const RECYCLE_AFTER = 200;

type Pending = { items: CheckRequest['items']; resolve: (r: Map<string, Diagnostic[]>) => void; reject: (e: Error) => void };

/**
 * Type checks in a worker thread, one at a time in order. The worker starts on
 * the first check (a node that finds every artifact built never starts one)
 * and is recycled every `RECYCLE_AFTER` checks. If a worker cannot start or
 * dies, what it owed is checked in process: slower for requests, never wrong.
 */
export class WorkerTypeChecker {
  private worker: Worker | undefined;
  private fallback: TypeChecker | undefined;
  private nextId = 1;
  private answered = 0;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private spawn(): Worker | undefined {
    try {
      const w = new Worker(ENTRY, { execArgv: [], stdout: false, stderr: false });
      w.unref();
      w.on('message', (res: CheckResponse) => this.settle(w, res));
      w.on('error', (err) => this.lost(w, err));
      w.on('exit', (code) => this.lost(w, new Error(`type-check worker exited with code ${code}`)));
      this.answered = 0;
      return w;
    } catch {
      return undefined;
    }
  }

  /** Starts a worker ahead of the first check (it loads TypeScript meanwhile). */
  start(): void {
    if (!this.closed) this.worker ??= this.spawn();
  }

  checkMany(items: ReadonlyArray<{ dir: string; entry: string }>): Promise<Map<string, Diagnostic[]>> {
    if (this.closed) return Promise.reject(new Error('type checker closed'));
    this.worker ??= this.spawn();
    const w = this.worker;
    if (w === undefined) return this.inProcess(items);
    const id = this.nextId++;
    const req: CheckRequest = { id, items: items.map((i) => ({ dir: i.dir, entry: i.entry })) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { items: req.items, resolve, reject });
      w.ref(); // keep the process alive while a check is owed
      w.postMessage(req);
    });
  }

  private inProcess(items: ReadonlyArray<{ dir: string; entry: string }>): Promise<Map<string, Diagnostic[]>> {
    this.fallback ??= new TypeChecker();
    try {
      return Promise.resolve(this.fallback.checkMany(items));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private settle(w: Worker, res: CheckResponse): void {
    const p = this.pending.get(res.id);
    if (p === undefined) return;
    this.pending.delete(res.id);
    this.answered++;
    if (this.pending.size === 0) {
      w.unref();
      if (this.answered >= RECYCLE_AFTER && this.worker === w) {
        this.worker = undefined;
        w.removeAllListeners('exit');
        void w.terminate();
      }
    }
    if (res.ok) p.resolve(new Map(res.results));
    else p.reject(new Error(`type check failed in the worker: ${res.error}`));
  }

  /** A worker died: check what it owed in process. The next check starts a new worker. */
  private lost(w: Worker, err: unknown): void {
    if (this.worker === w) this.worker = undefined;
    const owed = [...this.pending.values()];
    this.pending.clear();
    for (const p of owed) {
      if (this.closed) {
        p.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      this.inProcess(p.items).then(p.resolve, p.reject);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(new Error('type checker closed'));
    this.pending.clear();
    if (w !== undefined) await w.terminate();
  }
}
