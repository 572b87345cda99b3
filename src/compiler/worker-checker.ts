import { Worker } from 'node:worker_threads';
import type { Diagnostic } from './typecheck.js';
import { TypeChecker } from './typecheck.js';
import type { CheckRequest, CheckResponse } from './worker-protocol.js';

const ENTRY = new URL('./typecheck-worker-entry.mjs', import.meta.url);

/**
 * Type checks in a worker thread, one at a time in order. The worker starts
 * (loading TypeScript) as soon as this is created, in parallel with the rest
 * of start-up. If the worker cannot start or dies, the
 * checks fall back to an in-process checker: slower for requests, never wrong.
 */
export class WorkerTypeChecker {
  private worker: Worker | undefined;
  private fallback: TypeChecker | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { items: CheckRequest['items']; resolve: (r: Map<string, Diagnostic[]>) => void; reject: (e: Error) => void }
  >();
  private closed = false;

  constructor() {
    try {
      const w = new Worker(ENTRY, { execArgv: [], stdout: false, stderr: false });
      w.unref();
      w.on('message', (res: CheckResponse) => this.settle(res));
      w.on('error', (err) => this.lost(err));
      w.on('exit', (code) => this.lost(new Error(`type-check worker exited with code ${code}`)));
      this.worker = w;
    } catch {
      this.worker = undefined;
    }
  }

  checkMany(items: ReadonlyArray<{ dir: string; entry: string }>): Promise<Map<string, Diagnostic[]>> {
    const w = this.worker;
    if (w === undefined) {
      this.fallback ??= new TypeChecker();
      try {
        return Promise.resolve(this.fallback.checkMany(items));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const id = this.nextId++;
    const req: CheckRequest = { id, items: items.map((i) => ({ dir: i.dir, entry: i.entry })) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { items: req.items, resolve, reject });
      w.ref(); // keep the process alive while a check is owed
      w.postMessage(req);
    });
  }

  private settle(res: CheckResponse): void {
    const p = this.pending.get(res.id);
    if (p === undefined) return;
    this.pending.delete(res.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (res.ok) p.resolve(new Map(res.results));
    else p.reject(new Error(`type check failed in the worker: ${res.error}`));
  }

  /** The worker is gone: answer what it owed in process, and keep checking in process from now on. */
  private lost(err: unknown): void {
    if (this.worker === undefined) return;
    this.worker = undefined;
    if (this.closed) {
      for (const p of this.pending.values()) p.reject(err instanceof Error ? err : new Error(String(err)));
      this.pending.clear();
      return;
    }
    this.fallback ??= new TypeChecker();
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      try {
        p.resolve(this.fallback.checkMany(p.items));
      } catch (e) {
        p.reject(e as Error);
      }
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
