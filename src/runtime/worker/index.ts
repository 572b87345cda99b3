import type { PluginMetadata } from '../../sdk/index.js';
import type { HandleFactory } from '../supervised/handle.js';
import { trialInstance } from '../supervised/start.js';
import { WorkerStats } from '../supervised/stats.js';
import { SupervisedVersion, type WorkerLimits } from '../supervised/version.js';
import type { LoadedVersion, LoadRequest, PluginRuntime } from '../types.js';
import { ThreadHandle } from './thread-handle.js';

export { type Forwarded, LATENCY_BUCKETS_MS, WorkerStats } from '../supervised/stats.js';
export { SupervisedVersion, type WorkerLimits } from '../supervised/version.js';

const threads: HandleFactory = (boot, onMessage, onEnd) => new ThreadHandle(boot, onMessage, onEnd);

/**
 * Plugins evaluated in worker threads, one per loaded version, each with its
 * own Fastify instance and memory cap: a plugin that hangs, exits or runs out
 * of memory ends only its worker. Contains faults and closes the short
 * escapes (no inspector, child processes, workers or addons); not a security
 * boundary (the worker shares the process's file system, network and privileges).
 */
export class WorkerRuntime implements PluginRuntime {
  readonly kind = 'worker';
  private readonly versions = new Set<SupervisedVersion>();

  /** `stats`: deaths and forwarded requests per plugin, across versions (metrics); shared with the process runtime. */
  constructor(
    readonly limits: WorkerLimits,
    readonly stats: WorkerStats = new WorkerStats(),
  ) {}

  async load(req: LoadRequest): Promise<LoadedVersion> {
    const v = await SupervisedVersion.start(this.kind, threads, req, this.limits, this.stats);
    this.versions.add(v);
    return v;
  }

  /** Evaluate, `newPlugin()`, metadata, in a short-lived worker: module code never runs in the serving thread. */
  trial(req: LoadRequest): Promise<PluginMetadata> {
    return trialInstance(threads, req, this.limits);
  }

  /** The versions still loaded (their heap and event-loop delay are gauges). */
  loaded(): SupervisedVersion[] {
    for (const v of this.versions) if (v.details().state === 'stopping') this.versions.delete(v);
    return [...this.versions];
  }

  async close(): Promise<void> {
    await Promise.all([...this.versions].map((v) => v.unload(1000)));
    this.versions.clear();
  }
}
