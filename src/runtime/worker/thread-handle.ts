import { Worker } from 'node:worker_threads';
import { SECRET_SETTINGS } from '../../config/index.js';
import { ERROR_CODES, type ErrorCode, HostError } from '../../errors/index.js';
import type { PluginMetadata } from '../../sdk/index.js';
import { workerModule } from '../../worker-module.js';
import type { LoadRequest, RegisteredRoute } from '../types.js';
import {
  type FromWorker,
  STAT_BEAT,
  STAT_HEAP_KB,
  STAT_LAG_MS,
  STAT_SLOTS,
  type ToWorker,
  type WireError,
  type WorkerBoot,
} from './protocol.js';

const ENTRY = workerModule(import.meta.url, 'thread');

export interface ThreadLimits {
  /** Heap cap of the worker (`resourceLimits.maxOldGenerationSizeMb`). */
  memoryMb: number;
  /** How often the worker beats. */
  beatMs: number;
}

export interface Ready {
  metadata: PluginMetadata;
  routes: RegisteredRoute[];
  sharedSchemas: unknown[];
}

/** Why a worker ended, as metrics and messages name it. */
export type DeathReason = 'stall' | 'memory' | 'exception' | 'exit' | 'timeout';

/** What a worker for `req` starts with (the bundle, the limits of its hooks, its configuration). */
export function bootOf(req: LoadRequest, mode: WorkerBoot['mode'], logLevel: string): Omit<WorkerBoot, 'stats' | 'beatMs'> {
  if (req.code.kind !== 'bundle') {
    throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `${req.name}: a static plugin runs in the serving thread only`);
  }
  return {
    mode,
    name: req.name,
    hash: req.hash,
    bundle: req.code.bundle,
    filename: req.code.filename,
    sourceDir: req.sourceDir,
    hookTimeoutMs: req.hookTimeoutMs,
    config: req.config,
    logLevel,
  };
}

export function fromWire(e: WireError): HostError {
  const code = (e.code in ERROR_CODES ? e.code : 'PH_ERR_INTERNAL') as ErrorCode;
  return new HostError(code, e.message, e.details === undefined ? undefined : { details: e.details });
}

/** The environment a plugin's worker gets: the host's, without any of the host's secrets. */
function workerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of SECRET_SETTINGS) {
    delete env[name];
    delete env[`${name}_FILE`];
  }
  return env;
}

/**
 * One worker thread running one plugin version: started, told what to do,
 * and ended. Reports every message and its own end to its owner; the counters
 * it shares (heartbeat, heap, event-loop delay) are read without a message.
 */
export class ThreadHandle {
  readonly worker: Worker;
  private readonly stats: Int32Array;
  private lastBeat = 0;
  private lastBeatAt = Date.now();
  /** Set when the host ended it on purpose (stall, timeout) or asked it to: the reason reported on exit. */
  private endReason: DeathReason | 'stopped' | undefined;
  private error: Error | undefined;

  constructor(
    boot: Omit<WorkerBoot, 'stats' | 'beatMs'>,
    limits: ThreadLimits,
    onMessage: (msg: FromWorker) => void,
    onEnd: (reason: DeathReason | 'stopped', detail: string) => void,
  ) {
    const stats = new SharedArrayBuffer(STAT_SLOTS * 4);
    this.stats = new Int32Array(stats);
    const data: WorkerBoot = { ...boot, stats, beatMs: limits.beatMs };
    this.worker = new Worker(ENTRY, {
      workerData: data,
      env: workerEnv(),
      execArgv: [],
      name: `plugin ${boot.name}`,
      resourceLimits: { maxOldGenerationSizeMb: limits.memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(32, limits.memoryMb / 8)) },
    });
    this.worker.on('message', onMessage);
    this.worker.on('error', (err) => {
      this.error = err;
    });
    this.worker.on('exit', (code) => {
      const { reason, detail } = this.classify(code);
      onEnd(reason, detail);
    });
  }

  private classify(code: number): { reason: DeathReason | 'stopped'; detail: string } {
    if (this.endReason === 'stopped') return { reason: 'stopped', detail: 'stopped' };
    if (this.endReason !== undefined) return { reason: this.endReason, detail: this.endReason };
    const err = this.error as (Error & { code?: string }) | undefined;
    if (err?.code === 'ERR_WORKER_OUT_OF_MEMORY') return { reason: 'memory', detail: `heap limit reached (${err.message})` };
    if (err !== undefined) return { reason: 'exception', detail: `uncaught ${err.name}: ${err.message}` };
    return { reason: 'exit', detail: `exited with code ${code}` };
  }

  post(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  /** Ends the worker (it stops even inside `while (true) {}`); `reason` is what its end reports. */
  end(reason: DeathReason | 'stopped'): void {
    this.endReason ??= reason;
    void this.worker.terminate();
  }

  /** True when the heartbeat has not moved for `stallMs`. */
  stalled(stallMs: number, now: number): boolean {
    const beat = Atomics.load(this.stats, STAT_BEAT);
    if (beat !== this.lastBeat) {
      this.lastBeat = beat;
      this.lastBeatAt = now;
      return false;
    }
    return now - this.lastBeatAt > stallMs;
  }

  get heapBytes(): number {
    return Atomics.load(this.stats, STAT_HEAP_KB) * 1024;
  }

  get lagMs(): number {
    return Atomics.load(this.stats, STAT_LAG_MS);
  }
}
