import type { FastifyBaseLogger } from 'fastify';
import type { JsonObject } from '../../config/plugins/index.js';
import { HostError } from '../../errors/index.js';
import type { HealthResult, PluginMetadata } from '../../sdk/index.js';
import { InflightVersion } from '../inflight.js';
import type { LoadedVersion, LoadRequest, RegisteredRoute, RequestHandler } from '../types.js';
import { PendingAnswers } from './answers.js';
import { CrashPolicy } from './crash-policy.js';
import { answerProblem, readRequest } from './forward.js';
import { type DeathReason, fromWire, type HandleFactory, type PluginHandle, type Ready } from './handle.js';
import type { FromWorker, ToWorker, WireRequest } from './protocol.js';
import { relayLog } from './relay-log.js';
import { startInstance } from './start.js';
import type { WorkerStats } from './stats.js';
import { moveWorker, type WorkerStatus } from './status.js';

export interface WorkerLimits {
  /** Heap and external memory of one instance (a process: its whole resident memory). */
  memoryMb: number;
  /** Per-request deadline: past it the client gets 504 (a stream: past it without moving, the request is cut). */
  requestTimeoutMs: number;
  /** An instance whose heartbeat stops for this long is ended. */
  stallTimeoutMs: number;
  /** This many deaths within `crashWindowMs` stop the restarts. */
  crashLimit: number;
  crashWindowMs: number;
  /** Largest request body forwarded. */
  bodyLimit: number;
  logLevel: string;
}

function hookTimeout(name: string, hook: 'healthCheck' | 'onConfigChange', timeoutMs: number): HostError {
  return new HostError('PH_ERR_HOOK_TIMEOUT', `${name}: ${hook}() did not finish within ${timeoutMs} ms`, { details: { hook } });
}

/**
 * One plugin version running in an instance the serving thread supervises (a
 * worker thread, a child process: `factory` starts one). The serving thread
 * keeps its routes; `handle` forwards each request (method, URL, headers, the
 * whole body) and writes the answer back, whole or streamed. Limits: a
 * per-request deadline (504), a heartbeat (a stalled instance is ended, its
 * requests get 503), a memory cap. An instance that dies is restarted with
 * backoff from the same artifact, its routes answering 503 with `Retry-After`
 * meanwhile; a crash loop stops the restarts and reports the version failed
 * (`failure`, the `onFailed` listeners).
 */
export class SupervisedVersion extends InflightVersion implements LoadedVersion {
  readonly loadedAt = new Date();
  readonly metadata: PluginMetadata;
  readonly routes: readonly RegisteredRoute[];
  private readonly schemas: unknown[];
  private instance: PluginHandle | undefined;
  private status: WorkerStatus = 'up';
  private nextId = 1;
  private readonly answers: PendingAnswers;
  /** Answers awaited from the instance (health checks, configuration changes), by message id. */
  private readonly replies = new Map<number, (r: unknown) => void>();
  private unloadWaiter: ((error: HostError | undefined) => void) | undefined;
  private readonly crashes: CrashPolicy;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAfterMs = 0;
  private readonly sweeper: NodeJS.Timeout;
  private readonly failedListeners: Array<(err: HostError) => void> = [];
  /** Set once the restarts stopped (a crash loop): the version can serve no more. */
  failure: HostError | undefined;

  private constructor(
    readonly runtime: string,
    private readonly factory: HandleFactory,
    /** What the version was loaded with; its `config` follows `reconfigure`, so a restarted instance gets the current one. */
    private req: LoadRequest,
    private readonly limits: WorkerLimits,
    private readonly stats: WorkerStats,
    ready: Ready,
  ) {
    super();
    this.answers = new PendingAnswers(req.name, limits.requestTimeoutMs, stats.forwardedOf(req.name), req.log);
    this.crashes = new CrashPolicy(limits);
    this.metadata = ready.metadata;
    this.routes = ready.routes;
    this.schemas = ready.sharedSchemas;
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(50, Math.min(1000, Math.floor(Math.min(limits.requestTimeoutMs, limits.stallTimeoutMs) / 4))),
    );
    this.sweeper.unref();
  }

  /** Starts the version's first instance; resolves once it serves, or rejects with the load's coded error. */
  static async start(
    runtime: string,
    factory: HandleFactory,
    req: LoadRequest,
    limits: WorkerLimits,
    stats: WorkerStats,
  ): Promise<SupervisedVersion> {
    let version: SupervisedVersion | undefined;
    const early: FromWorker[] = [];
    const { handle, ready } = await startInstance(
      factory,
      req,
      limits,
      (msg) => (version === undefined ? early.push(msg) : version.onMessage(msg)),
      (reason, detail) => version?.onEnd(reason, detail),
    );
    version = new SupervisedVersion(runtime, factory, req, limits, stats, ready);
    version.instance = handle;
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

  /** The instance's state and counters, for the API and metrics. */
  details(): { state: string; restarts: number; heap_bytes: number; external_bytes: number; event_loop_lag_ms: number } {
    return {
      state: this.status,
      restarts: this.crashes.total,
      heap_bytes: this.instance?.heapBytes ?? 0,
      external_bytes: this.instance?.externalBytes ?? 0,
      event_loop_lag_ms: this.instance?.lagMs ?? 0,
    };
  }

  onFailed(listener: (err: HostError) => void): void {
    if (this.failure !== undefined) listener(this.failure);
    else this.failedListeners.push(listener);
  }

  readonly handle: RequestHandler = (req, res) => {
    const instance = this.instance;
    if (this.status !== 'up' || instance === undefined) {
      const retry = Math.max(1, Math.ceil(this.retryAfterMs / 1000));
      const why = this.status === 'failed' ? 'stopped after repeated crashes' : 'restarting';
      answerProblem(res, 'PH_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is ${why}`, { 'retry-after': String(retry) });
      return;
    }
    const id = this.nextId++;
    this.answers.add(id, res, instance);
    readRequest(req, res, id, this.limits.bodyLimit, (msg: WireRequest) => {
      if (!this.answers.has(id)) return;
      if (this.instance !== instance) {
        this.answers.fail(id, 'PH_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is restarting`);
        return;
      }
      instance.post(msg);
    });
  };

  /** Everything the instance says goes through here; a malformed message is logged and ignored, never thrown. */
  private onMessage(msg: FromWorker): void {
    try {
      switch (msg.t) {
        case 'res':
        case 'head':
        case 'chunk':
        case 'end':
          this.answers.relay(msg);
          return;
        case 'health':
          this.reply(
            msg.id,
            msg.error !== undefined ? fromWire(msg.error) : { ok: msg.ok, ...(msg.detail === undefined ? {} : { detail: msg.detail }) },
          );
          return;
        case 'configured':
          this.reply(msg.id, msg.error !== undefined ? fromWire(msg.error) : msg.handled === true);
          return;
        case 'unloaded':
          this.unloadWaiter?.(msg.error === undefined ? undefined : fromWire(msg.error));
          return;
        case 'log':
          relayLog(this.req.log, msg.line);
          return;
      }
    } catch (err) {
      this.req.log.error({ plugin: this.name, err }, `plugin ${this.name}: a message from its ${this.runtime} could not be handled`);
    }
  }

  /** The per-request deadlines, the heartbeat and the memory cap, checked together. */
  private sweep(): void {
    this.answers.sweep();
    const t = this.instance;
    if (this.status !== 'up' || t === undefined) return;
    if (t.stalled(this.limits.stallTimeoutMs, Date.now())) {
      this.req.log.error(
        { plugin: this.name, reason: 'stall' },
        `plugin ${this.name}: its ${this.runtime} did not answer its heartbeat for ${this.limits.stallTimeoutMs} ms; ending it`,
      );
      t.end('stall');
    } else if (t.overMemory()) {
      this.req.log.error(
        { plugin: this.name, reason: 'memory' },
        `plugin ${this.name}: its ${this.runtime} holds more than PLUGIN_MEMORY_MB (${this.limits.memoryMb} MB); ending it`,
      );
      t.end('memory');
    }
  }

  /** The instance ended without being asked: answer what it owed, then restart it (or stop, in a crash loop). */
  private onEnd(reason: DeathReason | 'stopped', detail: string): void {
    if (reason === 'stopped' || this.status === 'stopping') return;
    this.instance = undefined;
    const ended = `plugin ${this.name}'s ${this.runtime} ended (${detail})`;
    for (const id of this.answers.ids()) this.answers.fail(id, 'PH_ERR_PLUGIN_UNAVAILABLE', ended);
    for (const id of [...this.replies.keys()]) this.reply(id, new HostError('PH_ERR_PLUGIN_UNAVAILABLE', ended));
    this.stats.death(this.name, reason);
    const next = this.crashes.death(this.name, reason, detail);
    if ('failure' in next) {
      this.status = moveWorker(this.name, this.status, 'failed');
      this.failure = next.failure;
      this.req.log.error({ plugin: this.name, reason, code: next.failure.code }, next.failure.message);
      for (const l of this.failedListeners.splice(0)) l(next.failure);
      return;
    }
    this.status = moveWorker(this.name, this.status, 'restarting');
    this.retryAfterMs = next.retryInMs;
    this.req.log.warn(
      { plugin: this.name, reason, retryInMs: this.retryAfterMs },
      `plugin ${this.name}: its ${this.runtime} ended (${detail}); restarting in ${this.retryAfterMs} ms`,
    );
    this.retryTimer = setTimeout(() => void this.restart(), this.retryAfterMs);
    this.retryTimer.unref();
  }

  private async restart(): Promise<void> {
    if (this.status !== 'restarting') return;
    try {
      let mine: PluginHandle | undefined;
      const { handle } = await startInstance(
        this.factory,
        this.req,
        this.limits,
        (msg) => this.onMessage(msg),
        (reason, detail) => {
          if (mine !== undefined && this.instance === mine) this.onEnd(reason, detail);
        },
      );
      mine = handle;
      if (this.status !== 'restarting') {
        handle.end('stopped');
        return;
      }
      this.instance = handle;
      this.status = moveWorker(this.name, this.status, 'up');
      this.req.log.info({ plugin: this.name }, `plugin ${this.name}: ${this.runtime} restarted`);
    } catch (err) {
      // the same code failed to start: one more death
      this.onEnd('exception', `restart failed: ${(err as Error).message}`);
    }
  }

  health(timeoutMs: number): Promise<HealthResult> {
    const t = this.instance;
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
   * Calls the plugin's `onConfigChange` in its instance. Resolves false when the plugin has none, or when
   * its instance is not up (restarting): the manager then loads a new instance with the configuration.
   */
  async reconfigure(config: JsonObject, timeoutMs: number): Promise<boolean> {
    const t = this.instance;
    if (this.status !== 'up' || t === undefined) return false;
    const handled = await this.ask<boolean>(
      t,
      (id) => ({ t: 'config', id, config, timeoutMs }),
      timeoutMs + 500,
      () => {
        // the hook may still be running in there: end the instance rather than leave it half-configured
        t.end('timeout');
        return hookTimeout(this.name, 'onConfigChange', timeoutMs);
      },
    );
    if (handled) this.req = { ...this.req, config };
    return handled;
  }

  /** Posts a message carrying a new id and waits for the instance's answer to it, or `timedOut()` after `waitMs`. */
  private ask<T>(t: PluginHandle, message: (id: number) => ToWorker, waitMs: number, timedOut: () => HostError): Promise<T> {
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

  /** Runs `cleanup` in the instance (bounded: one that does not answer is ended), then ends it. Never throws. */
  async unload(timeoutMs: number): Promise<{ error?: HostError }> {
    const wasUp = this.status === 'up';
    this.status = moveWorker(this.name, this.status, 'stopping');
    clearInterval(this.sweeper);
    clearTimeout(this.retryTimer);
    const t = this.instance;
    this.instance = undefined;
    for (const id of this.answers.ids()) this.answers.fail(id, 'PH_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is unloading`);
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
