import type { PluginMetadata } from '../../sdk/index.js';
import type { HandleFactory } from '../supervised/handle.js';
import { trialInstance } from '../supervised/start.js';
import { WorkerStats } from '../supervised/stats.js';
import { SupervisedVersion, type WorkerLimits } from '../supervised/version.js';
import type { LoadedVersion, LoadRequest, PluginRuntime } from '../types.js';
import { ProcessHandle } from './process-handle.js';
import type { ProcessIdentity } from './spawn-options.js';

export { identityFor, type ProcessIdentity, permissionFlag } from './spawn-options.js';

/**
 * Plugins evaluated in processes of their own, one per loaded version: Node's
 * permission model (reads of the host's code only, no writes, child
 * processes, workers, addons or WASI), an empty environment, another user
 * when the host is root, the whole process's memory capped. The same
 * supervision as the worker runtime (stall, request timeout, crash limit).
 */
export class ProcessRuntime implements PluginRuntime {
  readonly kind = 'process';
  private readonly versions = new Set<SupervisedVersion>();
  private readonly factory: HandleFactory;

  constructor(
    readonly limits: WorkerLimits,
    identity: ProcessIdentity | undefined,
    readonly stats: WorkerStats = new WorkerStats(),
  ) {
    this.factory = (boot, onMessage, onEnd) => new ProcessHandle(boot, { identity }, onMessage, onEnd);
  }

  async load(req: LoadRequest): Promise<LoadedVersion> {
    for (const old of this.versions) if (old.details().state === 'stopping') this.versions.delete(old);
    const v = await SupervisedVersion.start(this.kind, this.factory, req, this.limits, this.stats);
    this.versions.add(v);
    return v;
  }

  /** Evaluate, `newPlugin()`, metadata, in a short-lived process under the same permissions. */
  trial(req: LoadRequest): Promise<PluginMetadata> {
    return trialInstance(this.factory, req, this.limits);
  }

  async close(): Promise<void> {
    await Promise.all([...this.versions].map((v) => v.unload(1000)));
    this.versions.clear();
  }
}
