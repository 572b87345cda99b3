import { Worker } from 'node:worker_threads';
import { SECRET_SETTINGS } from '../../config/index.js';
import { workerModule } from '../../worker-module.js';
import type { BootSpec, DeathReason, OnEnd, OnMessage, PluginHandle } from '../supervised/handle.js';
import {
  STAT_BEAT,
  STAT_EXTERNAL_KB,
  STAT_HEAP_KB,
  STAT_LAG_MS,
  STAT_OVER_MEMORY,
  STAT_SLOTS,
  type ToWorker,
  type WorkerBoot,
} from '../supervised/protocol.js';

const ENTRY = workerModule(import.meta.url, 'thread');

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
 * it shares (heartbeat, heap, external memory, event-loop delay) are read
 * without a message. Its heap is capped by V8 (`resourceLimits`), its
 * external memory by the thread itself (it ends when past the cap, setting
 * the shared flag that makes its death a `memory` one).
 */
export class ThreadHandle implements PluginHandle {
  readonly worker: Worker;
  private readonly stats: Int32Array;
  private lastBeat = 0;
  private lastBeatAt = Date.now();
  /** Set when the host ended it on purpose (stall, timeout) or asked it to: the reason reported on exit. */
  private endReason: DeathReason | 'stopped' | undefined;
  private error: Error | undefined;
  private readonly capKb: number;

  constructor(boot: BootSpec, onMessage: OnMessage, onEnd: OnEnd) {
    const stats = new SharedArrayBuffer(STAT_SLOTS * 4);
    this.stats = new Int32Array(stats);
    this.capKb = boot.memoryMb * 1024;
    const data: WorkerBoot = { ...boot, stats };
    this.worker = new Worker(ENTRY, {
      workerData: data,
      env: workerEnv(),
      execArgv: [],
      name: `plugin ${boot.name}`,
      resourceLimits: { maxOldGenerationSizeMb: boot.memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(32, boot.memoryMb / 8)) },
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
    if (this.endReason === 'memory' || Atomics.load(this.stats, STAT_OVER_MEMORY) === 1) {
      const mb = Math.round((Atomics.load(this.stats, STAT_HEAP_KB) + Atomics.load(this.stats, STAT_EXTERNAL_KB)) / 1024);
      return { reason: 'memory', detail: `memory cap reached (heap and external memory ${mb} MB)` };
    }
    if (this.endReason !== undefined) return { reason: this.endReason, detail: this.endReason };
    const err = this.error as (Error & { code?: string }) | undefined;
    if (err?.code === 'ERR_WORKER_OUT_OF_MEMORY') return { reason: 'memory', detail: `heap limit reached (${err.message})` };
    if (err !== undefined) return { reason: 'exception', detail: `uncaught ${err.name}: ${err.message}` };
    return { reason: 'exit', detail: `exited with code ${code}` };
  }

  post(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  end(reason: DeathReason | 'stopped'): void {
    this.endReason ??= reason;
    void this.worker.terminate();
  }

  stalled(stallMs: number, now: number): boolean {
    const beat = Atomics.load(this.stats, STAT_BEAT);
    if (beat !== this.lastBeat) {
      this.lastBeat = beat;
      this.lastBeatAt = now;
      return false;
    }
    return now - this.lastBeatAt > stallMs;
  }

  overMemory(): boolean {
    return Atomics.load(this.stats, STAT_HEAP_KB) + Atomics.load(this.stats, STAT_EXTERNAL_KB) > this.capKb;
  }

  get heapBytes(): number {
    return Atomics.load(this.stats, STAT_HEAP_KB) * 1024;
  }

  get externalBytes(): number {
    return Atomics.load(this.stats, STAT_EXTERNAL_KB) * 1024;
  }

  get lagMs(): number {
    return Atomics.load(this.stats, STAT_LAG_MS);
  }
}
