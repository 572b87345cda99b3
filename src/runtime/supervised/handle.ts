import { ERROR_CODES, type ErrorCode, HostError } from '../../errors/index.js';
import type { PluginMetadata } from '../../sdk/index.js';
import type { LoadRequest, RegisteredRoute } from '../types.js';
import type { FromWorker, ToWorker, WireError, WorkerBoot } from './protocol.js';

/** Why a supervised runtime ended, as metrics and messages name it. */
export type DeathReason = 'stall' | 'memory' | 'exception' | 'exit' | 'timeout';

export interface Ready {
  metadata: PluginMetadata;
  routes: RegisteredRoute[];
  sharedSchemas: unknown[];
}

/** What a runtime is started with, before the handle adds its own transport details. */
export type BootSpec = Omit<WorkerBoot, 'stats'>;

/**
 * One running instance of a plugin version (a worker thread, a child process)
 * as its supervisor sees it: messages in and out, a hard stop, a heartbeat
 * and counters. Every message and the instance's end go to the callbacks it
 * was created with.
 */
export interface PluginHandle {
  post(msg: ToWorker): void;
  /** Ends the instance (even inside `while (true) {}`); `reason` is what its end reports. */
  end(reason: DeathReason | 'stopped'): void;
  /** True when the heartbeat has not moved for `stallMs`. */
  stalled(stallMs: number, now: number): boolean;
  /** True when the instance holds more memory than its cap (checked by the supervisor's sweep). */
  overMemory(): boolean;
  readonly heapBytes: number;
  readonly externalBytes: number;
  readonly lagMs: number;
}

export type OnMessage = (msg: FromWorker) => void;
export type OnEnd = (reason: DeathReason | 'stopped', detail: string) => void;

/** Starts one instance of a version: what a runtime (worker, process) gives its supervisor. */
export type HandleFactory = (boot: BootSpec, onMessage: OnMessage, onEnd: OnEnd) => PluginHandle;

/** What an instance for `req` starts with (the bundle, the limits of its hooks, its configuration). */
export function bootOf(req: LoadRequest, mode: WorkerBoot['mode'], o: { logLevel: string; memoryMb: number; beatMs: number }): BootSpec {
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
    logLevel: o.logLevel,
    memoryMb: o.memoryMb,
    beatMs: o.beatMs,
  };
}

/** A coded error from the other side; a code this host does not know becomes `PH_ERR_INTERNAL`. */
export function fromWire(e: WireError): HostError {
  const code = (typeof e?.code === 'string' && e.code in ERROR_CODES ? e.code : 'PH_ERR_INTERNAL') as ErrorCode;
  return new HostError(code, String(e?.message), e?.details === undefined ? undefined : { details: e.details });
}
