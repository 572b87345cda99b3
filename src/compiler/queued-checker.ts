import path from 'node:path';
import { HostError } from '../errors/index.js';
import type { Checker } from './checker.js';
import type { Diagnostic } from './typecheck.js';
import type { CheckRequest, CheckResponse } from './worker-protocol.js';

/**
 * Checks a worker answers before it is replaced by a fresh one. The checker's
 * caches and V8's code for every program it built only grow; a worker's
 * memory is returned whole when it exits. The next check after a recycle pays
 * the cold start (about a second, on the worker's thread, never the serving one).
 */
const RECYCLE_AFTER = 200;
/** Default time a worker may sit idle before it is ended (its TypeScript program and caches go with it). */
const DEFAULT_IDLE_MS = 5 * 60_000;
/**
 * Idle time after the start-up batch (every plugin not built yet, in one
 * program): its program and TypeScript itself would otherwise double the
 * idle memory of a node for five minutes after every cold start.
 */
export const START_BATCH_IDLE_MS = 30_000;
/** Default time one check (or batch) may run, the start of a fresh worker included. */
export const DEFAULT_CHECK_TIMEOUT_MS = 60_000;
/** Default heap cap of the worker (old generation): a start-up batch of a few hundred plugins stays well below it. */
export const DEFAULT_CHECK_MEMORY_MB = 2048;

/** What happens to a checker's thread or process, reported to the queue that owns it. */
export interface EndpointEvents {
  message(res: CheckResponse): void;
  /** It ran out of its heap cap (the check it was running is the one that exhausted it). */
  exhausted(): void;
  /** It ended or failed otherwise. */
  lost(err: Error): void;
}

/**
 * A worker thread or a child process running `TypeChecker`s: the queue sends it checks and learns what becomes
 * of it through the `EndpointEvents` it was started with. None is reported after `end`.
 */
export interface CheckerEndpoint {
  post(req: CheckRequest): void;
  /** Keeps this process alive while a check is owed. */
  ref(): void;
  unref(): void;
  /** Ends it at once (its TypeScript may be stuck in a loop). */
  end(): Promise<void>;
}

export type StartEndpoint = (events: EndpointEvents, memoryMb: number) => CheckerEndpoint;

export interface QueuedCheckerOptions {
  /** A worker idle this long is ended (default five minutes). */
  idleMs?: number | undefined;
  /**
   * A check not answered this long after it started (a fresh worker's start included) is given up: the
   * worker is ended, the check fails with `PH_ERR_COMPILE_LIMIT`, and the checks queued behind it go to
   * a fresh worker. Type-level code can keep TypeScript busy for minutes; the node's other compiles must
   * not wait behind it.
   */
  timeoutMs?: number | undefined;
  /** Heap cap of the worker; the check that exhausts it fails with `PH_ERR_COMPILE_LIMIT` (the host lives on). */
  memoryMb?: number | undefined;
}

type Pending = {
  items: CheckRequest['items'];
  resolve: (r: Map<string, Diagnostic[]>) => void;
  reject: (e: Error) => void;
  /** Times the worker checking it was lost. */
  lost: number;
  /** The idle time that ends the worker if this is the last check answered (default: the checker's). */
  idleMs: number | undefined;
};

/** The check a worker is running (the oldest it owes: it answers in order) and its deadline. */
type Running = { id: number; timer: NodeJS.Timeout };

/**
 * Type checks in a worker thread or a child process (its endpoint, "the worker" below), one at a time in order. The worker starts on
 * the first check (a node that compiles nothing never loads TypeScript), ends
 * after `idleMs` without a check, and is recycled every `RECYCLE_AFTER` checks.
 * A check that outruns `timeoutMs` or exhausts the worker's heap fails with
 * `PH_ERR_COMPILE_LIMIT`, and those queued behind it go to a fresh worker. A
 * check whose worker died otherwise is sent once more to a fresh worker; a
 * second loss fails it with a coded error. Nothing is ever checked in the
 * serving thread.
 */
export class QueuedChecker implements Checker {
  private worker: CheckerEndpoint | undefined;
  private nextId = 1;
  private answered = 0;
  private readonly pending = new Map<number, Pending>();
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private current: Running | undefined;
  private readonly idleMs: number;
  private readonly timeoutMs: number;
  private readonly memoryMb: number;

  constructor(
    private readonly start: StartEndpoint,
    o: QueuedCheckerOptions = {},
  ) {
    this.idleMs = o.idleMs ?? DEFAULT_IDLE_MS;
    this.timeoutMs = o.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    this.memoryMb = o.memoryMb ?? DEFAULT_CHECK_MEMORY_MB;
  }

  /** True while a worker (and so a loaded TypeScript) exists. */
  get running(): boolean {
    return this.worker !== undefined;
  }

  private spawn(): CheckerEndpoint {
    const w: CheckerEndpoint = this.start(
      {
        message: (res) => this.settle(w, res),
        exhausted: () => this.giveUp(w, `exhausted the checker's ${this.memoryMb} MB heap`),
        lost: (err) => this.lost(w, err),
      },
      this.memoryMb,
    );
    w.unref();
    this.answered = 0;
    return w;
  }

  /**
   * Checks `items` in one program. `idleMs` overrides the idle time after this
   * check, when it is the last one answered: the start-up batch uses a short
   * one, as a start does not announce more checks the way an edit does.
   */
  checkMany(items: ReadonlyArray<{ dir: string; entry: string }>, idleMs?: number): Promise<Map<string, Diagnostic[]>> {
    if (this.closed) return Promise.reject(new Error('type checker closed'));
    return new Promise((resolve, reject) => {
      this.send({ items: items.map((i) => ({ dir: i.dir, entry: i.entry })), resolve, reject, lost: 0, idleMs });
    });
  }

  /** Starts the worker, which loads TypeScript and parses what every check needs, before the checks come. */
  warmUp(idleMs?: number): void {
    this.checkMany([], idleMs).catch(() => undefined);
  }

  private send(p: Pending): void {
    clearTimeout(this.idleTimer);
    this.worker ??= this.spawn();
    const w = this.worker;
    const id = this.nextId++;
    this.pending.set(id, p);
    w.ref(); // keep the process alive while a check is owed
    w.post({ id, items: p.items });
    if (this.current === undefined) this.startClock(w, id);
  }

  /** The worker starts on check `id` now (it answers in order): its deadline runs from here. */
  private startClock(w: CheckerEndpoint, id: number): void {
    const timer = setTimeout(() => this.giveUp(w, `did not finish within ${this.timeoutMs} ms`), this.timeoutMs);
    timer.unref(); // the worker, ref'd while a check is owed, keeps the process alive
    this.current = { id, timer };
  }

  private stopClock(): void {
    if (this.current !== undefined) clearTimeout(this.current.timer);
    this.current = undefined;
  }

  /**
   * The running check went past a limit: it fails with `PH_ERR_COMPILE_LIMIT`, the worker is ended (its
   * TypeScript may be stuck in a loop), and the checks queued behind it go to a fresh worker, not
   * counted as lost: they never ran.
   */
  private giveUp(w: CheckerEndpoint, what: string): void {
    if (this.worker !== w || this.current === undefined) return;
    const id = this.current.id;
    this.stopClock();
    const p = this.pending.get(id);
    this.pending.delete(id);
    this.end(w);
    const queued = [...this.pending.values()];
    this.pending.clear();
    for (const q of queued) this.send(q);
    if (p === undefined) return;
    const names = p.items.map((i) => path.basename(i.dir)).join(', ') || '(warm-up)';
    p.reject(
      new HostError(
        'PH_ERR_COMPILE_LIMIT',
        `the type check of ${names} ${what} (TYPECHECK_TIMEOUT_MS, TYPECHECK_MEMORY_MB); the checker was restarted`,
      ),
    );
  }

  private settle(w: CheckerEndpoint, res: CheckResponse): void {
    const p = this.pending.get(res.id);
    if (p === undefined) return;
    this.pending.delete(res.id);
    this.answered++;
    if (this.current?.id === res.id) {
      this.stopClock();
      const next = this.pending.keys().next();
      if (!next.done) this.startClock(w, next.value);
    }
    if (this.pending.size === 0) {
      w.unref();
      if (this.answered >= RECYCLE_AFTER && this.worker === w) this.end(w);
      else this.scheduleIdleEnd(w, Math.min(p.idleMs ?? this.idleMs, this.idleMs));
    }
    if (res.ok) p.resolve(new Map(res.results));
    else p.reject(new Error(`type check failed in the worker: ${res.error}`));
  }

  private scheduleIdleEnd(w: CheckerEndpoint, idleMs: number): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker === w && this.pending.size === 0) this.end(w);
    }, idleMs);
    this.idleTimer.unref();
  }

  private end(w: CheckerEndpoint): void {
    if (this.worker === w) {
      this.worker = undefined;
      this.stopClock();
    }
    void w.end();
  }

  /** A worker died: send what it owed to a fresh one, once; a check lost twice fails. */
  private lost(w: CheckerEndpoint, err: unknown): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    this.stopClock();
    const owed = [...this.pending.values()];
    this.pending.clear();
    for (const p of owed) {
      if (this.closed || p.lost >= 1) {
        p.reject(
          new HostError('PH_ERR_INTERNAL', `the type-check worker ended twice while checking: ${(err as Error).message ?? String(err)}`),
        );
        continue;
      }
      this.send({ ...p, lost: p.lost + 1 });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.stopClock();
    const w = this.worker;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(new Error('type checker closed'));
    this.pending.clear();
    if (w !== undefined) await w.end();
  }
}
