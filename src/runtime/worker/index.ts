import { HostError } from '../../errors/index.js';
import type { PluginMetadata } from '../../sdk/index.js';
import type { LoadedVersion, LoadRequest, PluginRuntime } from '../types.js';
import type { FromWorker } from './protocol.js';
import { WorkerStats } from './stats.js';
import { bootOf, fromWire, ThreadHandle } from './thread-handle.js';
import { type WorkerLimits, WorkerVersion } from './worker-version.js';

export { type Forwarded, LATENCY_BUCKETS_MS, WorkerStats } from './stats.js';
export { type WorkerLimits, WorkerVersion } from './worker-version.js';

/**
 * Plugins evaluated in worker threads, one per loaded version, each with its
 * own Fastify instance and heap cap: a plugin that hangs, exits or runs out of
 * memory ends only its worker. Contains faults; not a security sandbox (the
 * worker shares the process's file system, network and privileges).
 */
export class WorkerRuntime implements PluginRuntime {
  readonly kind = 'worker';
  private readonly versions = new Set<WorkerVersion>();
  /** Deaths and forwarded requests per plugin, across versions (metrics). */
  readonly stats = new WorkerStats();

  constructor(readonly limits: WorkerLimits) {}

  async load(req: LoadRequest): Promise<LoadedVersion> {
    const v = await WorkerVersion.start(req, this.limits, this.stats);
    this.versions.add(v);
    return v;
  }

  /** Evaluate, `newPlugin()`, metadata, in a short-lived worker: module code never runs in the serving thread. */
  trial(req: LoadRequest): Promise<PluginMetadata> {
    let boot: ReturnType<typeof bootOf>;
    try {
      boot = bootOf(req, 'trial', this.limits.logLevel);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const deadlineMs = req.hookTimeoutMs + 10_000;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        thread.end('stopped');
        fn();
      };
      const thread = new ThreadHandle(
        boot,
        { memoryMb: this.limits.memoryMb, beatMs: 1000 },
        (msg: FromWorker) => {
          if (msg.t === 'trial') settle(() => resolve(msg.metadata));
          else if (msg.t === 'failed') settle(() => reject(fromWire(msg.error)));
        },
        (_reason, detail) =>
          settle(() =>
            reject(new HostError('PH_ERR_LOAD_EVALUATE', `${req.name}: its worker ended while evaluating the module (${detail})`)),
          ),
      );
      const timer = setTimeout(
        () =>
          settle(() =>
            reject(new HostError('PH_ERR_LOAD_EVALUATE', `${req.name}: evaluating the module did not finish within ${deadlineMs} ms`)),
          ),
        deadlineMs,
      );
    });
  }

  /** The versions still loaded (their heap and event-loop delay are gauges). */
  loaded(): WorkerVersion[] {
    for (const v of this.versions) if (v.details().state === 'stopping') this.versions.delete(v);
    return [...this.versions];
  }

  async close(): Promise<void> {
    await Promise.all([...this.versions].map((v) => v.unload(1000)));
    this.versions.clear();
  }
}
