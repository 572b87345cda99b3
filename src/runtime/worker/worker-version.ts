import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { JsonObject } from '../../config/plugins/index.js';
import { HostError } from '../../errors/index.js';
import type { HealthResult, PluginMetadata } from '../../sdk/index.js';
import { InflightVersion } from '../inflight.js';
import type { LoadedVersion, LoadRequest, RegisteredRoute, RequestHandler } from '../types.js';
import { answerProblem, readRequest } from './forward.js';
import type { FromWorker, ToWorker, WireRequest } from './protocol.js';
import { type Forwarded, observe, type WorkerStats } from './stats.js';
import { bootOf, type DeathReason, fromWire, type Ready, ThreadHandle } from './thread-handle.js';
import { moveWorker, type WorkerStatus } from './worker-status.js';

export interface WorkerLimits {
  memoryMb: number;
  /** Per-request deadline: past it the client gets 504. */
  requestTimeoutMs: number;
  /** A worker whose heartbeat stops for this long is ended. */
  stallTimeoutMs: number;
  /** This many deaths within `crashWindowMs` stop the restarts. */
  crashLimit: number;
  crashWindowMs: number;
  /** Largest request body forwarded. */
  bodyLimit: number;
  logLevel: string;
}

interface Pending {
  res: ServerResponse;
  deadline: number;
  started: number;
}

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** Writes a log line the worker produced with the host's logger (it adds the plugin's name). */
function relayLog(log: FastifyBaseLogger, line: string): void {
  try {
    const { level, msg, time: _t, pid: _p, hostname: _h, ...fields } = JSON.parse(line) as Record<string, unknown>;
    const name = LEVELS[Number(level)] ?? 'info';
    log[name](fields, typeof msg === 'string' ? msg : '');
  } catch {
    log.info({ line }, 'unreadable log line from the plugin worker');
  }
}

function hookTimeout(name: string, hook: 'healthCheck' | 'onConfigChange', timeoutMs: number): HostError {
  return new HostError('PH_ERR_HOOK_TIMEOUT', `${name}: ${hook}() did not finish within ${timeoutMs} ms`, { details: { hook } });
}

/**
 * Starts a worker for `req` and waits until it is ready (loaded, initialized,
 * routes registered) or refuses: the load's coded error, or
 * `PH_ERR_HOOK_TIMEOUT` when it did not answer in time (a hook that never
 * returns, even `while (true) {}`: the worker is ended).
 */
function startThread(
  req: LoadRequest,
  limits: WorkerLimits,
  onMessage: (msg: FromWorker) => void,
  onEnd: (reason: DeathReason | 'stopped', detail: string) => void,
): Promise<{ thread: ThreadHandle; ready: Ready }> {
  let boot: ReturnType<typeof bootOf>;
  try {
    boot = bootOf(req, 'serve', limits.logLevel);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    let thread: ThreadHandle | undefined;
    const fail = (err: HostError) => {
      if (settled) return;
      settled = true;
      thread?.end('timeout');
      reject(err);
    };
    // First the worker starts (Node's modules, Fastify): bounded generously. Then the plugin's own code runs,
    // bounded by its hook limits: a hook stuck even in `while (true) {}` never answers, and the worker is ended.
    const loadMs = 2 * req.hookTimeoutMs + 1000;
    let timer = setTimeout(
      () => fail(new HostError('PH_ERR_PLUGIN_CRASHED', `${req.name}: its worker did not start within ${BOOT_TIMEOUT_MS} ms`)),
      BOOT_TIMEOUT_MS,
    );
    const booted = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          fail(
            new HostError(
              'PH_ERR_HOOK_TIMEOUT',
              `${req.name}: initialize() or registerRoutes() did not return within ${loadMs} ms; its worker was ended`,
              {
                details: { hook: 'initialize' },
              },
            ),
          ),
        loadMs,
      );
    };
    thread = new ThreadHandle(
      boot,
      { memoryMb: limits.memoryMb, beatMs: BEAT_MS },
      (msg) => {
        if (settled) return onMessage(msg);
        if (msg.t === 'log') return onMessage(msg);
        if (msg.t === 'booted') booted();
        else if (msg.t === 'ready') {
          settled = true;
          clearTimeout(timer);
          resolve({
            thread: thread as ThreadHandle,
            ready: { metadata: msg.metadata, routes: msg.routes, sharedSchemas: msg.sharedSchemas },
          });
        } else if (msg.t === 'failed') {
          settled = true;
          clearTimeout(timer);
          thread?.end('stopped');
          reject(fromWire(msg.error));
        }
      },
      (reason, detail) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(
            new HostError('PH_ERR_PLUGIN_CRASHED', `${req.name}: its worker ended while loading (${detail})`, { details: { reason } }),
          );
          return;
        }
        onEnd(reason, detail);
      },
    );
  });
}

/** Time a new worker gets to start (load Node's modules and Fastify) before the plugin's code runs. */
const BOOT_TIMEOUT_MS = 30_000;
/** How often a worker beats; a stall is noticed within the stall timeout plus this. */
const BEAT_MS = 250;

/**
 * One plugin version running in worker threads. The serving thread keeps its
 * routes; `handle` forwards each request (method, URL, headers, the whole
 * body) over the worker's port and writes the answer back, whole or streamed.
 * Limits: a per-request deadline (504), a heartbeat (a stalled worker is
 * ended, its requests get 503), a heap cap. A worker that dies is restarted
 * with backoff from the same artifact, its routes answering 503 with
 * `Retry-After` meanwhile; a crash loop stops the restarts and reports the
 * version failed (`failure`, the `onFailed` listeners).
 */
export class WorkerVersion extends InflightVersion implements LoadedVersion {
  readonly runtime = 'worker';
  readonly loadedAt = new Date();
  readonly metadata: PluginMetadata;
  readonly routes: readonly RegisteredRoute[];
  private readonly schemas: unknown[];
  private thread: ThreadHandle | undefined;
  private status: WorkerStatus = 'up';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Answers awaited from the worker (health checks, configuration changes), by message id. */
  private readonly replies = new Map<number, (r: unknown) => void>();
  private unloadWaiter: ((error: HostError | undefined) => void) | undefined;
  private readonly deaths: number[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAfterMs = 0;
  private readonly sweeper: NodeJS.Timeout;
  private readonly failedListeners: Array<(err: HostError) => void> = [];
  /** Set once the restarts stopped (a crash loop): the version can serve no more. */
  failure: HostError | undefined;
  /** Deaths of this version's workers. */
  private deathCount = 0;
  private readonly forwarded: Forwarded;

  private constructor(
    /** What the version was loaded with; its `config` follows `reconfigure`, so a restarted worker gets the current one. */
    private req: LoadRequest,
    private readonly limits: WorkerLimits,
    private readonly stats: WorkerStats,
    ready: Ready,
  ) {
    super();
    this.forwarded = stats.forwardedOf(req.name);
    this.metadata = ready.metadata;
    this.routes = ready.routes;
    this.schemas = ready.sharedSchemas;
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(50, Math.min(1000, Math.floor(Math.min(limits.requestTimeoutMs, limits.stallTimeoutMs) / 4))),
    );
    this.sweeper.unref();
  }

  /** Starts the version's first worker; resolves once it serves, or rejects with the load's coded error. */
  static async start(req: LoadRequest, limits: WorkerLimits, stats: WorkerStats): Promise<WorkerVersion> {
    let version: WorkerVersion | undefined;
    const early: FromWorker[] = [];
    const { thread, ready } = await startThread(
      req,
      limits,
      (msg) => (version === undefined ? early.push(msg) : version.onMessage(msg)),
      (reason, detail) => version?.onEnd(reason, detail),
    );
    version = new WorkerVersion(req, limits, stats, ready);
    version.thread = thread;
    for (const m of early) version.onMessage(m);
    return version;
  }

  get name(): string {
    return this.req.name;
  }

  get hash(): string {
    return this.req.hash;
  }

  get version(): string {
    return this.metadata.version;
  }

  get log(): FastifyBaseLogger {
    return this.req.log;
  }

  /** The worker's state and counters, for the API and metrics. */
  details(): { state: string; restarts: number; heap_bytes: number; event_loop_lag_ms: number } {
    return {
      state: this.status,
      restarts: this.deathCount,
      heap_bytes: this.thread?.heapBytes ?? 0,
      event_loop_lag_ms: this.thread?.lagMs ?? 0,
    };
  }

  onFailed(listener: (err: HostError) => void): void {
    if (this.failure !== undefined) listener(this.failure);
    else this.failedListeners.push(listener);
  }

  readonly handle: RequestHandler = (req, res) => {
    const thread = this.thread;
    if (this.status !== 'up' || thread === undefined) {
      const retry = Math.max(1, Math.ceil(this.retryAfterMs / 1000));
      answerProblem(
        res,
        'PH_ERR_PLUGIN_UNAVAILABLE',
        `plugin ${this.name} is ${this.status === 'failed' ? 'stopped after repeated crashes' : 'restarting'}`,
        {
          'retry-after': String(retry),
        },
      );
      return;
    }
    const id = this.nextId++;
    const now = performance.now();
    this.pending.set(id, { res, deadline: now + this.limits.requestTimeoutMs, started: now });
    readRequest(req, res, id, this.limits.bodyLimit, (msg: WireRequest) => {
      if (!this.pending.has(id)) return;
      if (this.thread !== thread) {
        this.fail(id, 'PH_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is restarting`);
        return;
      }
      thread.post(msg);
    });
  };

  private finish(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    observe(this.forwarded, performance.now() - p.started);
    return p;
  }

  private fail(id: number, code: 'PH_ERR_PLUGIN_UNAVAILABLE' | 'PH_ERR_PLUGIN_TIMEOUT', detail: string): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    answerProblem(p.res, code, detail, code === 'PH_ERR_PLUGIN_UNAVAILABLE' ? { 'retry-after': '1' } : {});
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.t) {
      case 'res': {
        const p = this.finish(msg.id);
        if (p === undefined || p.res.destroyed) return;
        p.res.writeHead(msg.status, msg.headers);
        p.res.end(
          typeof msg.body === 'string' || msg.body === undefined
            ? msg.body
            : Buffer.from(msg.body.buffer, msg.body.byteOffset, msg.body.byteLength),
        );
        return;
      }
      case 'head': {
        const p = this.pending.get(msg.id);
        if (p === undefined || p.res.destroyed) return;
        // a streamed answer has started: the deadline no longer applies to it
        p.deadline = Number.POSITIVE_INFINITY;
        p.res.writeHead(msg.status, msg.headers);
        return;
      }
      case 'chunk': {
        const p = this.pending.get(msg.id);
        if (p === undefined || p.res.destroyed) return;
        p.res.write(typeof msg.data === 'string' ? msg.data : Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
        return;
      }
      case 'end': {
        const p = this.finish(msg.id);
        if (p !== undefined && !p.res.destroyed) p.res.end();
        return;
      }
      case 'health': {
        this.reply(
          msg.id,
          msg.error !== undefined ? fromWire(msg.error) : { ok: msg.ok, ...(msg.detail === undefined ? {} : { detail: msg.detail }) },
        );
        return;
      }
      case 'configured': {
        this.reply(msg.id, msg.error !== undefined ? fromWire(msg.error) : msg.handled);
        return;
      }
      case 'unloaded':
        this.unloadWaiter?.(msg.error === undefined ? undefined : fromWire(msg.error));
        return;
      case 'log':
        relayLog(this.req.log, msg.line);
        return;
    }
  }

  /** The per-request deadline and the heartbeat, checked together. */
  private sweep(): void {
    const now = performance.now();
    for (const [id, p] of this.pending) {
      if (p.res.destroyed) this.pending.delete(id);
      else if (now > p.deadline)
        this.fail(id, 'PH_ERR_PLUGIN_TIMEOUT', `plugin ${this.name} did not answer within ${this.limits.requestTimeoutMs} ms`);
    }
    const t = this.thread;
    if (this.status === 'up' && t !== undefined && t.stalled(this.limits.stallTimeoutMs, Date.now())) {
      this.req.log.error(
        { plugin: this.name, reason: 'stall' },
        `plugin ${this.name}: its worker did not answer its heartbeat for ${this.limits.stallTimeoutMs} ms; ending it`,
      );
      t.end('stall');
    }
  }

  /** The worker ended without being asked: answer what it owed, then restart it (or stop, in a crash loop). */
  private onEnd(reason: DeathReason | 'stopped', detail: string): void {
    if (reason === 'stopped' || this.status === 'stopping') return;
    this.thread = undefined;
    for (const id of [...this.pending.keys()]) this.fail(id, 'PH_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name}'s worker ended (${detail})`);
    for (const id of [...this.replies.keys()]) {
      this.reply(id, new HostError('PH_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name}'s worker ended (${detail})`));
    }
    this.deathCount++;
    this.stats.death(this.name, reason);
    const now = Date.now();
    this.deaths.push(now);
    while (this.deaths.length > 0 && now - (this.deaths[0] as number) > this.limits.crashWindowMs) this.deaths.shift();
    if (this.deaths.length >= this.limits.crashLimit) {
      this.status = moveWorker(this.name, this.status, 'failed');
      this.failure = new HostError(
        'PH_ERR_PLUGIN_CRASHED',
        `${this.name}: its worker ended ${this.deaths.length} times within ${this.limits.crashWindowMs} ms (last: ${detail}); not restarted`,
        { details: { reason, deaths: this.deaths.length } },
      );
      this.req.log.error({ plugin: this.name, reason, code: this.failure.code }, this.failure.message);
      for (const l of this.failedListeners.splice(0)) l(this.failure);
      return;
    }
    this.status = moveWorker(this.name, this.status, 'restarting');
    this.retryAfterMs = Math.min(5000, 100 * 2 ** (this.deaths.length - 1));
    this.req.log.warn(
      { plugin: this.name, reason, retryInMs: this.retryAfterMs },
      `plugin ${this.name}: its worker ended (${detail}); restarting in ${this.retryAfterMs} ms`,
    );
    this.retryTimer = setTimeout(() => void this.restart(), this.retryAfterMs);
    this.retryTimer.unref();
  }

  private async restart(): Promise<void> {
    if (this.status !== 'restarting') return;
    try {
      let mine: ThreadHandle | undefined;
      const { thread } = await startThread(
        this.req,
        this.limits,
        (msg) => this.onMessage(msg),
        (reason, detail) => {
          if (mine !== undefined && this.thread === mine) this.onEnd(reason, detail);
        },
      );
      mine = thread;
      if (this.status !== 'restarting') {
        thread.end('stopped');
        return;
      }
      this.thread = thread;
      this.status = moveWorker(this.name, this.status, 'up');
      this.req.log.info({ plugin: this.name }, `plugin ${this.name}: worker restarted`);
    } catch (err) {
      // the same code failed to start: one more death
      this.onEnd('exception', `restart failed: ${(err as Error).message}`);
    }
  }

  health(timeoutMs: number): Promise<HealthResult> {
    const t = this.thread;
    if (this.status !== 'up' || t === undefined) {
      return Promise.reject(new HostError('PH_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is ${this.status}`));
    }
    return this.ask<HealthResult>(
      t,
      (id) => ({ t: 'health', id, timeoutMs }),
      timeoutMs + 500,
      () => hookTimeout(this.name, 'healthCheck', timeoutMs),
    );
  }

  /**
   * Calls the plugin's `onConfigChange` in its worker. Resolves false when the plugin has none, or when
   * its worker is not up (restarting): the manager then loads a new instance with the configuration.
   */
  async reconfigure(config: JsonObject, timeoutMs: number): Promise<boolean> {
    const t = this.thread;
    if (this.status !== 'up' || t === undefined) return false;
    const handled = await this.ask<boolean>(
      t,
      (id) => ({ t: 'config', id, config, timeoutMs }),
      timeoutMs + 500,
      () => {
        // the hook may still be running in there: end the worker rather than leave it half-configured
        t.end('timeout');
        return hookTimeout(this.name, 'onConfigChange', timeoutMs);
      },
    );
    if (handled) this.req = { ...this.req, config };
    return handled;
  }

  /** Posts a message carrying a new id and waits for the worker's answer to it, or `timedOut()` after `waitMs`. */
  private ask<T>(t: ThreadHandle, message: (id: number) => ToWorker, waitMs: number, timedOut: () => HostError): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        reject(timedOut());
      }, waitMs);
      this.replies.set(id, (r) => {
        clearTimeout(timer);
        if (r instanceof HostError) reject(r);
        else resolve(r as T);
      });
      t.post(message(id));
    });
  }

  private reply(id: number, r: unknown): void {
    const w = this.replies.get(id);
    this.replies.delete(id);
    w?.(r);
  }

  /** Runs `cleanup` in the worker (bounded: a worker that does not answer is ended), then ends the worker. Never throws. */
  async unload(timeoutMs: number): Promise<{ error?: HostError }> {
    const wasUp = this.status === 'up';
    this.status = moveWorker(this.name, this.status, 'stopping');
    clearInterval(this.sweeper);
    clearTimeout(this.retryTimer);
    const t = this.thread;
    this.thread = undefined;
    for (const id of [...this.pending.keys()]) this.fail(id, 'PH_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is unloading`);
    if (t === undefined || !wasUp) {
      t?.end('stopped');
      return {};
    }
    const error = await new Promise<HostError | undefined>((resolve) => {
      const timer = setTimeout(() => {
        resolve(
          new HostError('PH_ERR_HOOK_TIMEOUT', `${this.name}: cleanup() did not finish within ${timeoutMs} ms`, {
            details: { hook: 'cleanup' },
          }),
        );
      }, timeoutMs + 1000);
      this.unloadWaiter = (e) => {
        clearTimeout(timer);
        resolve(e);
      };
      t.post({ t: 'unload', timeoutMs });
    });
    this.unloadWaiter = undefined;
    t.end('stopped');
    if (error !== undefined) this.req.log.error({ err: error, code: error.code }, `cleanup failed: ${error.message}`);
    return error === undefined ? {} : { error };
  }

  sharedSchemas(): unknown[] {
    return this.schemas;
  }
}
